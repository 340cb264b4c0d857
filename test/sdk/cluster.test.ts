/**
 * ctx.api.cluster as a plugin sees it, against the test harness's in-memory
 * cluster: two instances of one plugin share a MemoryCluster, as instances on
 * several hosts share a database.
 */
import { MemoryCluster, createTestHost, type TestHost } from '../../sdk/testing';
import { fixture, until } from '../helpers';

type Hooks = {
  Lock: { name: string; ttlMs: number; waitMs?: number };
  LeaseState: { name: string };
  Release: { name: string };
  Stall: { ms: number };
  Schedule: { name: string; everyMs: number };
  Unschedule: { name: string };
  Runs: { name: string };
  Now: Record<string, never>;
};
const MANIFEST = { id: 'com.example.cluster', name: 'cluster', version: '1.0.0' };

let a: TestHost<Hooks>;
let b: TestHost<Hooks>;
beforeAll(async () => {
  const cluster = new MemoryCluster();
  [a, b] = await Promise.all([createTestHost<Hooks>(fixture('sdk/cluster-plugin.js'), { manifest: MANIFEST, cluster }), createTestHost<Hooks>(fixture('sdk/cluster-plugin.js'), { manifest: MANIFEST, cluster })]);
});
afterAll(() => Promise.all([a.close(), b.close()]));

const run = async <K extends keyof Hooks & string>(host: TestHost<Hooks>, hook: K, payload: Hooks[K]): Promise<any> => {
  const out = await host.runHook(hook, payload);
  if (out.rejected) throw new Error(out.reason);
  return out.payload;
};

test('one instance holds a lock; the other gets it once released, with a larger token', async () => {
  const first = await run(a, 'Lock', { name: 'release-me', ttlMs: 60_000 });
  expect(first).toEqual({ acquired: true, token: expect.any(Number), expiresAt: expect.any(Number) });
  expect(await run(b, 'Lock', { name: 'release-me', ttlMs: 60_000 })).toEqual({ acquired: false });
  expect(await run(a, 'Release', { name: 'release-me' })).toEqual({ lost: false });
  const second = await run(b, 'Lock', { name: 'release-me', ttlMs: 60_000 });
  expect(second.acquired).toBe(true);
  expect(second.token).toBeGreaterThan(first.token);
  await run(b, 'Release', { name: 'release-me' });
});

test('a held lease is refreshed: it outlives its TTL while the holder is alive', async () => {
  await run(a, 'Lock', { name: 'refreshed', ttlMs: 300 });
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await run(b, 'Lock', { name: 'refreshed', ttlMs: 300 })).toEqual({ acquired: false });
  expect(await run(a, 'LeaseState', { name: 'refreshed' })).toMatchObject({ held: true, lost: false });
  await run(a, 'Release', { name: 'refreshed' });
});

test('a holder stalled past its TTL loses the lock to a waiter, and its old token is refused: the lease reports it lost', async () => {
  const held = await run(a, 'Lock', { name: 'stalled', ttlMs: 300 });
  const stall = run(a, 'Stall', { ms: 1_500 });
  const taken = await run(b, 'Lock', { name: 'stalled', ttlMs: 60_000, waitMs: 10_000 });
  await stall;
  expect(taken.acquired).toBe(true);
  expect(taken.token).toBeGreaterThan(held.token);
  await until(async () => (await run(a, 'LeaseState', { name: 'stalled' })).lost, 'the stalled lease to be reported lost');
  expect((await run(a, 'LeaseState', { name: 'stalled' })).reason).toContain(
    `lock "stalled" of plugin "com.example.cluster": token ${held.token} is stale (the lock has since been granted with token ${taken.token})`,
  );
  // Releasing a lost lease is harmless and leaves the new holder alone.
  expect(await run(a, 'Release', { name: 'stalled' })).toEqual({ lost: true });
  expect(await run(b, 'LeaseState', { name: 'stalled' })).toMatchObject({ held: true, lost: false });
  await run(b, 'Release', { name: 'stalled' });
});

test('bad names and TTLs are INVALID_ARGUMENT naming the field', async () => {
  await expect(run(a, 'Lock', { name: '', ttlMs: 100 })).rejects.toThrow('API request field "name": expected 1-200 bytes of UTF-8 without U+0000');
  await expect(run(a, 'Lock', { name: 'x', ttlMs: 0 })).rejects.toThrow('API request field "ttl_ms": expected 1-3600000 ms, got 0');
  expect(await run(a, 'Schedule', { name: 'bad', everyMs: 1 })).toEqual({ ok: false, error: 'API request field "everyMs": expected 10-604800000 ms, got 1' });
});

test('a job scheduled by both instances runs once per period, and deactivation stops it', async () => {
  const everyMs = 200;
  await Promise.all([run(a, 'Schedule', { name: 'tick', everyMs }), run(b, 'Schedule', { name: 'tick', everyMs })]);
  const periods = async () => [...(await run(a, 'Runs', { name: 'tick' })).periods, ...(await run(b, 'Runs', { name: 'tick' })).periods] as number[];
  await until(async () => new Set(await periods()).size >= 5, 'five periods to run');
  await run(b, 'Unschedule', { name: 'tick' });
  await a.deactivate();
  const seen = await periods();
  // The property that matters: no period ran twice.
  expect(seen.length).toBe(new Set(seen).size);
  await new Promise((r) => setTimeout(r, 3 * everyMs));
  expect(await periods()).toEqual(seen);
});

test('cluster.now is the store clock', async () => {
  const before = Date.now();
  const { now } = await run(a, 'Now', {});
  expect(now).toBeGreaterThanOrEqual(before);
  expect(now).toBeLessThanOrEqual(Date.now());
});
