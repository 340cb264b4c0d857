/**
 * Cluster primitives end to end: real PluginHosts serving the API to real SDK
 * plugin processes (test/fixtures/sdk/cluster-plugin.js). Two hosts, each with
 * its own data dir, share one SQLite file, so the same plugin runs twice
 * against one store, as it will on several hosts sharing PostgreSQL.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../../src/errors';
import { packBundle } from '../../src/bundle';
import { PluginHost } from '../../src/runtime';
import { grpcCodeFor } from '../../src/runtime/api-service';
import { SqliteStore } from '../../src/store';
import { rejected } from '../fixtures/expect-error';
import { FIXTURES, tempDir, until, waitGone } from '../helpers';

const ID = 'com.acme.cluster';
let work: ReturnType<typeof tempDir>;
let hosts: PluginHost[] = [];
let stores: SqliteStore[] = [];

async function bundle(id: string): Promise<string> {
  const dir = path.join(work.dir, `src-${id}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir, { recursive: true });
  const manifest = { id, name: id, version: '1.0.0', server: { runtime: 'node', entry: 'main.js' }, limits: { hook_timeout_ms: 15_000 } };
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'main.js'), `require(${JSON.stringify(path.join(FIXTURES, 'sdk', 'cluster-plugin.js'))});\n`);
  await packBundle(dir, `${dir}.tar.gz`);
  return `${dir}.tar.gz`;
}

/**
 * Hosts on their own data dirs and the shared database file, each running the given plugins. All
 * are open before any install, so none takes another's plugin record for one of its own.
 */
async function openHosts(plugins: string[][]): Promise<PluginHost[]> {
  const opened: PluginHost[] = [];
  for (const [i] of plugins.entries()) {
    const store = SqliteStore.open({ file: path.join(work.dir, 'shared.db'), sweepIntervalMs: 0 });
    stores.push(store);
    const host = await PluginHost.open({ dataDir: path.join(work.dir, `host-${i}`), store, logger: pino({ level: 'silent' }), defaults: { healthIntervalMs: 60_000 } });
    hosts.push(host);
    opened.push(host);
  }
  for (const [i, ids] of plugins.entries()) {
    for (const id of ids) {
      await opened[i].install(await bundle(id));
      await opened[i].enable(id);
    }
  }
  return opened;
}

const hook = async (host: PluginHost, id: string, name: string, payload: unknown): Promise<any> => (await host.callHook(id, name, payload)).payload;

beforeEach(() => { work = tempDir('pht-cluster-'); });
afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  await Promise.all(stores.map((s) => s.close()));
  hosts = [];
  stores = [];
  work.cleanup();
});

test('a lock is held by one instance; names are per plugin; a killed holder loses it after its TTL and its token is refused', async () => {
  const [a, b] = await openHosts([[ID, 'com.acme.other'], [ID]]);
  const held = await hook(a, ID, 'Lock', { name: 'leader', ttlMs: 1_000 });
  expect(held).toEqual({ acquired: true, token: expect.any(Number), expiresAt: expect.any(Number) });
  expect(await hook(b, ID, 'Lock', { name: 'leader', ttlMs: 1_000 })).toEqual({ acquired: false });
  // Another plugin's "leader" is another lock.
  expect(await hook(a, 'com.acme.other', 'Lock', { name: 'leader', ttlMs: 1_000 })).toMatchObject({ acquired: true });

  const pid = (await a.get(ID)).pid as number;
  process.kill(pid, 'SIGKILL');
  expect(await waitGone(pid)).toBe(true);
  const taken = await hook(b, ID, 'Lock', { name: 'leader', ttlMs: 60_000, waitMs: 10_000 });
  expect(taken.acquired).toBe(true);
  expect(taken.token).toBeGreaterThan(held.token);
  // The dead holder's token can neither extend nor free the lock any more.
  const store = stores[1];
  for (const attempt of [store.lockRefresh(ID, 'leader', held.token, 1_000), store.lockRelease(ID, 'leader', held.token)]) {
    const err = await rejected(attempt);
    expect(err.code).toBe(Errors.LOCK_TOKEN_STALE.code);
    expect(err.message).toContain(`token ${held.token} is stale (the lock has since been granted with token ${taken.token})`);
  }
  expect(await hook(b, ID, 'LeaseState', { name: 'leader' })).toMatchObject({ held: true, lost: false });
});

test('a holder stalled past its TTL loses the lock to the other host; its refresh is refused and the lease reports it lost', async () => {
  const [a, b] = await openHosts([[ID], [ID]]);
  const held = await hook(a, ID, 'Lock', { name: 'stalled', ttlMs: 300 });
  const stall = hook(a, ID, 'Stall', { ms: 1_500 });
  const taken = await hook(b, ID, 'Lock', { name: 'stalled', ttlMs: 60_000, waitMs: 10_000 });
  await stall;
  expect(taken.token).toBeGreaterThan(held.token);
  await until(async () => (await hook(a, ID, 'LeaseState', { name: 'stalled' })).lost, 'the stalled lease to be reported lost');
  expect((await hook(a, ID, 'LeaseState', { name: 'stalled' })).reason).toContain(
    `lock "stalled" of plugin "${ID}": token ${held.token} is stale (the lock has since been granted with token ${taken.token})`,
  );
  expect(await hook(b, ID, 'LeaseState', { name: 'stalled' })).toMatchObject({ held: true, lost: false });
});

test('stale tokens and claims outside the current period reach plugins as FAILED_PRECONDITION', () => {
  expect(grpcCodeFor(Errors.LOCK_TOKEN_STALE('p', 'l', 1, 'why'))).toBe(grpc.status.FAILED_PRECONDITION);
  expect(grpcCodeFor(Errors.JOB_PERIOD_NOT_CURRENT('p', 'j', 1, 5))).toBe(grpc.status.FAILED_PRECONDITION);
});

test('a job scheduled by the same plugin on two hosts runs once per period of 300 ms', async () => {
  const [a, b] = await openHosts([[ID], [ID]]);
  const everyMs = 300;
  await Promise.all([hook(a, ID, 'Schedule', { name: 'digest', everyMs }), hook(b, ID, 'Schedule', { name: 'digest', everyMs })]);
  const runs = async () => [(await hook(a, ID, 'Runs', { name: 'digest' })).periods as number[], (await hook(b, ID, 'Runs', { name: 'digest' })).periods as number[]];
  await until(async () => new Set((await runs()).flat()).size >= 5, 'five periods to run', 30_000);
  await Promise.all([hook(a, ID, 'Unschedule', { name: 'digest' }), hook(b, ID, 'Unschedule', { name: 'digest' })]);
  const [onA, onB] = await runs();
  const all = [...onA, ...onB].sort((x, y) => x - y);
  // No period ran twice, on one host or across both.
  expect(all.length).toBe(new Set(all).size);
  expect(all[all.length - 1] - all[0]).toBeGreaterThanOrEqual(4);
});
