/**
 * The Store contract, run against every implementation: what the runtime may
 * rely on whichever database it is given. SQLite runs on a temp file;
 * PostgreSQL on a database of its own (skipped, saying what to install, when
 * there is no test server, unless PLUGHOST_REQUIRE_INTEROP=1).
 *
 * Expiry runs on each store's real clock (the database's, for PostgreSQL):
 * presence is asserted with long TTLs, absence by polling after a short one.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { Errors, isError } from '../../src/errors';
import type { Manifest } from '../../src/manifest';
import { MemoryStore } from '../../src/conformance/memory-store';
import { PostgresStore, SqliteStore } from '../../src/store';
import type { PluginRecord, Store } from '../../src/store';
import { BUNDLE_CHUNK_BYTES } from '../../src/store/store';
import { MAX_KV_TTL_MS } from '../../src/protocol/limits';
import { rejected } from '../fixtures/expect-error';
import { tempDir } from '../helpers';
import { adminQuery, freshDatabase, havePg, type FreshDatabase } from '../helpers/postgres';

interface Harness {
  name: string;
  /** Once per suite. */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A store on an empty database. */
  open(): Promise<Store>;
  /** Empties the database after a test. */
  reset(): Promise<void>;
  /** Overwrites one stored chunk of a bundle behind the store's back (a damaged disk or row). */
  corruptChunk(sha256: string, seq: number, data: Buffer): Promise<void>;
}

function sqliteHarness(): Harness {
  let tmp: ReturnType<typeof tempDir>;
  let n = 0;
  return {
    name: 'SqliteStore',
    setup: async () => { tmp = tempDir('pht-contract-'); },
    teardown: async () => tmp.cleanup(),
    open: async () => SqliteStore.open({ file: path.join(tmp.dir, `store-${++n}.db`), sweepIntervalMs: 0 }),
    reset: async () => undefined,
    corruptChunk: async (sha256, seq, data) => {
      const db = new Database(path.join(tmp.dir, `store-${n}.db`));
      try {
        db.prepare('UPDATE bundle_chunks SET data = ? WHERE sha256 = ? AND seq = ?').run(data, sha256, seq);
      } finally {
        db.close();
      }
    },
  };
}

function postgresHarness(): Harness {
  let db: FreshDatabase;
  return {
    name: 'PostgresStore',
    setup: async () => { db = await freshDatabase(); },
    teardown: async () => db.drop(),
    open: async () => PostgresStore.open({ url: db.url, sweepIntervalMs: 0, poolSize: 8 }),
    reset: async () => {
      await adminQuery('TRUNCATE plughost_plugins, plughost_kv, plughost_bundles, plughost_bundle_chunks, plughost_locks, plughost_job_tickets, plughost_nodes, plughost_observed', [], db.name);
    },
    corruptChunk: async (sha256, seq, data) => {
      await adminQuery('UPDATE plughost_bundle_chunks SET data = $3 WHERE sha256 = $1 AND seq = $2', [sha256, seq, data], db.name);
    },
  };
}

const harnesses: Harness[] = [sqliteHarness(), ...(havePg('store contract on PostgreSQL') ? [postgresHarness()] : [])];

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds, for at most ~10 s (a loaded machine may be slow to pass a 1 ms TTL). */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`${what} did not happen within 10 s`);
}

/** Sets keys with a 1 ms TTL and waits until the store no longer shows them. */
async function setExpired(store: Store, pluginId: string, keys: string[]): Promise<void> {
  for (const k of keys) await store.kvSet(pluginId, k, b(`gone ${k}`), { ttlMs: 1 });
  for (const k of keys) await eventually(`expiry of ${JSON.stringify(k)}`, async () => (await store.kvGet(pluginId, k)) === undefined);
}

function record(id: string, over: Partial<PluginRecord> = {}): PluginRecord {
  // Keys deliberately out of alphabetical order, nested, with non-ASCII text: JSON stored as
  // text keeps them as written, a jsonb column would not.
  const manifest = {
    version: '1.2.3',
    id,
    name: `Plugin ${id} — ünïcödé 😀`,
    server: { executable: 'bin/run' },
    props: { zeta: [1, 'two', null, { y: true, x: false }], alpha: { '': 0, ' ': -1.5 }, middle: 'a\u0000b' },
  } as unknown as Manifest;
  return {
    id,
    manifest,
    version: '1.2.3',
    enabled: true,
    state: 'not_running',
    lastError: null,
    config: { zz: 'last first', greeting: 'hi', count: 3, loud: false, nested: { b: 1, a: [2, 3] } },
    bundleSha256: 'ab'.repeat(32),
    installedAt: 1_700_000_000_123,
    updatedAt: 1_700_000_000_456,
    generation: 1,
    ...over,
  };
}

/** Every page of a listing, following `next`. */
async function listAll(store: Store, pluginId: string, prefix: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  for (let pages = 1; pages <= 1_000; pages++) {
    const page = await store.kvList(pluginId, prefix, limit, after);
    expect(page.keys.length).toBeLessThanOrEqual(limit);
    keys.push(...page.keys);
    if (page.next === null) return keys;
    expect(page.next).toBe(page.keys[page.keys.length - 1]);
    after = page.next;
  }
  throw new Error('listing did not end within 1000 pages');
}

const byteOrder = (x: string, y: string): number => Buffer.compare(b(x), b(y));

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The whole stream; rejects with what the stream fails with. */
async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** A stream delivering `bytes` in pieces of awkward sizes, so chunk boundaries fall inside pieces. */
function oddPieces(bytes: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 7919) % 700_001 + 1) pieces.push(bytes.subarray(at, at + size));
  return Readable.from(pieces);
}

describe.each(harnesses)('Store contract: $name', (h) => {
  let store: Store;
  useStore(h, (s) => { store = s; });

  describe('plugin records', () => {
    it('round-trip every field; manifest and config keep their key order', async () => {
      const r = record('p1', { lastError: 'exit status 2: "boom"', state: 'failed_to_stay_running', enabled: false });
      await store.putPlugin(r);
      const got = await store.getPlugin('p1');
      expect(got).toEqual(r);
      expect(JSON.stringify(got?.manifest)).toBe(JSON.stringify(r.manifest));
      expect(JSON.stringify(got?.config)).toBe(JSON.stringify(r.config));
      expect(typeof got?.installedAt).toBe('number');
      expect(typeof got?.updatedAt).toBe('number');
      expect(await store.getPlugin('nope')).toBeUndefined();
    });

    it('lists by id in byte order', async () => {
      const ids = ['b', 'a-1', 'é', 'B', 'a', 'a.b', '10', '9'];
      for (const id of ids) await store.putPlugin(record(id));
      const listed = await store.listPlugins();
      expect(listed.map((r) => r.id)).toEqual([...ids].sort(byteOrder));
      expect(listed[0]).toEqual(record(listed[0].id));
    });

    it('put replaces the whole record', async () => {
      await store.putPlugin(record('p1'));
      const next = record('p1', {
        version: '2.0.0', enabled: false, state: 'running', lastError: 'x', config: { other: 1 },
        bundleSha256: 'cd'.repeat(32), installedAt: 5, updatedAt: 6,
        manifest: { id: 'p1', name: 'Two', version: '2.0.0' } as Manifest,
      });
      expect(await store.putPlugin(next)).toBe(2);
      expect(await store.getPlugin('p1')).toEqual({ ...next, generation: 2 });
      expect(await store.listPlugins()).toHaveLength(1);
    });

    it('update changes the patched fields, keeps the rest and bumps updatedAt', async () => {
      const r = record('p1');
      await store.putPlugin(r);
      const before = Date.now();
      const updated = await store.updatePlugin('p1', { state: 'running', lastError: 'was slow', config: undefined });
      const after = Date.now();
      expect(updated.updatedAt).toBeGreaterThanOrEqual(before);
      expect(updated.updatedAt).toBeLessThanOrEqual(after);
      expect(updated).toEqual({ ...r, state: 'running', lastError: 'was slow', updatedAt: updated.updatedAt });
      expect(await store.getPlugin('p1')).toEqual(updated);
      expect(JSON.stringify(updated.config)).toBe(JSON.stringify(r.config));

      const again = await store.updatePlugin('p1', { enabled: false, lastError: null, config: { b: 2, a: 1 } });
      expect(again.updatedAt).toBeGreaterThanOrEqual(updated.updatedAt);
      expect(await store.getPlugin('p1')).toEqual({ ...updated, enabled: false, lastError: null, config: { b: 2, a: 1 }, updatedAt: again.updatedAt, generation: 2 });
      expect(Object.keys((await store.getPlugin('p1'))?.config ?? {})).toEqual(['b', 'a']);
    });

    it('the store assigns the generation: 1 when new, one more for each install and each change of enabled or config, never for state', async () => {
      expect(await store.putPlugin({ ...record('p1'), generation: 99 })).toBe(1);
      expect((await store.updatePlugin('p1', { state: 'running', lastError: null })).generation).toBe(1);
      expect((await store.updatePlugin('p1', { enabled: false })).generation).toBe(2);
      expect((await store.updatePlugin('p1', { config: { a: 1 } })).generation).toBe(3);
      expect(await store.putPlugin(record('p1', { version: '2.0.0' }))).toBe(4);
      expect((await store.getPlugin('p1'))?.generation).toBe(4);
      await store.deletePlugin('p1');
      expect(await store.putPlugin(record('p1'))).toBe(1);
    });

    it('update of an unknown id is STORE_UNKNOWN_PLUGIN and creates nothing', async () => {
      const err = await rejected(store.updatePlugin('ghost', { enabled: true }));
      expect(isError(err, Errors.STORE_UNKNOWN_PLUGIN)).toBe(true);
      expect(err.message).toContain('ghost');
      expect(await store.listPlugins()).toEqual([]);
    });

    it("delete removes the plugin and its KV, not another plugin's", async () => {
      await store.putPlugin(record('p1'));
      await store.putPlugin(record('p2'));
      await store.kvSet('p1', 'k', b('one'));
      await store.kvSet('p1', 'k2', b('two'), { ttlMs: 60_000 });
      await store.kvSet('p2', 'k', b('other'));
      await store.deletePlugin('p1');
      expect(await store.getPlugin('p1')).toBeUndefined();
      expect(await store.kvGet('p1', 'k')).toBeUndefined();
      expect((await store.kvList('p1', '', 10)).keys).toEqual([]);
      expect(await store.getPlugin('p2')).toEqual(record('p2'));
      expect(await store.kvGet('p2', 'k')).toEqual(b('other'));
      await store.deletePlugin('never-installed');
    });
  });

  describe('KV values', () => {
    const binary = Buffer.from([0x00, 0xff, 0x00, 0x80, 0x7f, 0xfe, 0x01, 0x00, 0xc3, 0x28, 0xff]);

    it('set, get, overwrite and delete byte for byte', async () => {
      const big = Buffer.alloc(1 << 20);
      for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
      for (const [key, value] of [['bin', binary], ['empty', Buffer.alloc(0)], ['big', big], ['text', b('héllo 😀')]] as const) {
        expect(await store.kvSet('p1', key, value)).toBe(true);
        const got = await store.kvGet('p1', key);
        expect(Buffer.isBuffer(got)).toBe(true);
        expect(got?.equals(value)).toBe(true);
      }
      expect(await store.kvSet('p1', 'bin', Buffer.from([0xff]))).toBe(true);
      expect(await store.kvGet('p1', 'bin')).toEqual(Buffer.from([0xff]));
      expect(await store.kvDelete('p1', 'bin')).toBe(true);
      expect(await store.kvGet('p1', 'bin')).toBeUndefined();
      expect(await store.kvDelete('p1', 'bin')).toBe(false);
      expect(await store.kvGet('p1', 'missing')).toBeUndefined();
    });

    it('keys holding U+0000 and astral characters are distinct keys', async () => {
      const keys = ['a', 'a\u0000', 'a\u0000b', 'a\uFFFF', 'a😀', '\u0000'];
      for (const [i, k] of keys.entries()) await store.kvSet('p1', k, Buffer.from([i]));
      for (const [i, k] of keys.entries()) expect(await store.kvGet('p1', k)).toEqual(Buffer.from([i]));
    });

    it('scopes keys to their plugin', async () => {
      await store.kvSet('p1', 'k', b('one'));
      await store.kvSet('p2', 'k', b('two'));
      await store.kvSet('p1', 'only1', b('x'));
      expect(await store.kvGet('p1', 'k')).toEqual(b('one'));
      expect(await store.kvGet('p2', 'k')).toEqual(b('two'));
      expect(await store.kvGet('p2', 'only1')).toBeUndefined();
      expect((await store.kvList('p2', '', 10)).keys).toEqual(['k']);
      expect(await store.kvDelete('p2', 'only1')).toBe(false);
      expect(await store.kvDelete('p2', 'k')).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('one'));
      expect(await store.kvSet('p2', 'k', b('new'), { compare: { expected: b('one') } })).toBe(false);
      expect(await store.kvDeleteAll('p2')).toBe(0);
      expect(await store.kvGet('p1', 'only1')).toEqual(b('x'));
    });
  });

  describe('KV expiry', () => {
    it('a long TTL is live; an expired value is invisible to get, list, delete and CAS, and can be written over', async () => {
      await store.kvSet('p1', 'long', b('stays'), { ttlMs: 60_000 });
      await setExpired(store, 'p1', ['short', 'short2']);
      expect(await store.kvGet('p1', 'long')).toEqual(b('stays'));
      expect((await store.kvList('p1', '', 10)).keys).toEqual(['long']);
      expect((await store.kvList('p1', 'short', 10)).keys).toEqual([]);
      expect(await store.kvDelete('p1', 'short2')).toBe(false);
      expect(await store.kvSet('p1', 'short', b('new'), { compare: { expected: b('gone short') } })).toBe(false);
      expect(await store.kvGet('p1', 'short')).toBeUndefined();

      // A plain set over an expired value writes a value that does not expire.
      expect(await store.kvSet('p1', 'short', b('again'))).toBe(true);
      await sleep(50);
      expect(await store.kvGet('p1', 'short')).toEqual(b('again'));
      expect((await store.kvList('p1', '', 10)).keys).toEqual(['long', 'short']);
    });

    it('a set without a TTL clears an earlier TTL', async () => {
      await store.kvSet('p1', 'k', b('v1'), { ttlMs: 20 });
      await store.kvSet('p1', 'k', b('v2'));
      await sleep(100);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v2'));
    });

    it('refuses a negative, NaN, infinite or over-MAX_KV_TTL_MS TTL with STORE_BAD_ARGUMENT and writes nothing', async () => {
      // 2^64 - 1: what a negative ttl written into the uint64 wire field arrives as.
      for (const ttlMs of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_KV_TTL_MS + 1, 2 ** 64 - 1]) {
        const err = await rejected(store.kvSet('p1', 'k', b('v'), { ttlMs }));
        expect(isError(err, Errors.STORE_BAD_ARGUMENT)).toBe(true);
        expect(err.message).toContain('ttlMs');
        const cas = await rejected(store.kvSet('p1', 'k', b('v'), { ttlMs, compare: { expected: null } }));
        expect(isError(cas, Errors.STORE_BAD_ARGUMENT)).toBe(true);
      }
      expect(await store.kvGet('p1', 'k')).toBeUndefined();
      expect(await store.kvSet('p1', 'k', b('v'), { ttlMs: 0 })).toBe(true);
      await sleep(20);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v'));
    });

    it('sweepExpired deletes the expired rows of every plugin and returns how many', async () => {
      await store.kvSet('p1', 'keep', b('k'));
      await store.kvSet('p1', 'long', b('l'), { ttlMs: 60_000 });
      await setExpired(store, 'p1', ['x1', 'x2']);
      await setExpired(store, 'p2', ['y1']);
      expect(await store.sweepExpired()).toBe(3);
      expect(await store.sweepExpired()).toBe(0);
      expect(await store.kvGet('p1', 'keep')).toEqual(b('k'));
      expect(await store.kvGet('p1', 'long')).toEqual(b('l'));
      // Swept rows are gone, not hidden: deleteAll counts only what is left.
      expect(await store.kvDeleteAll('p1')).toBe(2);
    });

    it('kvDeleteAll counts the live values it deletes, not expired ones', async () => {
      await store.kvSet('p1', 'a', b('1'));
      await store.kvSet('p1', 'b', b('2'), { ttlMs: 60_000 });
      await setExpired(store, 'p1', ['c']);
      await store.kvSet('p2', 'a', b('other'));
      expect(await store.kvDeleteAll('p1')).toBe(2);
      expect(await store.kvGet('p1', 'a')).toBeUndefined();
      expect(await store.kvGet('p1', 'b')).toBeUndefined();
      expect(await store.kvDeleteAll('p1')).toBe(0);
      expect(await store.sweepExpired()).toBe(0);
      expect(await store.kvGet('p2', 'a')).toEqual(b('other'));
    });
  });

  describe('compare-and-set', () => {
    it('absent → value, then value → value on a match only', async () => {
      expect(await store.kvSet('p1', 'k', b('v1'), { compare: { expected: null } })).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v1'));
      expect(await store.kvSet('p1', 'k', b('xx'), { compare: { expected: null } })).toBe(false);
      expect(await store.kvSet('p1', 'k', b('xx'), { compare: { expected: b('v0') } })).toBe(false);
      expect(await store.kvSet('p1', 'k', b('xx'), { compare: { expected: b('v1\u0000') } })).toBe(false);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v1'));
      expect(await store.kvSet('p1', 'k', b('v2'), { compare: { expected: b('v1') } })).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v2'));
      expect(await store.kvSet('p1', 'absent', b('x'), { compare: { expected: b('') } })).toBe(false);
      expect(await store.kvGet('p1', 'absent')).toBeUndefined();
    });

    it('compares binary values byte for byte, the empty value included', async () => {
      const v = Buffer.from([0x00, 0xff, 0x00]);
      await store.kvSet('p1', 'k', v);
      expect(await store.kvSet('p1', 'k', b('no'), { compare: { expected: Buffer.from([0x00, 0xff]) } })).toBe(false);
      expect(await store.kvSet('p1', 'k', Buffer.alloc(0), { compare: { expected: Buffer.from(v) } })).toBe(true);
      expect(await store.kvSet('p1', 'k', b('no'), { compare: { expected: null } })).toBe(false);
      expect(await store.kvSet('p1', 'k', b('yes'), { compare: { expected: Buffer.alloc(0) } })).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('yes'));
    });

    it('an expired value counts as absent', async () => {
      await setExpired(store, 'p1', ['k']);
      expect(await store.kvSet('p1', 'k', b('new'), { compare: { expected: null } })).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('new'));
      // And the value written by a CAS takes the CAS's own TTL (none here).
      await sleep(50);
      expect(await store.kvGet('p1', 'k')).toEqual(b('new'));
    });

    it('a CAS carries its TTL', async () => {
      expect(await store.kvSet('p1', 'k', b('v'), { compare: { expected: null }, ttlMs: 60_000 })).toBe(true);
      expect(await store.kvGet('p1', 'k')).toEqual(b('v'));
      expect(await store.kvSet('p1', 'k', b('w'), { compare: { expected: b('v') }, ttlMs: 1 })).toBe(true);
      await eventually('expiry of the CAS-written value', async () => (await store.kvGet('p1', 'k')) === undefined);
    });

    it('20 concurrent creates of one fresh key: exactly one wins, none errs', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.kvSet('p1', 'fresh', b(`writer ${i}`), { compare: { expected: null } })));
      const errors = results.filter((r) => r.status === 'rejected');
      expect(errors).toEqual([]);
      const wins = results.map((r, i) => (r.status === 'fulfilled' && r.value ? i : -1)).filter((i) => i >= 0);
      expect(wins).toHaveLength(1);
      expect(await store.kvGet('p1', 'fresh')).toEqual(b(`writer ${wins[0]}`));
    });

    it('20 concurrent CAS increments with retries end at exactly 20', async () => {
      const increment = async (): Promise<number> => {
        for (let attempt = 1; attempt <= 1_000; attempt++) {
          const current = await store.kvGet('p1', 'counter');
          const next = (current === undefined ? 0 : Number(current.toString('utf8'))) + 1;
          if (await store.kvSet('p1', 'counter', b(String(next)), { compare: { expected: current ?? null } })) return attempt;
        }
        throw new Error('no increment landed in 1000 attempts');
      };
      const attempts = await Promise.all(Array.from({ length: 20 }, increment));
      expect(attempts).toHaveLength(20);
      expect((await store.kvGet('p1', 'counter'))?.toString('utf8')).toBe('20');
    });
  });

  describe('listing', () => {
    const keys = ['a', 'a\u0000b', 'a\u0000', 'ab', 'a\uFFFF', 'a😀', 'aé', 'b', '\u0000', '\uFFFF', '😀', '😀x', 'é', 'A', 'a%', 'a_'];
    const sorted = [...keys].sort(byteOrder);
    const startsWith = (p: string): string[] => sorted.filter((k) => b(k).subarray(0, b(p).length).equals(b(p)));

    beforeEach(async () => {
      for (const k of keys) await store.kvSet('p1', k, b(k));
      await store.kvSet('p2', 'a-other', b('x'));
    });

    it('lists by prefix in UTF-8 byte order, not JS string order', async () => {
      // UTF-16 order would put U+1F600 before U+FFFF; UTF-8 byte order puts it after.
      expect(sorted.indexOf('\uFFFF')).toBeLessThan(sorted.indexOf('😀'));
      expect((await store.kvList('p1', '', 100)).keys).toEqual(sorted);
      for (const prefix of ['a', 'a\u0000', 'a\uFFFF', '😀', '\uFFFF', '\u0000', 'é', 'a%', 'a_', 'z', 'a😀x']) {
        const page = await store.kvList('p1', prefix, 100);
        expect({ prefix, keys: page.keys }).toEqual({ prefix, keys: startsWith(prefix) });
        expect(page.next).toBeNull();
      }
      expect(startsWith('a')).toEqual(['a', 'a\u0000', 'a\u0000b', 'a%', 'a_', 'ab', 'aé', 'a\uFFFF', 'a😀']);
      expect(startsWith('\uFFFF')).toEqual(['\uFFFF']);
    });

    it('pages with after and gives next only when more follow', async () => {
      for (const limit of [1, 2, 3, 5, sorted.length - 1, sorted.length, sorted.length + 1]) {
        expect(await listAll(store, 'p1', '', limit)).toEqual(sorted);
        expect(await listAll(store, 'p1', 'a', limit)).toEqual(startsWith('a'));
      }
      expect(await store.kvList('p1', '', sorted.length)).toEqual({ keys: sorted, next: null });
      expect(await store.kvList('p1', '', sorted.length - 1)).toEqual({ keys: sorted.slice(0, -1), next: sorted[sorted.length - 2] });
      const aKeys = startsWith('a');
      expect(await store.kvList('p1', 'a', aKeys.length)).toEqual({ keys: aKeys, next: null });
    });

    it('after is exclusive and may lie outside the prefix or name no key', async () => {
      const aKeys = startsWith('a');
      expect((await store.kvList('p1', 'a', 100, 'a\u0000')).keys).toEqual(aKeys.slice(aKeys.indexOf('a\u0000') + 1));
      expect((await store.kvList('p1', 'a', 100, 'ac')).keys).toEqual(['aé', 'a\uFFFF', 'a😀']);
      // Below the prefix: the whole prefix; above it: nothing.
      expect(await store.kvList('p1', 'a', 100, '0')).toEqual({ keys: aKeys, next: null });
      expect(await store.kvList('p1', 'a', 100, 'A')).toEqual({ keys: aKeys, next: null });
      expect(await store.kvList('p1', 'a', 100, 'b')).toEqual({ keys: [], next: null });
      expect(await store.kvList('p1', 'a', 100, '😀')).toEqual({ keys: [], next: null });
      expect(await store.kvList('p1', 'a', 100, '')).toEqual({ keys: aKeys, next: null });
      expect((await store.kvList('p1', '', 100, '\uFFFF')).keys).toEqual(['😀', '😀x']);
      expect(await store.kvList('p1', 'a', 2, 'a😀')).toEqual({ keys: [], next: null });
    });

    it('refuses a limit below 1 or not a whole number with STORE_BAD_ARGUMENT', async () => {
      for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const err = await rejected(store.kvList('p1', '', limit));
        expect(isError(err, Errors.STORE_BAD_ARGUMENT)).toBe(true);
        expect(err.message).toContain('limit');
      }
    });
  });

  describe('bundles', () => {
    // Three whole chunks and a part: boundaries at 1, 2 and 3 MiB.
    const big = randomBytes(3 * BUNDLE_CHUNK_BYTES + 12_345);
    const bigSha = sha256Of(big);

    it('round-trips a 3 MiB bundle across chunk boundaries, from a Buffer and from a stream', async () => {
      expect(await store.getBundle(bigSha)).toBeUndefined();
      await store.putBundle(bigSha, big);
      const got = await store.getBundle(bigSha);
      expect(got).toMatchObject({ sha256: bigSha, size: big.length, signature: null });
      expect((await readAll(got!.stream)).equals(big)).toBe(true);

      const other = randomBytes(2 * BUNDLE_CHUNK_BYTES);
      const sig = randomBytes(64);
      await store.putBundle(sha256Of(other), oddPieces(other), sig);
      const again = await store.getBundle(sha256Of(other));
      expect(again?.signature?.equals(sig)).toBe(true);
      expect((await readAll(again!.stream)).equals(other)).toBe(true);
    });

    it('stores the empty bundle and a one-byte bundle', async () => {
      for (const bytes of [Buffer.alloc(0), Buffer.from([7])]) {
        await store.putBundle(sha256Of(bytes), bytes);
        const got = await store.getBundle(sha256Of(bytes));
        expect((await readAll(got!.stream)).equals(bytes)).toBe(true);
      }
    });

    it('put is idempotent and a later put adds a missing signature, never replaces one', async () => {
      await store.putBundle(bigSha, big);
      await store.putBundle(bigSha, oddPieces(big));
      const sig = randomBytes(64);
      await store.putBundle(bigSha, big, sig);
      await store.putBundle(bigSha, big, randomBytes(64));
      await Promise.all([store.putBundle(bigSha, big), store.putBundle(bigSha, big)]);
      const got = await store.getBundle(bigSha);
      expect(got?.signature?.equals(sig)).toBe(true);
      expect((await readAll(got!.stream)).equals(big)).toBe(true);
    });

    it('concurrent first puts of one bundle both succeed and store it once', async () => {
      const bytes = randomBytes(BUNDLE_CHUNK_BYTES + 1);
      await Promise.all([store.putBundle(sha256Of(bytes), oddPieces(bytes)), store.putBundle(sha256Of(bytes), bytes)]);
      expect((await readAll((await store.getBundle(sha256Of(bytes)))!.stream)).equals(bytes)).toBe(true);
    });

    it('refuses bytes that do not hash to the sha256 given, storing nothing', async () => {
      const wrong = 'cd'.repeat(32);
      const err = await rejected(store.putBundle(wrong, oddPieces(big)));
      expect(isError(err, Errors.STORE_BUNDLE_MISMATCH)).toBe(true);
      expect(err.message).toContain(wrong);
      expect(err.message).toContain(bigSha);
      expect(await store.getBundle(wrong)).toBeUndefined();
      expect(await store.deleteUnreferencedBundles()).toBe(0);
      const bad = await rejected(store.putBundle('not-a-sha', big));
      expect(isError(bad, Errors.STORE_BAD_ARGUMENT)).toBe(true);
    });

    it('an unknown sha256 is undefined', async () => {
      expect(await store.getBundle('ef'.repeat(32))).toBeUndefined();
    });

    it('a damaged chunk fails the read with STORE_BUNDLE_CORRUPT naming the sha256', async () => {
      await store.putBundle(bigSha, big);
      const damaged = Buffer.from(big.subarray(BUNDLE_CHUNK_BYTES, 2 * BUNDLE_CHUNK_BYTES));
      damaged[100] ^= 0xff;
      await h.corruptChunk(bigSha, 1, damaged);
      const err = await rejected(readAll((await store.getBundle(bigSha))!.stream));
      expect(isError(err, Errors.STORE_BUNDLE_CORRUPT)).toBe(true);
      expect(err.message).toContain(bigSha);

      await h.corruptChunk(bigSha, 1, damaged.subarray(1));
      const short = await rejected(readAll((await store.getBundle(bigSha))!.stream));
      expect(isError(short, Errors.STORE_BUNDLE_CORRUPT)).toBe(true);
    });

    it('GC deletes only bundles no record references and none it is told to keep', async () => {
      const [x, y, z, w] = [randomBytes(10), randomBytes(BUNDLE_CHUNK_BYTES + 5), randomBytes(20), randomBytes(30)];
      for (const bytes of [x, y, z, w]) await store.putBundle(sha256Of(bytes), bytes);
      await store.putPlugin(record('p1', { bundleSha256: sha256Of(x) }));
      await store.putPlugin(record('p2', { bundleSha256: sha256Of(x) }));
      await store.putPlugin(record('p3', { bundleSha256: sha256Of(z) }));
      expect(await store.deleteUnreferencedBundles([sha256Of(w)])).toBe(1);
      expect(await store.getBundle(sha256Of(y))).toBeUndefined();
      for (const kept of [x, z, w]) expect((await readAll((await store.getBundle(sha256Of(kept)))!.stream)).equals(kept)).toBe(true);

      // The install that asked to keep w commits its record.
      await store.putPlugin(record('p4', { bundleSha256: sha256Of(w) }));
      await store.deletePlugin('p1');
      expect(await store.deleteUnreferencedBundles()).toBe(0);
      expect(await store.getBundle(sha256Of(x))).toBeDefined();
      await store.deletePlugin('p2');
      await store.putPlugin(record('p3', { bundleSha256: sha256Of(w) }));
      expect(await store.deleteUnreferencedBundles()).toBe(2);
      expect(await store.getBundle(sha256Of(x))).toBeUndefined();
      expect(await store.getBundle(sha256Of(z))).toBeUndefined();
      expect(await store.getBundle(sha256Of(w))).toBeDefined();
      // The chunks went with their bundles: putting a deleted bundle again works.
      await store.putBundle(sha256Of(y), y);
      expect((await readAll((await store.getBundle(sha256Of(y)))!.stream)).equals(y)).toBe(true);
    });
  });

  describe('locks', () => {
    const HOUR = 3_600_000;

    /** Acquires `name` with a 1 ms lease and waits until that lease is over. */
    async function expiredGrant(pluginId: string, name: string): Promise<number> {
      const first = await store.lockAcquire(pluginId, name, 1);
      expect(first.acquired).toBe(true);
      await eventually('the 1 ms lease to end', async () => (await store.clusterNow()) > first.expiresAt);
      return first.token;
    }

    it('a free lock is acquired with a token of 1 or more and an expiry ttl ahead on the store clock', async () => {
      const before = await store.clusterNow();
      const g = await store.lockAcquire('p1', 'leader', HOUR);
      const after = await store.clusterNow();
      expect(g.acquired).toBe(true);
      expect(g.token).toBeGreaterThanOrEqual(1);
      expect(g.nowMs).toBeGreaterThanOrEqual(before);
      expect(g.nowMs).toBeLessThanOrEqual(after);
      expect(g.expiresAt).toBe(g.nowMs + HOUR);
    });

    it('a held lock is not acquired, and the answer says when the holder lease ends', async () => {
      const held = await store.lockAcquire('p1', 'leader', HOUR);
      const again = await store.lockAcquire('p1', 'leader', HOUR);
      expect(again).toEqual({ acquired: false, token: 0, expiresAt: held.expiresAt, nowMs: expect.any(Number) });
    });

    it('names are scoped per plugin: the same name of another plugin is a different lock', async () => {
      expect((await store.lockAcquire('p1', 'leader', HOUR)).acquired).toBe(true);
      expect((await store.lockAcquire('p2', 'leader', HOUR)).acquired).toBe(true);
      expect((await store.lockAcquire('p2', 'leader', HOUR)).acquired).toBe(false);
    });

    it('after the lease expires the lock is acquired again with a larger token, and the old token is refused', async () => {
      const old = await expiredGrant('p1', 'leader');
      const next = await store.lockAcquire('p1', 'leader', HOUR);
      expect(next.acquired).toBe(true);
      expect(next.token).toBeGreaterThan(old);
      for (const attempt of [store.lockRefresh('p1', 'leader', old, HOUR), store.lockRelease('p1', 'leader', old)]) {
        const err = await rejected(attempt);
        expect(err.code).toBe(Errors.LOCK_TOKEN_STALE.code);
        expect(err.message).toContain('lock "leader" of plugin "p1": token');
        expect(err.message).toContain(`is stale (the lock has since been granted with token ${next.token})`);
      }
      // The refusals changed nothing: the new holder still holds it.
      expect((await store.lockAcquire('p1', 'leader', HOUR)).acquired).toBe(false);
    });

    it('refresh extends a live lease; an expired lease cannot be refreshed even by its own token', async () => {
      const g = await store.lockAcquire('p1', 'leader', 60_000);
      const r = await store.lockRefresh('p1', 'leader', g.token, HOUR);
      expect(r.expiresAt).toBe(r.nowMs + HOUR);
      expect(r.expiresAt).toBeGreaterThan(g.expiresAt);
      const old = await expiredGrant('p1', 'short');
      const err = await rejected(store.lockRefresh('p1', 'short', old, HOUR));
      expect(err.code).toBe(Errors.LOCK_TOKEN_STALE.code);
      expect(err.message).toMatch(/its lease expired \d+ ms ago/);
    });

    it('release frees the lock at once; the next token is still larger; a second release by the same token is harmless', async () => {
      const g = await store.lockAcquire('p1', 'leader', HOUR);
      await store.lockRelease('p1', 'leader', g.token);
      await store.lockRelease('p1', 'leader', g.token);
      const next = await store.lockAcquire('p1', 'leader', HOUR);
      expect(next.acquired).toBe(true);
      expect(next.token).toBeGreaterThan(g.token);
    });

    it('a token for a name never granted is refused', async () => {
      const err = await rejected(store.lockRelease('p1', 'never', 7));
      expect(err.message).toContain('lock "never" of plugin "p1": token 7 is stale (the lock has never been granted)');
    });

    it('20 concurrent acquires of a free lock, and of an expired one, have exactly one winner each time', async () => {
      const race = () => Promise.all(Array.from({ length: 20 }, () => store.lockAcquire('p1', 'race', HOUR)));
      const first = (await race()).filter((g) => g.acquired);
      expect(first).toHaveLength(1);
      await store.lockRelease('p1', 'race', first[0].token);
      const second = (await race()).filter((g) => g.acquired);
      expect(second).toHaveLength(1);
      expect(second[0].token).toBe(first[0].token + 1);
    });
  });

  describe('job tickets', () => {
    const EVERY = 3_600_000;

    it('exactly one of 20 concurrent claims of a period succeeds; later claims of it fail', async () => {
      const period = Math.floor((await store.clusterNow()) / EVERY);
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.jobClaim('p1', 'digest', period, EVERY, 0)));
      expect(claims.filter((c) => c.claimed)).toHaveLength(1);
      expect((await store.jobClaim('p1', 'digest', period, EVERY, 0)).claimed).toBe(false);
    });

    it('the next period, another job name and another plugin are separate tickets', async () => {
      const period = Math.floor((await store.clusterNow()) / EVERY);
      expect((await store.jobClaim('p1', 'digest', period, EVERY, 0)).claimed).toBe(true);
      expect((await store.jobClaim('p1', 'digest', period + 1, EVERY, 0)).claimed).toBe(true);
      expect((await store.jobClaim('p1', 'other', period, EVERY, 0)).claimed).toBe(true);
      expect((await store.jobClaim('p2', 'digest', period, EVERY, 0)).claimed).toBe(true);
    });

    it('a period further than one from the current one (store clock) is JOB_PERIOD_NOT_CURRENT and books nothing', async () => {
      const now = await store.clusterNow();
      const period = Math.floor(now / EVERY);
      for (const far of [period + 3, period - 3]) {
        const err = await rejected(store.jobClaim('p1', 'digest', far, EVERY, 0));
        expect(err.code).toBe(Errors.JOB_PERIOD_NOT_CURRENT.code);
        expect(err.message).toContain(`job "digest" of plugin "p1": period ${far} cannot be claimed`);
      }
      const claim = await store.jobClaim('p1', 'digest', period, EVERY, 0);
      expect(claim.claimed).toBe(true);
      expect(claim.nowMs).toBeGreaterThanOrEqual(now);
    });

    it('a ticket outlives a short ttl: the period cannot be claimed again after a sweep', async () => {
      const every = 60_000;
      const period = Math.floor((await store.clusterNow()) / every);
      expect((await store.jobClaim('p1', 'tick', period, every, 1)).claimed).toBe(true);
      await sleep(20);
      await store.sweepExpired();
      expect((await store.jobClaim('p1', 'tick', period, every, 1)).claimed).toBe(false);
    });
  });

  describe('nodes', () => {
    it('a heartbeat inserts the node, the next one moves heartbeatAt; listed by node id with a small age', async () => {
      expect(await store.listNodes()).toEqual([]);
      const before = Date.now();
      await store.heartbeat({ nodeId: 'node-b', version: '1.0.0', startedAt: 1_700_000_000_000 });
      await store.heartbeat({ nodeId: 'node-a', version: '1.1.0', startedAt: 1_700_000_000_500 });
      const first = await store.listNodes();
      expect(first.map((n) => [n.nodeId, n.version, n.startedAt])).toEqual([
        ['node-a', '1.1.0', 1_700_000_000_500],
        ['node-b', '1.0.0', 1_700_000_000_000],
      ]);
      for (const n of first) {
        expect(n.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
        expect(n.heartbeatAgeMs).toBeLessThan(60_000);
        // The database's clock on PostgreSQL: same machine here, so within a minute of ours.
        expect(Math.abs(n.heartbeatAt - before)).toBeLessThan(60_000);
      }
      await sleep(30);
      await store.heartbeat({ nodeId: 'node-b', version: '1.2.0', startedAt: 1_700_000_001_000 });
      const again = await store.listNodes();
      const a = again.find((n) => n.nodeId === 'node-a')!;
      const nb = again.find((n) => n.nodeId === 'node-b')!;
      expect(nb).toMatchObject({ version: '1.2.0', startedAt: 1_700_000_001_000 });
      expect(nb.heartbeatAt).toBeGreaterThan(first.find((n) => n.nodeId === 'node-b')!.heartbeatAt);
      expect(a.heartbeatAgeMs).toBeGreaterThanOrEqual(25);
      expect(again).toHaveLength(2);
    });
  });

  describe('observed state', () => {
    it('one row per (plugin, node), replaced by the next put, listed by node id', async () => {
      await store.putPlugin(record('p1'));
      const before = Date.now();
      await store.putObserved({ pluginId: 'p1', nodeId: 'node-b', state: 'starting', lastError: null, pid: null, restarts: 0, generation: 1 });
      await store.putObserved({ pluginId: 'p1', nodeId: 'node-a', state: 'failed_to_start', lastError: 'exit status 2: "boom" ü', pid: null, restarts: 3, generation: 1 });
      await store.putObserved({ pluginId: 'p1', nodeId: 'node-b', state: 'running', lastError: null, pid: 4242, restarts: 1, generation: 1 });
      await store.putObserved({ pluginId: 'p2', nodeId: 'node-a', state: 'running', lastError: null, pid: 7, restarts: 0, generation: 1 });
      const rows = await store.listObserved('p1');
      expect(rows.map(({ updatedAt: _u, ...r }) => r)).toEqual([
        { pluginId: 'p1', nodeId: 'node-a', state: 'failed_to_start', lastError: 'exit status 2: "boom" ü', pid: null, restarts: 3, generation: 1 },
        { pluginId: 'p1', nodeId: 'node-b', state: 'running', lastError: null, pid: 4242, restarts: 1, generation: 1 },
      ]);
      for (const r of rows) expect(Math.abs(r.updatedAt - before)).toBeLessThan(60_000);
      expect(await store.listObserved('never-installed')).toEqual([]);
      // p2 has no record: a late write for a removed plugin never brings its rows back.
      expect(await store.listObserved('p2')).toEqual([]);
    });

    it("deletePlugin removes every node's row of the plugin, not another plugin's; the plugin record keeps its own state", async () => {
      await store.putPlugin(record('p1'));
      await store.putPlugin(record('p2'));
      await store.putObserved({ pluginId: 'p1', nodeId: 'node-a', state: 'running', lastError: null, pid: 1, restarts: 0, generation: 1 });
      await store.putObserved({ pluginId: 'p1', nodeId: 'node-b', state: 'running', lastError: null, pid: 2, restarts: 0, generation: 1 });
      await store.putObserved({ pluginId: 'p2', nodeId: 'node-a', state: 'not_running', lastError: null, pid: null, restarts: 0, generation: 1 });
      expect((await store.getPlugin('p1'))?.state).toBe('not_running');
      await store.deletePlugin('p1');
      expect(await store.listObserved('p1')).toEqual([]);
      expect((await store.listObserved('p2')).map((r) => r.nodeId)).toEqual(['node-a']);
    });
  });

  describe('close', () => {
    it('after close every call is STORE_CLOSED, and a second close does nothing', async () => {
      await store.putPlugin(record('p1'));
      await store.close();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['listPlugins', () => store.listPlugins()],
        ['getPlugin', () => store.getPlugin('p1')],
        ['putPlugin', () => store.putPlugin(record('p2'))],
        ['updatePlugin', () => store.updatePlugin('p1', { enabled: false })],
        ['deletePlugin', () => store.deletePlugin('p1')],
        ['kvGet', () => store.kvGet('p1', 'k')],
        ['kvSet', () => store.kvSet('p1', 'k', b('v'))],
        ['kvSet', () => store.kvSet('p1', 'k', b('v'), { compare: { expected: null } })],
        ['kvDelete', () => store.kvDelete('p1', 'k')],
        ['kvList', () => store.kvList('p1', '', 10)],
        ['kvDeleteAll', () => store.kvDeleteAll('p1')],
        ['sweepExpired', () => store.sweepExpired()],
        ['putBundle', () => store.putBundle(sha256Of(b('x')), b('x'))],
        ['getBundle', () => store.getBundle(sha256Of(b('x')))],
        ['deleteUnreferencedBundles', () => store.deleteUnreferencedBundles()],
        ['clusterNow', () => store.clusterNow()],
        ['lockAcquire', () => store.lockAcquire('p1', 'l', 1000)],
        ['lockRefresh', () => store.lockRefresh('p1', 'l', 1, 1000)],
        ['lockRelease', () => store.lockRelease('p1', 'l', 1)],
        ['jobClaim', () => store.jobClaim('p1', 'j', 0, 1000, 0)],
        ['heartbeat', () => store.heartbeat({ nodeId: 'n', version: '1.0.0', startedAt: 0 })],
        ['listNodes', () => store.listNodes()],
        ['putObserved', () => store.putObserved({ pluginId: 'p1', nodeId: 'n', state: 'running', lastError: null, pid: 1, restarts: 0, generation: 1 })],
        ['listObserved', () => store.listObserved('p1')],
      ];
      for (const [method, call] of calls) {
        const err = await rejected(call());
        expect({ method, code: err.code }).toEqual({ method, code: Errors.STORE_CLOSED.code });
        expect(err.message).toContain(`${method}()`);
      }
      await store.close();
      await store.close();
    });
  });
});

/** Registers the hooks that give each test a store on an empty database (handed to `opened`) and close it after. */
function useStore(h: Pick<Harness, 'setup' | 'teardown' | 'open' | 'reset'>, opened: (store: Store) => void): void {
  let store: Store;
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());
  beforeEach(async () => {
    store = await h.open();
    opened(store);
  });
  afterEach(async () => {
    await store.close();
    await h.reset();
  });
}

// ---- migration (plughost migrate) ----

/** The in-memory store runs the migration reads too; it has no files, rows to damage or closed state. */
const memoryHarness = { name: 'MemoryStore', setup: async () => undefined, teardown: async () => undefined, open: async (): Promise<Store> => new MemoryStore(), reset: async () => undefined };

/** Every live entry of a plugin, page by page with `after`; each page checked to be at most `limit` long. */
async function allEntries(store: Store, pluginId: string, limit: number): Promise<Awaited<ReturnType<Store['kvEntries']>>> {
  const entries: Awaited<ReturnType<Store['kvEntries']>> = [];
  let after: string | undefined;
  for (let pages = 1; pages <= 1_000; pages++) {
    const page = await store.kvEntries(pluginId, after, limit);
    expect(page.length).toBeLessThanOrEqual(limit);
    entries.push(...page);
    if (page.length < limit) return entries;
    after = page[page.length - 1].key;
  }
  throw new Error('entries did not end within 1000 pages');
}

describe.each<Pick<Harness, 'name' | 'setup' | 'teardown' | 'open' | 'reset'>>([...harnesses, memoryHarness])('Store migration reads: $name', (h) => {
  let store: Store;
  useStore(h, (s) => { store = s; });

  it('kvEntries lists live values byte for byte in UTF-8 byte order, pages with an exclusive after, and skips expired ones', async () => {
    const binary = Buffer.from([0x00, 0xff, 0xc3, 0x28]);
    const keys = ['b', 'a\u0000x', 'a', '', 'é', '😀', 'a\uFFFF', 'z'];
    for (const k of keys) await store.kvSet('p1', k, k === 'z' ? binary : b(`v ${k}`));
    await store.kvSet('p2', 'other', b('not p1'));
    await setExpired(store, 'p1', ['expired']);
    const entries = await allEntries(store, 'p1', 3);
    expect(entries.map((e) => e.key)).toEqual([...keys].sort(byteOrder));
    for (const e of entries) {
      expect(Buffer.isBuffer(e.value)).toBe(true);
      expect(e.value.equals(e.key === 'z' ? binary : b(`v ${e.key}`))).toBe(true);
      expect(e.ttlMs).toBeNull();
    }
    expect((await store.kvEntries('p1', 'a\u0000x', 2)).map((e) => e.key)).toEqual(['a\uFFFF', 'b']);
    expect(await store.kvEntries('p1', '😀', 10)).toEqual([]);
    expect(await store.kvEntries('nobody', undefined, 10)).toEqual([]);
  });

  it('kvEntries gives the time to live left on the store clock', async () => {
    const before = Date.now();
    await store.kvSet('p1', 'ttl', b('t'), { ttlMs: 600_000 });
    await store.kvSet('p1', 'forever', b('f'));
    const [forever, ttl] = await store.kvEntries('p1', undefined, 10);
    const elapsed = Date.now() - before;
    expect(forever).toMatchObject({ key: 'forever', ttlMs: null });
    expect(ttl.key).toBe('ttl');
    // At most the TTL given, and less only by the time that passed (1 ms for the clocks' rounding).
    expect(ttl.ttlMs).toBeLessThanOrEqual(600_000);
    expect(ttl.ttlMs).toBeGreaterThanOrEqual(600_000 - elapsed - 1);
  });

  it('kvEntries refuses a limit below 1 or not a whole number with STORE_BAD_ARGUMENT', async () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expect(isError(await rejected(store.kvEntries('p1', undefined, limit)), Errors.STORE_BAD_ARGUMENT)).toBe(true);
    }
  });

  it('listBundles lists every stored bundle by sha256, referenced or not', async () => {
    expect(await store.listBundles()).toEqual([]);
    const shas = [];
    for (const bytes of [b('one'), b('two'), Buffer.alloc(0)]) {
      await store.putBundle(sha256Of(bytes), bytes);
      shas.push(sha256Of(bytes));
    }
    await store.putPlugin(record('p1', { bundleSha256: shas[0] }));
    expect(await store.listBundles()).toEqual([...shas].sort());
  });

  it('contentCounts counts plugin records, live KV values of every plugin and bundles', async () => {
    expect(await store.contentCounts()).toEqual({ plugins: 0, kv: 0, bundles: 0 });
    await store.putPlugin(record('p1'));
    await store.putPlugin(record('p2'));
    await store.kvSet('p1', 'k', b('v'));
    await store.kvSet('orphan', 'k', b('v'), { ttlMs: 600_000 });
    await setExpired(store, 'p2', ['gone']);
    await store.putBundle(sha256Of(b('x')), b('x'));
    expect(await store.contentCounts()).toEqual({ plugins: 2, kv: 2, bundles: 1 });
    await store.deletePlugin('p1');
    await store.deletePlugin('p2');
    await store.kvDeleteAll('orphan');
    await store.deleteUnreferencedBundles();
    expect(await store.contentCounts()).toEqual({ plugins: 0, kv: 0, bundles: 0 });
  });

  if (h !== memoryHarness) {
    it('after close the migration reads are STORE_CLOSED', async () => {
      await store.close();
      for (const [method, call] of [
        ['kvEntries', () => store.kvEntries('p1', undefined, 10)],
        ['listBundles', () => store.listBundles()],
        ['contentCounts', () => store.contentCounts()],
      ] as Array<[string, () => Promise<unknown>]>) {
        const err = await rejected(call());
        expect({ method, code: err.code }).toEqual({ method, code: Errors.STORE_CLOSED.code });
        expect(err.message).toContain(`${method}()`);
      }
    });
  }
});
