/**
 * What a host writes about itself into the store: its heartbeat, and per plugin
 * what it observes (state, last error, pid, restarts) under its node id.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { SqliteStore, type Store } from '../../src/store';
import { tempDir, trackTimers, until } from '../helpers';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });
const timers = trackTimers();
let work: { dir: string; cleanup(): void };
let host: PluginHost | undefined;

beforeEach(() => {
  work = tempDir();
});
afterEach(async () => {
  await host?.close();
  host = undefined;
  work.cleanup();
  expect(timers.pendingFrom('/src/')).toEqual([]);
});

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the host heartbeats on its interval while open and never after close', async () => {
  const { store, beats } = countingStore(path.join(work.dir, 'counted.db'));
  const before = Date.now();
  host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: silent, store, heartbeatIntervalMs: 20, hostVersion: '9.8.7' });
  // The first heartbeat is written during open: the node is listed at once.
  const cluster = await host.cluster();
  expect(cluster.nodes).toEqual([{ nodeId: host.nodeId, version: '9.8.7', startedAt: host.startedAt, heartbeatAgeMs: expect.any(Number) }]);
  expect(host.startedAt).toBeGreaterThanOrEqual(before);
  expect(cluster.nodes[0].heartbeatAgeMs).toBeLessThan(60_000);
  await until(() => beats() >= 4, 'four heartbeats');
  await host.close();
  host = undefined;
  const atClose = beats();
  await sleep(150);
  expect(beats()).toBe(atClose);
});

test("a plugin's observed row follows its state: running with its pid, then not_running without after disable; removed with the plugin", async () => {
  host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: silent, nodeId: 'node-one', defaults: { healthIntervalMs: 60_000 } });
  const h = host;
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.obs' }));
  let detail = await h.describe('com.test.obs');
  expect(detail.nodes).toEqual([{ nodeId: 'node-one', state: 'not_running', lastError: null, updatedAt: expect.any(Number) }]);

  const running = await h.enable('com.test.obs');
  detail = await h.describe('com.test.obs');
  expect(detail).toMatchObject({ state: 'running', lastError: null, nodes: [{ nodeId: 'node-one', state: 'running', lastError: null }] });
  // The store's row carries what REST does not show: the pid and the restarts.
  const store = (h as unknown as { store: Store }).store;
  expect(await store.listObserved('com.test.obs')).toEqual([
    { pluginId: 'com.test.obs', nodeId: 'node-one', state: 'running', lastError: null, pid: running.pid, restarts: 0, updatedAt: expect.any(Number) },
  ]);

  await h.disable('com.test.obs');
  // State rows are written behind the operator's action; describe() waits for them.
  expect((await h.describe('com.test.obs')).state).toBe('not_running');
  expect(await store.listObserved('com.test.obs')).toEqual([
    { pluginId: 'com.test.obs', nodeId: 'node-one', state: 'not_running', lastError: null, pid: null, restarts: 0, updatedAt: expect.any(Number) },
  ]);

  await h.remove('com.test.obs');
  expect(await store.listObserved('com.test.obs')).toEqual([]);
});

test('a crash is observed with its error and the restart counted', async () => {
  host = await PluginHost.open({
    dataDir: path.join(work.dir, 'data'), logger: silent, nodeId: 'node-one',
    defaults: { healthIntervalMs: 60_000, restartBackoffMs: 50, restartBackoffMaxMs: 100 },
  });
  const h = host;
  await h.install(await fixtureBundle(work.dir, { id: 'com.test.crash' }));
  const first = await h.enable('com.test.crash');
  process.kill(first.pid!, 'SIGKILL');
  const store = (h as unknown as { store: Store }).store;
  await until(async () => {
    const [row] = await store.listObserved('com.test.crash');
    return row?.state === 'running' && row.restarts === 1 && row.pid !== first.pid && row.pid !== null;
  }, 'the restarted plugin observed running with restarts 1 and a new pid');
});
