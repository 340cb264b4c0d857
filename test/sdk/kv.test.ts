/** KV as a plugin sees it through ctx.api.kv, against the harness's in-memory store. */
import { createTestHost, type TestHost } from '../../sdk/testing';
import { fixture } from '../helpers';
import { MAX_KV_TTL_MS } from '../../sdk';

type Op = { action: string; key?: string; value?: unknown; ttlMs?: number; expected?: unknown; expectAbsent?: boolean; prefix?: string; pageSize?: number; pageToken?: string };
let host: TestHost<{ Kv: Op }>;
const kv = async (op: Op): Promise<Record<string, unknown>> => {
  const out = await host.runHook('Kv', op);
  if (out.rejected) throw new Error(out.reason);
  return out.payload as Record<string, unknown>;
};

beforeAll(async () => {
  host = await createTestHost(fixture('sdk/kitchen-sink.js'));
});
afterAll(() => host.close());
beforeEach(() => kv({ action: 'deleteAll' }));

test('JSON set and get; a missing key is undefined', async () => {
  expect(await kv({ action: 'set', key: 'a', value: { x: [1, 2] } })).toEqual({ ok: true });
  expect(await kv({ action: 'get', key: 'a' })).toEqual({ value: { x: [1, 2] } });
  expect(await kv({ action: 'get', key: 'missing' })).toEqual({ value: null });
  expect(host.kv.get('a')).toEqual({ x: [1, 2] });
});

test('raw bytes round trip untouched', async () => {
  const bytes = Buffer.from([0, 255, 1, 254]).toString('base64');
  await kv({ action: 'setBytes', key: 'b', value: bytes });
  expect(await kv({ action: 'getBytes', key: 'b' })).toEqual({ value: bytes });
  expect(host.kv.getBytes('b')).toEqual(Buffer.from([0, 255, 1, 254]));
});

test('a value with a ttl expires', async () => {
  await kv({ action: 'set', key: 't', value: 1, ttlMs: 150 });
  expect(await kv({ action: 'get', key: 't' })).toEqual({ value: 1 });
  await new Promise((r) => setTimeout(r, 250));
  expect(await kv({ action: 'get', key: 't' })).toEqual({ value: null });
});

test('compare-and-set: expectAbsent and expected', async () => {
  expect(await kv({ action: 'set', key: 'c', value: 1, expectAbsent: true })).toEqual({ ok: true });
  expect(await kv({ action: 'set', key: 'c', value: 2, expectAbsent: true })).toEqual({ ok: false });
  expect(await kv({ action: 'set', key: 'c', value: 2, expected: 5 })).toEqual({ ok: false });
  expect(await kv({ action: 'set', key: 'c', value: 2, expected: 1 })).toEqual({ ok: true });
  expect(host.kv.get('c')).toBe(2);
});

test('an expired value counts as absent for compare-and-set', async () => {
  await kv({ action: 'set', key: 'e', value: 1, ttlMs: 50 });
  await new Promise((r) => setTimeout(r, 120));
  expect(await kv({ action: 'set', key: 'e', value: 2, expectAbsent: true })).toEqual({ ok: true });
});

test('delete says whether a live value went; deleteAll counts', async () => {
  await kv({ action: 'set', key: 'd', value: 1 });
  expect(await kv({ action: 'delete', key: 'd' })).toEqual({ deleted: true });
  expect(await kv({ action: 'delete', key: 'd' })).toEqual({ deleted: false });
  await kv({ action: 'set', key: 'x1', value: 1 });
  await kv({ action: 'set', key: 'x2', value: 1 });
  expect(await kv({ action: 'deleteAll' })).toEqual({ deleted: 2 });
  expect(host.kv.keys()).toEqual([]);
});

test('list by prefix in byte order across pages, and listPage tokens', async () => {
  const keys = ['p:b', 'p:a', 'p:c', 'p:e', 'p:d', 'q:a'];
  for (const key of keys) await kv({ action: 'set', key, value: key });
  expect(await kv({ action: 'list', prefix: 'p:', pageSize: 2 })).toEqual({ keys: ['p:a', 'p:b', 'p:c', 'p:d', 'p:e'] });
  const first = await kv({ action: 'listPage', prefix: 'p:', pageSize: 3 });
  expect(first).toEqual({ keys: ['p:a', 'p:b', 'p:c'], nextPageToken: 'p:c' });
  expect(await kv({ action: 'listPage', prefix: 'p:', pageSize: 3, pageToken: 'p:c' })).toEqual({ keys: ['p:d', 'p:e'], nextPageToken: '' });
});

test('a ttl below 0 or too large is refused naming it, and nothing is written', async () => {
  for (const ttlMs of [-1, -0.5, MAX_KV_TTL_MS + 1]) {
    await expect(kv({ action: 'set', key: 'neg', value: 1, ttlMs })).rejects.toThrow(`KVSet: KV set of "neg": ttlMs ${ttlMs} is invalid; expected milliseconds from 0 (no expiry) to ${MAX_KV_TTL_MS}`);
  }
  expect(host.kv.keys()).toEqual([]);
  // Seeding the test host directly takes the same rule.
  expect(() => host.kv.set('seed', 1, -1)).toThrow(`KV set of "seed": ttlMs -1 is invalid`);
  expect(host.kv.keys()).toEqual([]);
});

test('a bad key is refused with INVALID_ARGUMENT', async () => {
  await expect(kv({ action: 'set', key: '', value: 1 })).rejects.toThrow(/INVALID_ARGUMENT|key: expected 1-256 bytes/);
});
