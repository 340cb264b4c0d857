/**
 * API.CallStream through a real host and real plugin processes: an SDK
 * plugin's calls of every kind go over the stream when the host offers it
 * (counted in /metrics) and answer exactly as over unary calls; a unary-only
 * plugin is untouched; many calls in flight, a slow integrator method beside
 * KV, and a stream the host ends while a call waits.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import type { ApiTransportMode } from '../../src/runtime/types';
import { SqliteStore } from '../../src/store';
import { MAX_KV_TTL_MS } from '../../src/protocol/limits';
import { fixtureBundle, type FixtureOptions } from './fixtures';
import { tempDir, until } from '../helpers';

const PROGRAM = 'runtime/api-client-plugin.js';
const ID = 'com.test.apistream';

let work: { dir: string; cleanup(): void } | undefined;
let host: PluginHost | undefined;
let releaseSlow: (() => void) | undefined;

afterEach(async () => {
  releaseSlow?.();
  releaseSlow = undefined;
  await host?.close();
  host = undefined;
  work?.cleanup();
  work = undefined;
});

async function hostWith(apiTransport: ApiTransportMode, plugins: FixtureOptions[]): Promise<PluginHost> {
  work = tempDir();
  const slowGate = new Promise<void>((resolve) => {
    releaseSlow = resolve;
  });
  const h = await PluginHost.open({
    dataDir: path.join(work.dir, 'data'),
    logger: pino({ level: 'silent' }),
    defaults: { healthIntervalMs: 60_000, apiTransport },
    api: {
      slow: async () => {
        await slowGate;
        return { slow: 'done' };
      },
      hang: () => new Promise(() => undefined),
    },
  });
  host = h;
  for (const p of plugins) {
    await h.install(await fixtureBundle(work.dir, p));
    await h.enable(p.id);
  }
  return h;
}

const sdkPlugin: FixtureOptions = { id: ID, program: PROGRAM, permissions: ['slow', 'hang'], limits: { hook_timeout_ms: 20_000 } };

async function counter(h: PluginHost, metric: 'apiStreamsOpened' | 'apiStreamCalls', id: string): Promise<number> {
  const { values } = await h.metrics[metric].get();
  return values.find((v) => v.labels.plugin === id)?.value ?? 0;
}

async function hook(h: PluginHost, id: string, name: string, payload: unknown = {}): Promise<any> {
  return (await h.callHook(id, name, payload)).payload;
}

test('every kind of call answers the same over the stream as over unary calls, and the stream carries them when offered', async () => {
  const tours: Record<string, unknown> = {};
  for (const transport of ['stream', 'unary'] as const) {
    const h = await hostWith(transport, [sdkPlugin]);
    tours[transport] = await hook(h, ID, 'Tour');
    const calls = await counter(h, 'apiStreamCalls', ID);
    if (transport === 'stream') {
      expect(await counter(h, 'apiStreamsOpened', ID)).toBe(1);
      // Tour makes 19 calls; the SDK's own (a lease refresh) may add some.
      expect(calls).toBeGreaterThanOrEqual(19);
    } else {
      expect(await counter(h, 'apiStreamsOpened', ID)).toBe(0);
      expect(calls).toBe(0);
    }
    expect(await h.getConfig(ID)).toMatchObject({ greeting: 'saved' });
    await h.close();
    host = undefined;
    work!.cleanup();
    work = undefined;
  }
  expect(tours.stream).toEqual(tours.unary);
  expect(tours.stream).toMatchObject({
    set: true,
    get: { n: 1 },
    missing: null,
    list: { keys: ['tour'], nextPageToken: '' },
    manifest: ID,
    hostTopic: { error: { code: 'PERMISSION_DENIED' } },
    badKey: { error: { code: 'INVALID_ARGUMENT' } },
    denied: { error: { code: 'PERMISSION_DENIED' } },
    callDenied: { error: { code: 'PERMISSION_DENIED' } },
    lock: { token: expect.any(Number) },
    lockedAgain: true,
    deleted: true,
  });
});

test('a KV ttl below 0, not finite, or past MAX_KV_TTL_MS is refused naming it: by the SDK on both transports, and by the host from a plugin without the SDK', async () => {
  const over = MAX_KV_TTL_MS + 1;
  for (const transport of ['stream', 'unary'] as const) {
    const h = await hostWith(transport, [sdkPlugin, { id: 'com.test.contract' }]);
    const refused = await hook(h, ID, 'Ttl', { ttls: [-1, -0.5, 'NaN', 'Infinity', over] });
    expect(refused.stored).toBeNull();
    const shown = ['-1', '-0.5', 'NaN', 'Infinity', String(over)];
    refused.answers.forEach((answer: { error?: { code: string; message: string } }, i: number) => {
      expect(answer.error?.code).toBe('INVALID_ARGUMENT');
      expect(answer.error?.message).toContain(`KVSet: KV set of "ttl": ttlMs ${shown[i]} is invalid; expected milliseconds from 0 (no expiry) to ${MAX_KV_TTL_MS}`);
    });
    // 0 is no expiry, a fraction rounds up: both are writes.
    expect(await hook(h, ID, 'Ttl', { ttls: [0, 1.5, 60_000] })).toEqual({ answers: [{ value: true }, { value: true }, { value: true }], stored: 60_000 });

    // Without the SDK's check: -1 written into the uint64 field as Go's uint64(int64(-1)) does arrives near 2^64, and a
    // value past MAX_KV_TTL_MS arrives as itself; the host refuses both rather than store an expiry nobody asked for.
    for (const [ttlMs, shown] of [['18446744073709551615', '18446744073709551615 is invalid; .*a negative ttl_ms written into the uint64 field arrives this large'], [String(over), `${over} is invalid`]]) {
      await expect(h.callHook('com.test.contract', 'Kv', { op: 'set', key: 'neg', value: 'x', ttlMs })).rejects.toThrow(new RegExp(`KV set of "neg": ttlMs ${shown}`));
    }
    expect(await hook(h, 'com.test.contract', 'Kv', { op: 'get', key: 'neg' })).toEqual({ found: false, value: null });
    await h.close();
    host = undefined;
    work!.cleanup();
    work = undefined;
  }
});

test('a unary-only plugin (no SDK) keeps its unary calls on a host that offers the stream', async () => {
  const h = await hostWith('stream', [{ id: 'com.test.contract' }]);
  expect(await hook(h, 'com.test.contract', 'Kv', { op: 'set', key: 'k', value: 'v' })).toEqual({ ok: true });
  expect(await hook(h, 'com.test.contract', 'Kv', { op: 'get', key: 'k' })).toEqual({ found: true, value: 'v' });
  expect(await counter(h, 'apiStreamsOpened', 'com.test.contract')).toBe(0);
  expect(await h.metrics.registry.metrics()).toMatch(/plughost_api_call_duration_seconds_count\{plugin="com.test.contract",method="KVGet",outcome="ok"\} 1/);
});

test('500 kv.set + kv.get pairs in flight at once from one plugin all come back right, over one stream', async () => {
  const h = await hostWith('stream', [sdkPlugin]);
  expect(await hook(h, ID, 'Many', { n: 500 })).toEqual({ wrong: [] });
  expect(await counter(h, 'apiStreamCalls', ID)).toBe(1000);
  expect(await counter(h, 'apiStreamsOpened', ID)).toBe(1);
});

test('the calls of one message share a commit: good writes are kept and answered, refused ones fail alone with their own reason', async () => {
  const h = await hostWith('stream', [sdkPlugin]);
  const before = await counter(h, 'apiStreamCalls', ID);
  const outcomes = await hook(h, ID, 'Mixed');
  expect(await counter(h, 'apiStreamCalls', ID)).toBe(before + 6);
  expect(outcomes).toEqual([
    { value: true },
    { error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('KVSet') } },
    { value: true },
    { error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/KVSet: .*1048576/) } },
    // mixed-0 was written by the first call of the same message.
    { value: false },
    { value: true },
  ]);
  // Read from the file over a second connection: committed, not only visible to the host's own.
  const file = SqliteStore.open({ file: path.join(work!.dir, 'data', 'plughost.db'), sweepIntervalMs: 0 });
  try {
    const got = await Promise.all(['mixed-0', 'mixed-1', 'mixed-2', 'mixed-big'].map((k) => file.kvGet(ID, k)));
    expect(got.map((v) => v?.toString())).toEqual(['0', '1', '2', undefined]);
  } finally {
    await file.close();
  }
});

test('a slow integrator method does not hold back KV calls made after it', async () => {
  const h = await hostWith('stream', [sdkPlugin]);
  // The slow method waits for releaseSlow, which runs only after the hook answered: KV behind it would time the hook out.
  expect(await hook(h, ID, 'SlowThenKv')).toEqual({ value: 42, slowDone: false });
  releaseSlow!();
  expect(await hook(h, ID, 'SlowOutcome')).toEqual({ value: { slow: 'done' } });
});

test('disabling the plugin fails its call in flight at once with the reason, not at its deadline', async () => {
  const h = await hostWith('stream', [sdkPlugin]);
  await hook(h, ID, 'Hang');
  await until(async () => (await counter(h, 'apiStreamCalls', ID)) === 1, 'the Hang call reached the host');
  await h.disable(ID);
  const outcome = () => h.logs(ID).find((e) => e.message.includes('hang-outcome:'))?.message;
  await until(() => outcome() !== undefined, 'the plugin reported how its call ended');
  expect(outcome()).toMatch(/hang-outcome: UNAVAILABLE: Invoke: the API stream to the host broke \(UNAVAILABLE: the plugin was stopped\)/);
});
