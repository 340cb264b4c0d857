/**
 * Cluster convergence in one process: two or three PluginHosts, each with its
 * own data dir and node id, on one PostgreSQL database. What one host is
 * asked (install, configure, disable, enable, upgrade, remove, publish)
 * reaches the others through the feed; real plugin processes answer on each.
 * The multi-process cases (serve, SIGKILL, a restarted server) are in test/cluster.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import type { StateChange } from '../../src/runtime/types';
import { isAlive, tempDir, until } from '../helpers';
import { adminQuery, describeIfPg, freshDatabase, type FreshDatabase } from '../helpers/postgres';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });
const HOOKS = 'Append,Kv,Publish,Events,Config,Pushed';
const BOUND_MS = 30_000;

describeIfPg('cluster convergence')('cluster convergence on one PostgreSQL database', () => {
  jest.setTimeout(120_000);
  let db: FreshDatabase;
  let work: { dir: string; cleanup(): void };
  const hosts: PluginHost[] = [];

  const open = async (name: string, extra: { reconcileIntervalMs?: number } = {}) => {
    const h = await PluginHost.open({ dataDir: path.join(work.dir, name), nodeId: name, logger: silent, database: db.url, ...extra });
    hosts.push(h);
    return h;
  };
  const bundle = (id: string, version = '1.0.0') => fixtureBundle(work.dir, { id, version, env: { HOOKS } });
  const stateOf = async (h: PluginHost, id: string) => (await h.list()).find((p) => p.id === id)?.state ?? 'absent';
  const waitState = (h: PluginHost, id: string, state: string) =>
    until(async () => (await stateOf(h, id)) === state, `${id} ${state} on ${h.nodeId}`, BOUND_MS);

  beforeEach(async () => {
    db = await freshDatabase();
    work = tempDir();
  });
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.close();
    await db.drop();
    work.cleanup();
  });

  test('install, configure, disable, enable, upgrade and remove through one host reach the others', async () => {
    const id = 'com.test.converge';
    const [a, b, c] = [await open('node-a'), await open('node-b'), await open('node-c')];

    await a.install(await bundle(id));
    await a.enable(id);
    for (const h of [b, c]) await waitState(h, id, 'running');
    for (const h of [a, b, c]) expect((await h.callHook(id, 'Append', { text: 'x' })).payload).toEqual({ text: `x[${id}]` });
    const pids = await Promise.all([a, b, c].map(async (h) => (await h.get(id)).pid));
    expect(new Set(pids).size).toBe(3);
    // Every node's observed row is in the store.
    await until(async () => (await a.describe(id)).nodes.filter((n) => n.state === 'running').length === 3, 'three running rows', BOUND_MS);

    // Configured through B: A and C's running plugins are told (OnConfigurationChange), secrets included.
    await b.setConfig(id, { greeting: 'from b', token: 's3cret', count: 5 });
    for (const h of [a, c]) {
      await until(async () => (await h.callHook(id, 'Pushed', {})).payload !== null
        && ((await h.callHook(id, 'Pushed', {})).payload as { greeting?: string }).greeting === 'from b', `config pushed on ${h.nodeId}`, BOUND_MS);
      expect(await h.getConfig(id, { reveal: true })).toMatchObject({ greeting: 'from b', token: 's3cret', count: 5 });
    }

    // Every node reports the generation of that configuration: converged.
    const { generation } = await b.get(id);
    await until(async () => {
      const d = await a.describe(id);
      return d.generation === generation && d.summary.converged === 3 && d.nodes.every((n) => n.generation === generation && n.live);
    }, 'all three nodes at the configuration\'s generation', BOUND_MS);
    expect((await c.describe(id)).summary).toEqual({ nodes: 3, running: 3, converged: 3, state: 'running' });

    // Disabled through C: stopped everywhere, processes gone.
    await c.disable(id);
    for (const h of [a, b]) await waitState(h, id, 'not_running');
    for (const pid of pids) await until(() => !isAlive(pid!), `plugin process ${pid} gone`, BOUND_MS);
    expect((await a.get(id)).enabled).toBe(false);

    await b.enable(id);
    for (const h of [a, c]) await waitState(h, id, 'running');

    // Upgraded through A: B and C run 2.0.0 from the bundle stored in the database.
    await a.install(await bundle(id, '2.0.0'), { force: true });
    for (const h of [b, c]) {
      await until(async () => (await h.get(id)).version === '2.0.0' && (await stateOf(h, id)) === 'running', `2.0.0 running on ${h.nodeId}`, BOUND_MS);
      expect(await h.getConfig(id, { reveal: true })).toMatchObject({ greeting: 'from b', token: 's3cret' });
    }

    const running = await Promise.all([a, b, c].map(async (h) => (await h.get(id)).pid));
    await c.remove(id);
    for (const h of [a, b]) await until(async () => (await stateOf(h, id)) === 'absent', `${id} removed on ${h.nodeId}`, BOUND_MS);
    for (const pid of running) await until(() => !isAlive(pid!), `plugin process ${pid} gone`, BOUND_MS);
    expect(await adminQuery('SELECT id FROM plughost_plugins UNION ALL SELECT plugin_id FROM plughost_observed', [], db.name)).toEqual([]);
    // Unreferenced bundles stay for the grace period (another host's install may be about to commit), then go.
    expect(await adminQuery('SELECT 1 FROM plughost_bundles', [], db.name)).toHaveLength(2);
    await adminQuery('UPDATE plughost_bundles SET stored_at = stored_at - 3600000', [], db.name);
    await a.syncNow();
    await until(async () => (await adminQuery('SELECT 1 FROM plughost_bundles', [], db.name)).length === 0, 'bundles collected after the grace', BOUND_MS);
  });

  test('a host that opens later, or misses wake-ups, still converges; its own changes are not redone', async () => {
    const id = 'com.test.late';
    const a = await open('node-a');
    const installed: string[] = [];
    a.on('installed', (info: { id: string }) => installed.push(info.id));
    await a.install(await bundle(id));
    await a.enable(id);
    const pid = (await a.get(id)).pid;

    const b = await open('node-b', { reconcileIntervalMs: 200 });
    expect(await stateOf(b, id)).toBe('running');

    // B's LISTEN session is cut: the change after it arrives by the reconnect or the poll.
    const cut = await adminQuery<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'plughost-listen'", [db.name]);
    expect(cut[0].n).toBe(2);
    // Both hosts open a new LISTEN session by themselves.
    await until(async () => (await adminQuery<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'plughost-listen'", [db.name]))[0].n === 2,
    'two LISTEN sessions again', BOUND_MS);
    await a.disable(id);
    await waitState(b, id, 'not_running');
    await a.enable(id);
    await waitState(b, id, 'running');
    // A converged on its own changes without redoing them: one install, and the plugin started once more only by the enable.
    expect(installed).toEqual([id]);
    expect((await a.get(id)).pid).not.toBe(pid);
    expect((await a.get(id)).restarts).toBe(0);
  });

  test('events reach subscribers on every host once, payloads above NOTIFY\'s 8000 bytes included; state changes of every host reach the others', async () => {
    const [pub, sub] = ['com.test.publisher', 'com.test.subscriber'];
    const [a, b] = [await open('node-a'), await open('node-b')];
    for (const id of [pub, sub]) {
      await a.install(await bundle(id));
      await a.enable(id);
    }
    await waitState(b, pub, 'running');
    await waitState(b, sub, 'running');
    const remoteStates: StateChange[] = [];
    b.on('state', (change: StateChange) => { if (change.nodeId === 'node-a') remoteStates.push(change); });
    const seenOnB: Array<{ topic: string; nodeId: string }> = [];
    b.on('event', (e: { topic: string; nodeId: string }) => seenOnB.push({ topic: e.topic, nodeId: e.nodeId }));

    const big = 'x'.repeat(64 * 1024);
    await a.callHook(pub, 'Publish', { topic: 'notes.small', payload: { n: 1 } });
    await a.callHook(pub, 'Publish', { topic: 'notes.big', payload: { big } });
    await a.publish('notes.host', { from: 'host' });

    type Seen = Array<{ topic: string; payload: unknown; source: string }>;
    const eventsOf = async (h: PluginHost, id: string) => (await h.callHook(id, 'Events', {})).payload as Seen;
    for (const h of [a, b]) {
      await until(async () => (await eventsOf(h, sub)).length >= 3, `3 events on ${h.nodeId}`, BOUND_MS);
    }
    // Room for a duplicate to arrive before counting: two more polls of B's feed.
    await until(async () => seenOnB.length >= 3, 'events on B\'s listeners', BOUND_MS);
    for (const h of [a, b]) {
      const seen = await eventsOf(h, sub);
      expect(seen.map((e) => e.topic)).toEqual(['notes.small', 'notes.big', 'notes.host']);
      expect(seen[1].payload).toEqual({ big });
      expect(seen[0].source).toBe(pub);
      // The publisher never gets its own events, on any node.
      expect(await eventsOf(h, pub)).toEqual(seen.filter((e) => e.source !== pub));
    }
    expect(seenOnB).toEqual([
      { topic: 'notes.small', nodeId: 'node-a' }, { topic: 'notes.big', nodeId: 'node-a' }, { topic: 'notes.host', nodeId: 'node-a' },
    ]);

    // A state change on A shows on B's 'state' listeners, marked with A's node id.
    await a.disable(sub);
    await until(() => remoteStates.some((s) => s.pluginId === sub && s.state === 'not_running'), 'A\'s stop seen on B', BOUND_MS);
  });

  test('clusterExclusive runs one host at a time, each after converging on the shared state', async () => {
    const id = 'com.test.exclusive';
    const [a, b] = [await open('node-a'), await open('node-b', { reconcileIntervalMs: 60_000 })];
    const order: string[] = [];
    let releaseA!: () => void;
    const gate = new Promise<void>((r) => { releaseA = r; });
    const first = a.clusterExclusive('provision', async () => {
      order.push('a:start');
      await a.install(await bundle(id));
      await gate;
      order.push('a:end');
    });
    await until(() => order.length === 1, 'A inside the lock');
    const second = b.clusterExclusive('provision', async () => {
      order.push('b:start');
      // B converged before entering: it sees what A installed, without waiting for a poll.
      return (await b.list()).map((p) => p.id);
    }, { ttlMs: 2_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(order).toEqual(['a:start']);
    releaseA();
    await first;
    expect(await second).toEqual([id]);
    expect(order).toEqual(['a:start', 'a:end', 'b:start']);
  });
});
