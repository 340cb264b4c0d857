/**
 * A PluginHost on PostgreSQL: a real plugin's records, configuration and KV
 * live in the database and come back when the host reopens; a second host on
 * the same database is refused rather than allowed to diverge. Its node's
 * heartbeat and observed plugin states are rows on the database's clock.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import type { Store } from '../../src/store';
import { tempDir } from '../helpers';
import { adminQuery, describeIfPg, freshDatabase, type FreshDatabase } from '../helpers/postgres';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });

describeIfPg('a PluginHost on PostgreSQL')('a PluginHost on PostgreSQL', () => {
  let db: FreshDatabase;
  let work: { dir: string; cleanup(): void };
  const hosts: PluginHost[] = [];

  const open = async () => {
    const h = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: silent, database: db.url });
    hosts.push(h);
    return h;
  };

  beforeEach(async () => {
    db = await freshDatabase();
    work = tempDir();
  });
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.close();
    await db.drop();
    work.cleanup();
  });

  test('records, configuration and KV are in the database and survive a reopen', async () => {
    const id = 'com.test.pg';
    let h = await open();
    await h.install(await fixtureBundle(work.dir, { id }));
    await h.enable(id);
    await h.setConfig(id, { greeting: 'from postgres', count: 2 });
    await h.callHook(id, 'Kv', { op: 'set', key: 'k\u0000nul', value: 'v1' });

    const rows = await adminQuery<{ id: string; enabled: boolean; config: string }>('SELECT id, enabled, config FROM plughost_plugins', [], db.name);
    expect(rows).toEqual([{ id, enabled: true, config: expect.stringContaining('from postgres') }]);
    const kv = await adminQuery<{ key: Buffer; value: Buffer }>('SELECT key, value FROM plughost_kv WHERE plugin_id = $1', [id], db.name);
    expect(kv.map((r) => r.key.toString('utf8'))).toEqual(['k\u0000nul']);

    await h.close();
    hosts.splice(0);
    h = await open();
    expect(await h.get(id)).toMatchObject({ id, enabled: true, state: 'running' });
    expect(await h.getConfig(id)).toMatchObject({ greeting: 'from postgres', count: 2 });
    expect((await h.callHook(id, 'Kv', { op: 'get', key: 'k\u0000nul' })).payload).toEqual({ found: true, value: 'v1' });
  });

  test("nodes and observed state on the database's clock: this node's row follows the plugin, another node's heartbeat is listed beside it", async () => {
    const id = 'com.test.pg-nodes';
    const h = await open();
    await h.install(await fixtureBundle(work.dir, { id }));
    const running = await h.enable(id);
    expect(await h.describe(id)).toMatchObject({ state: 'running', nodes: [{ nodeId: h.nodeId, state: 'running', lastError: null }] });
    const observed = await adminQuery<{ node_id: string; state: string; pid: number }>('SELECT node_id, state, pid FROM plughost_observed WHERE plugin_id = $1', [id], db.name);
    expect(observed).toEqual([{ node_id: h.nodeId, state: 'running', pid: running.pid }]);

    // Another node heartbeats through the same store (an old heartbeat: 30 s ago).
    const store = (h as unknown as { store: Store }).store;
    await store.heartbeat({ nodeId: 'node-other', version: '0.0.1', startedAt: 1_700_000_000_000 });
    await adminQuery("UPDATE plughost_nodes SET heartbeat_at = heartbeat_at - 30000 WHERE node_id = 'node-other'", [], db.name);
    const cluster = await h.cluster();
    expect(cluster.nodeId).toBe(h.nodeId);
    const byId = Object.fromEntries(cluster.nodes.map((n) => [n.nodeId, n]));
    expect(Object.keys(byId).sort()).toEqual([h.nodeId, 'node-other'].sort());
    expect(byId['node-other']).toMatchObject({ version: '0.0.1', startedAt: 1_700_000_000_000 });
    expect(byId['node-other'].heartbeatAgeMs).toBeGreaterThanOrEqual(30_000);
    expect(byId['node-other'].heartbeatAgeMs).toBeLessThan(90_000);
    expect(byId[h.nodeId].heartbeatAgeMs).toBeLessThan(60_000);

    await h.remove(id);
    expect(await adminQuery('SELECT 1 FROM plughost_observed WHERE plugin_id = $1', [id], db.name)).toEqual([]);
  });
});
