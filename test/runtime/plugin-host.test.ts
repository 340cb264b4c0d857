import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { SqliteStore, type Store } from '../../src/store';
import { Errors } from '../../src/errors';
import type { StateChange } from '../../src/runtime/types';
import { isAlive, tempDir, trackTimers, until, waitGone } from '../helpers';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });
const timers = trackTimers();
type Hooks = { Append: { text: string }; Notify: { n: number }; Slow: Record<string, never>; Kv: Record<string, unknown>; [k: string]: unknown };

let work: { dir: string; cleanup(): void };
let host: PluginHost<Hooks> | undefined;

beforeEach(() => {
  work = tempDir();
});
afterEach(async () => {
  await host?.close();
  host = undefined;
  work.cleanup();
  // Nothing of ours may keep the process alive after close().
  expect(timers.pendingFrom('/src/')).toEqual([]);
});

async function open(extra: Partial<Parameters<typeof PluginHost.open>[0]> = {}): Promise<PluginHost<Hooks>> {
  host = await PluginHost.open<Hooks>({
    dataDir: path.join(work.dir, 'data'),
    logger: silent,
    defaults: { restartBackoffMs: 50, restartBackoffMaxMs: 200, healthIntervalMs: 60_000 },
    api: {
      'notes.count': (args: { tag: string }, caller) => ({ count: 3, tag: args.tag, caller: caller.pluginId }),
      'notes.delete': () => ({ deleted: true }),
    },
    ...extra,
  });
  return host;
}

async function installed(h: PluginHost<Hooks>, o: Parameters<typeof fixtureBundle>[1], enable = true) {
  await h.install(await fixtureBundle(work.dir, o));
  return enable ? h.enable(o.id) : h.get(o.id);
}

test('install, enable, disable, remove: every state transition, persisted and emitted', async () => {
  const h = await open();
  const changes: StateChange[] = [];
  h.on('state', (c: StateChange) => changes.push(c));
  const info = await installed(h, { id: 'com.test.a' }, false);
  expect(info).toMatchObject({ id: 'com.test.a', state: 'not_running', enabled: false, version: '1.0.0' });
  const running = await h.enable('com.test.a');
  expect(running.state).toBe('running');
  expect(running.hooks).toContain('Append');
  expect(isAlive(running.pid!)).toBe(true);
  expect(h.logs('com.test.a').some((l) => l.source === 'api' && l.message === 'activated')).toBe(true);
  const stopped = await h.disable('com.test.a');
  expect(stopped).toMatchObject({ state: 'not_running', enabled: false });
  expect(await waitGone(running.pid!)).toBe(true);
  expect(changes.map((c) => c.state)).toEqual(['starting', 'running', 'stopping', 'not_running']);
  await h.remove('com.test.a');
  expect(fs.existsSync(h.pluginDir('com.test.a'))).toBe(false);
  await expect(h.get('com.test.a')).rejects.toMatchObject({ code: Errors.PLUGIN_NOT_FOUND.code });
});

test('a plugin whose OnActivate fails is failed_to_start with its reason', async () => {
  const h = await open();
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.bad', env: { FAIL_ACTIVATE: '1' } }));
  await expect(h.enable('com.test.bad')).rejects.toMatchObject({ code: Errors.ACTIVATION_FAILED.code });
  const info = await h.get('com.test.bad');
  expect(info.state).toBe('failed_to_start');
  expect(info.lastError).toContain('activation refused by fixture');
  expect(info.pid).toBeUndefined();
});

test('a configuration that misses a required setting fails the start, naming the setting, with no process launched', async () => {
  const h = await open();
  const schema = { settings: [{ key: 'endpoint', type: 'text', required: true }] };
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.needs', settingsSchema: schema }));
  await expect(h.enable('com.test.needs')).rejects.toMatchObject({ code: 'PLUGHOST_ERR_CONFIG_INVALID' });
  const info = await h.get('com.test.needs');
  expect(info).toMatchObject({ state: 'failed_to_start', enabled: true });
  expect(info.lastError).toMatch(/endpoint/);
  expect(info.pid).toBeUndefined();
  await h.setConfig('com.test.needs', { endpoint: 'https://example.test' });
  expect((await h.enable('com.test.needs')).state).toBe('running');
});

test('min_host_version that this host does not satisfy fails the start, naming both versions', async () => {
  const h = await open({ hostVersion: '1.2.0' });
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.future', min_host_version: '>=2.0.0' }));
  await expect(h.enable('com.test.future')).rejects.toMatchObject({ code: Errors.HOST_VERSION_UNSATISFIED.code });
  expect((await h.get('com.test.future')).lastError).toMatch(/needs host version >=2.0.0; this host is 1.2.0/);
});

test('a crash loop is restarted with backoff, then parked as failed_to_stay_running', async () => {
  const h = await open({ defaults: { maxFailures: 3, restartBackoffMs: 20, restartBackoffMaxMs: 100 } });
  await installed(h, { id: 'com.test.loop', env: { CRASH_AFTER_MS: '100' } });
  await until(async () => (await h.get('com.test.loop')).state === 'failed_to_stay_running', 'parking');
  const info = await h.get('com.test.loop');
  expect(info.restarts).toBe(2);
  expect(info.lastError).toMatch(/exited unexpectedly \(exit code 9\).*3 failures within 60 min; parked/);
  const metrics = await h.metrics.registry.metrics();
  expect(metrics).toMatch(/plughost_plugin_restarts_total\{plugin="com.test.loop"\} 2/);
  expect(metrics).toMatch(/plughost_plugin_state\{plugin="com.test.loop",state="failed_to_stay_running"\} 1/);
});

test('a call in flight to a plugin that dies fails at once; the plugin is restarted and hooks skip it meanwhile', async () => {
  const h = await open({ defaults: { restartBackoffMs: 300 } });
  const first = await installed(h, { id: 'com.test.crash' });
  await expect(h.callHook('com.test.crash', 'Crash', {})).rejects.toMatchObject({ code: Errors.HOOK_FAILED.code });
  await until(async () => (await h.get('com.test.crash')).state === 'starting', 'restart pending');
  expect(await h.notify('Notify', { n: 1 })).toEqual([]);
  await until(async () => (await h.get('com.test.crash')).state === 'running', 'restart');
  const again = await h.get('com.test.crash');
  expect(again.pid).not.toBe(first.pid);
  expect(again.restarts).toBe(1);
  expect(again.lastError).toBeNull();
});

test('a hung hook ends at its deadline while the other plugin answers', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.hung', env: { HANG: '1' }, limits: { hook_timeout_ms: 500 } });
  await installed(h, { id: 'com.test.quick' });
  const outcomes = await h.notify('Slow', {} as Record<string, never>);
  const byId = Object.fromEntries(outcomes.map((o) => [o.pluginId, o]));
  expect(byId['com.test.quick'].ok).toBe(true);
  expect(byId['com.test.hung'].ok).toBe(false);
  expect(byId['com.test.hung'].error).toMatch(/Deadline exceeded/i);
  expect((await h.get('com.test.hung')).state).toBe('running');
});

test('filter: a chain in plugin-id order; rejection stops it; failures are skipped (fail-open) unless fail-closed', async () => {
  const h = await open({ hooks: { Slow: { failClosed: true } } });
  await installed(h, { id: 'com.test.b' });
  await installed(h, { id: 'com.test.a' });
  const ok = await h.filter('Append', { text: 'note' });
  expect(ok).toMatchObject({ rejected: false, payload: { text: 'note[com.test.a][com.test.b]' } });
  expect(ok.steps.map((s) => [s.pluginId, s.outcome])).toEqual([['com.test.a', 'changed'], ['com.test.b', 'changed']]);
  const no = await h.filter('Append', { text: 'reject-me' });
  expect(no).toMatchObject({ rejected: true, reason: 'no thanks from com.test.a', by: 'com.test.a' });
  expect(no.steps).toHaveLength(1);

  await installed(h, { id: 'com.test.c', env: { HANG: '1' }, limits: { hook_timeout_ms: 300 } });
  const closed = await h.filter('Slow', {} as Record<string, never>);
  expect(closed).toMatchObject({ rejected: true, by: 'com.test.c' });
  await installed(h, { id: 'com.test.0', env: { HOOKS: 'Append', CRASH_AFTER_MS: '0' } }).catch(() => undefined);
  const open2 = await h.filter('Append', { text: 'x' });
  expect(open2.rejected).toBe(false);
});

test('filter: each plugin gets the bytes the one before it answered, as they were; an answer that is not JSON fails its step and the next plugin gets the bytes before it', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.r1', env: { HOOKS: 'Raw' } });
  await installed(h, { id: 'com.test.r2', env: { HOOKS: 'Raw', BAD_JSON: '1' } });
  await installed(h, { id: 'com.test.r3', env: { HOOKS: 'Raw' } });
  const first = JSON.stringify({ got: ['{"start":true}'] }, null, 1);
  const out = await h.filter('Raw', { start: true });
  expect(out.steps.map((s) => [s.pluginId, s.outcome])).toEqual([['com.test.r1', 'changed'], ['com.test.r2', 'failed'], ['com.test.r3', 'changed']]);
  // r3 got r1's indented bytes, not a re-encoding of them.
  expect(out).toMatchObject({ rejected: false, payload: { got: ['{"start":true}', first] } });
});

test('Invoke: allowed by permissions, denied otherwise with the reason; the caller is known from the connection', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.perm', permissions: ['notes.count'] });
  const allowed = await h.callHook('com.test.perm', 'Invoke', { method: 'notes.count', args: { tag: 't' } });
  expect(allowed.payload).toEqual({ result: { count: 3, tag: 't', caller: 'com.test.perm' } });
  const denied = await h.callHook('com.test.perm', 'Invoke', { method: 'notes.delete', args: {} });
  expect(denied.payload).toEqual({ code: 7, error: expect.stringMatching(/may not invoke "notes.delete": its manifest's "permissions" does not list it/) });
});

test('KV: set/get/delete, expiry, compare-and-set, prefix paging, delete all, and scoping between plugins', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.kv1' });
  await installed(h, { id: 'com.test.kv2' });
  const kv = async (id: string, op: Record<string, unknown>) => (await h.callHook(id, 'Kv', op)).payload as Record<string, any>;

  expect(await kv('com.test.kv1', { op: 'set', key: 'a', value: '1' })).toEqual({ ok: true });
  expect(await kv('com.test.kv1', { op: 'get', key: 'a' })).toEqual({ found: true, value: '1' });
  expect(await kv('com.test.kv2', { op: 'get', key: 'a' })).toEqual({ found: false, value: null });

  expect(await kv('com.test.kv1', { op: 'set', key: 'c', value: 'new', compare: true, expectAbsent: true })).toEqual({ ok: true });
  expect(await kv('com.test.kv1', { op: 'set', key: 'c', value: 'again', compare: true, expectAbsent: true })).toEqual({ ok: false });
  expect(await kv('com.test.kv1', { op: 'set', key: 'c', value: 'v2', compare: true, expected: 'wrong' })).toEqual({ ok: false });
  expect(await kv('com.test.kv1', { op: 'set', key: 'c', value: 'v2', compare: true, expected: 'new' })).toEqual({ ok: true });

  await kv('com.test.kv1', { op: 'set', key: 'ttl', value: 'soon gone', ttlMs: 30 });
  await until(async () => !(await kv('com.test.kv1', { op: 'get', key: 'ttl' })).found, 'expiry');

  for (let i = 0; i < 25; i++) await kv('com.test.kv1', { op: 'set', key: `p/${String(i).padStart(2, '0')}`, value: String(i) });
  const keys: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await kv('com.test.kv1', { op: 'list', prefix: 'p/', pageSize: 10, pageToken: token });
    keys.push(...page.keys);
    token = page.next_page_token;
    pages++;
  } while (token && pages < 10);
  expect(pages).toBe(3);
  expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`));
  expect((await kv('com.test.kv2', { op: 'list', prefix: '' })).keys).toEqual([]);

  expect(await kv('com.test.kv1', { op: 'delete', key: 'a' })).toEqual({ deleted: true });
  expect(await kv('com.test.kv1', { op: 'delete', key: 'a' })).toEqual({ deleted: false });
  expect(Number((await kv('com.test.kv1', { op: 'deleteAll' })).deleted)).toBe(26);
  await expect(h.callHook('com.test.kv1', 'Kv', { op: 'set', key: '', value: 'x' })).rejects.toThrow(/KV key "" is invalid/);
});

test('events reach subscribed plugins and integrator listeners, not the publisher; CallPlugin reaches another plugin', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.pub', permissions: ['plugins.call:com.test.sub'] });
  await installed(h, { id: 'com.test.sub', env: { TOPICS: 'notes.*' } });
  const seen: unknown[] = [];
  h.on('event', (e) => seen.push(e));
  await h.callHook('com.test.pub', 'Publish', { topic: 'notes.saved', payload: { id: 1 } });
  await h.callHook('com.test.pub', 'Publish', { topic: 'other.thing', payload: {} });
  await until(async () => ((await h.callHook('com.test.sub', 'Events', {})).payload as unknown[]).length === 1, 'delivery');
  expect((await h.callHook('com.test.sub', 'Events', {})).payload).toEqual([{ topic: 'notes.saved', payload: { id: 1 }, source: 'com.test.pub' }]);
  expect((await h.callHook('com.test.pub', 'Events', {})).payload).toEqual([]);
  expect(seen).toContainEqual({ topic: 'notes.saved', payload: { id: 1 }, source: 'com.test.pub', nodeId: h.nodeId });
  const called = await h.callHook('com.test.pub', 'Call', { plugin: 'com.test.sub', hook: 'Append', payload: { text: 'hi' } });
  expect(called.payload).toEqual({ payload: { text: 'hi[com.test.sub]' }, rejected: false, reason: '' });
});

test('configuration: validated, offered to the plugin (which may reject it), secrets masked on read', async () => {
  const h = await open();
  await installed(h, { id: 'com.test.cfg' });
  expect(await h.getConfig('com.test.cfg')).toEqual({ greeting: 'hello', count: 1 });
  const saved = await h.setConfig('com.test.cfg', { greeting: 'hi', token: 's3cret', count: 2 });
  expect(saved.token).not.toBe('s3cret');
  expect((await h.callHook('com.test.cfg', 'Config', {})).payload).toEqual({ greeting: 'hi', token: 's3cret', count: 2 });
  await expect(h.setConfig('com.test.cfg', { greeting: 'bad' })).rejects.toMatchObject({ code: Errors.CONFIG_REJECTED.code });
  await expect(h.setConfig('com.test.cfg', { count: 'many' })).rejects.toMatchObject({ code: 'PLUGHOST_ERR_CONFIG_INVALID' });
  expect(await h.getConfig('com.test.cfg', { reveal: true })).toEqual({ greeting: 'hi', token: 's3cret', count: 2 });
  // A masked secret sent back keeps the stored value.
  await h.setConfig('com.test.cfg', { ...(await h.getConfig('com.test.cfg')), greeting: 'yo' });
  expect(await h.getConfig('com.test.cfg', { reveal: true })).toEqual({ greeting: 'yo', token: 's3cret', count: 2 });
});

test('after a host restart enabled plugins come back with their configuration and KV; disabled ones stay down', async () => {
  let h = await open();
  await installed(h, { id: 'com.test.keep' });
  await installed(h, { id: 'com.test.off' });
  await h.disable('com.test.off');
  await h.setConfig('com.test.keep', { greeting: 'persisted' });
  await h.callHook('com.test.keep', 'Kv', { op: 'set', key: 'k', value: 'v' });
  const oldPid = (await h.get('com.test.keep')).pid!;
  await h.close();
  expect(await waitGone(oldPid)).toBe(true);
  h = await open();
  expect((await h.get('com.test.keep')).state).toBe('running');
  expect((await h.get('com.test.off')).state).toBe('not_running');
  expect((await h.callHook('com.test.keep', 'Config', {})).payload).toMatchObject({ greeting: 'persisted' });
  expect((await h.callHook('com.test.keep', 'Kv', { op: 'get', key: 'k' })).payload).toEqual({ found: true, value: 'v' });
});

test('installing the same id twice at once: one wins, the other gets 409; force replaces and keeps config', async () => {
  const h = await open();
  const [b1, b2] = await Promise.all([fixtureBundle(work.dir, { id: 'com.test.dup' }), fixtureBundle(work.dir, { id: 'com.test.dup', version: '1.0.1' })]);
  const results = await Promise.allSettled([h.install(b1), h.install(b2)]);
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  expect(failed.reason.status).toBe(409);
  await h.enable('com.test.dup');
  await h.setConfig('com.test.dup', { greeting: 'kept' });
  const upgraded = await h.install(await fixtureBundle(work.dir, { id: 'com.test.dup', version: '2.0.0' }), { force: true });
  expect(upgraded).toMatchObject({ version: '2.0.0', state: 'running', enabled: true });
  expect(await h.getConfig('com.test.dup')).toMatchObject({ greeting: 'kept' });
  expect(fs.readdirSync(path.join(work.dir, 'data', 'staging'))).toEqual([]);
});

test('close() leaves no plugin process behind', async () => {
  const h = await open();
  const pids = [(await installed(h, { id: 'com.test.x1' })).pid!, (await installed(h, { id: 'com.test.x2' })).pid!];
  await h.close();
  host = undefined;
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  await expect(h.list()).resolves.toHaveLength(2);
  await expect(h.get('com.test.x1')).rejects.toMatchObject({ code: Errors.HOST_CLOSED.code });
});

// ---- what the host writes about itself: heartbeat and observed state per plugin ----

/** A real SQLite store that counts heartbeats. */
function countingStore(file: string): { store: Store; beats: () => number } {
  const inner = SqliteStore.open({ file, sweepIntervalMs: 0 });
  let beats = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'heartbeat') return (...args: Parameters<Store['heartbeat']>) => { beats++; return target.heartbeat(...args); };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, beats: () => beats };
}

test('the host heartbeats on its interval while open and never after close', async () => {
  const { store, beats } = countingStore(path.join(work.dir, 'counted.db'));
  const before = Date.now();
  const h = await open({ store, heartbeatIntervalMs: 20, hostVersion: '9.8.7' });
  // The first heartbeat is written during open: the node is listed at once.
  const cluster = await h.cluster();
  expect(cluster.nodes).toEqual([{ nodeId: h.nodeId, version: '9.8.7', startedAt: h.startedAt, heartbeatAgeMs: expect.any(Number) }]);
  expect(h.startedAt).toBeGreaterThanOrEqual(before);
  expect(cluster.nodes[0].heartbeatAgeMs).toBeLessThan(60_000);
  await until(() => beats() >= 4, 'four heartbeats');
  await h.close();
  const atClose = beats();
  await new Promise((r) => setTimeout(r, 150));
  expect(beats()).toBe(atClose);
});

test("a plugin's observed row follows its state: running with its pid, then not_running without after disable; removed with the plugin", async () => {
  const h = await open({ nodeId: 'node-one' });
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.obs' }));
  let detail = await h.describe('com.test.obs');
  expect(detail.nodes).toEqual([{ nodeId: 'node-one', state: 'not_running', lastError: null, updatedAt: expect.any(Number), generation: 1, live: true }]);
  expect(detail).toMatchObject({ generation: 1, summary: { nodes: 1, running: 0, converged: 1, state: 'not_running' } });

  const running = await h.enable('com.test.obs');
  detail = await h.describe('com.test.obs');
  // Enabling is a desired change: generation 2, which the running row answers.
  expect(detail).toMatchObject({
    state: 'running', lastError: null, generation: 2, nodes: [{ nodeId: 'node-one', state: 'running', lastError: null, generation: 2 }],
    summary: { nodes: 1, running: 1, converged: 1, state: 'running' },
  });
  // The store's row carries what REST does not show: the pid and the restarts.
  const store = (h as unknown as { store: Store }).store;
  expect(await store.listObserved('com.test.obs')).toEqual([
    { pluginId: 'com.test.obs', nodeId: 'node-one', state: 'running', lastError: null, pid: running.pid, restarts: 0, generation: 2, updatedAt: expect.any(Number) },
  ]);

  await h.disable('com.test.obs');
  // State rows are written behind the operator's action; describe() waits for them.
  expect((await h.describe('com.test.obs')).state).toBe('not_running');
  expect(await store.listObserved('com.test.obs')).toEqual([
    { pluginId: 'com.test.obs', nodeId: 'node-one', state: 'not_running', lastError: null, pid: null, restarts: 0, generation: 3, updatedAt: expect.any(Number) },
  ]);

  await h.remove('com.test.obs');
  expect(await store.listObserved('com.test.obs')).toEqual([]);
});

test('a crash is observed: the restart counted, the new pid written', async () => {
  const h = await open({ nodeId: 'node-one' });
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.crash' }));
  const first = await h.enable('com.test.crash');
  process.kill(first.pid!, 'SIGKILL');
  const store = (h as unknown as { store: Store }).store;
  await until(async () => {
    const [row] = await store.listObserved('com.test.crash');
    return row?.state === 'running' && row.restarts === 1 && row.pid !== first.pid && row.pid !== null;
  }, 'the restarted plugin observed running with restarts 1 and a new pid');
});
