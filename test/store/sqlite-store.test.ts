import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Errors, isError } from '../../src/errors';
import type { Manifest } from '../../src/manifest';
import { SqliteStore, SCHEMA_VERSION, MIGRATIONS } from '../../src/store';
import type { PluginRecord } from '../../src/store';
import { migrate } from '../../src/store/migrations';
import { prefixUpperBound } from '../../src/store/sqlite-store';
import { caught, rejected } from '../fixtures/expect-error';
import { tempDir } from '../helpers';

/** A clock the test moves by hand, so expiry needs no sleeping. */
class Clock {
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function record(id: string, over: Partial<PluginRecord> = {}): PluginRecord {
  const manifest: Manifest = { id, name: `Plugin ${id}`, version: '1.2.3', server: { executable: 'bin/run' }, props: { nested: [1, 'two', null] } };
  return {
    id,
    manifest,
    version: '1.2.3',
    enabled: true,
    state: 'not_running',
    lastError: null,
    config: { greeting: 'hi', count: 3, loud: false },
    bundleSha256: 'ab'.repeat(32),
    installedAt: 1_000,
    updatedAt: 2_000,
    generation: 1,
    ...over,
  };
}

/** Every page of a listing, following `next`. */
async function listAll(store: SqliteStore, pluginId: string, prefix: string, limit: number): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let after: string | undefined;
  for (let pages = 1; pages <= 1_000; pages++) {
    const page = await store.kvList(pluginId, prefix, limit, after);
    expect(page.keys.length).toBeLessThanOrEqual(limit);
    keys.push(...page.keys);
    if (page.next === null) return { keys, pages };
    after = page.next;
  }
  throw new Error('listing did not end within 1000 pages');
}

/** The order SQLite's BINARY collation gives: UTF-8 bytes. */
const byteOrder = (a: string, c: string): number => Buffer.compare(b(a), b(c));

/** Rows actually in the file, expired or not, read over a second connection. */
function rawKvCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM kv').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Per-connection pragmas can only be read on the store's own connection. */
function pragmaOf(store: SqliteStore, name: string): unknown {
  return (store as unknown as { db: Database.Database }).db.pragma(name, { simple: true });
}

describe('SqliteStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let clock: Clock;
  let store: SqliteStore;

  beforeEach(() => {
    tmp = tempDir('pht-store-');
    file = path.join(tmp.dir, 'plughost.db');
    clock = new Clock();
    store = SqliteStore.open({ file, now: clock.now });
  });

  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  describe('opening', () => {
    it('uses WAL, the durability mode asked for, foreign keys and a busy timeout', async () => {
      expect(pragmaOf(store, 'journal_mode')).toBe('wal');
      expect(store.durability).toBe('process-crash');
      expect(pragmaOf(store, 'synchronous')).toBe(1); // NORMAL
      expect(pragmaOf(store, 'foreign_keys')).toBe(1);
      expect(pragmaOf(store, 'busy_timeout')).toBeGreaterThan(0);
      await store.close();
      store = SqliteStore.open({ file, durability: 'power-loss' });
      expect(pragmaOf(store, 'synchronous')).toBe(2); // FULL
    });

    it('migrates once: reopening keeps the data and the schema version', async () => {
      expect(SCHEMA_VERSION).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
      await store.putPlugin(record('p1'));
      await store.kvSet('p1', 'k', b('v'));
      await store.close();
      for (let i = 0; i < 3; i++) {
        store = SqliteStore.open({ file, now: clock.now });
        expect(pragmaOf(store, 'user_version')).toBe(SCHEMA_VERSION);
        await store.close();
      }
      store = SqliteStore.open({ file, now: clock.now });
      expect(await store.getPlugin('p1')).toEqual(record('p1'));
      expect(await store.kvGet('p1', 'k')).toEqual(b('v'));
    });

    it('applies only the migrations a database lacks, in order', () => {
      const other = path.join(tmp.dir, 'other.db');
      const db = new Database(other);
      try {
        expect(migrate(db, other)).toBe(0);
        const later = [
          ...MIGRATIONS,
          { version: SCHEMA_VERSION + 1, description: 'test: a column', sql: 'ALTER TABLE plugins ADD COLUMN extra TEXT' },
          { version: SCHEMA_VERSION + 2, description: 'test: a table', sql: 'CREATE TABLE extra (x INTEGER)' },
        ];
        expect(migrate(db, other, later)).toBe(SCHEMA_VERSION);
        expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 2);
        // A second run finds nothing to do (running the ALTER again would throw).
        expect(migrate(db, other, later)).toBe(SCHEMA_VERSION + 2);
      } finally {
        db.close();
      }
    });

    it('refuses a database written by a newer plughost, without changing it', async () => {
      const newer = path.join(tmp.dir, 'newer.db');
      const db = new Database(newer);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      const err = caught(() => SqliteStore.open({ file: newer }));
      expect(isError(err, Errors.STORE_VERSION_TOO_NEW)).toBe(true);
      expect(err.message).toContain(newer);
      expect(err.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
      expect(err.message).toContain(`up to ${SCHEMA_VERSION}`);
      const check = new Database(newer, { readonly: true });
      expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
      check.close();
    });

    it('reports a file that is not a database with its path', () => {
      const junk = path.join(tmp.dir, 'junk.db');
      fs.writeFileSync(junk, 'this is not a SQLite database, just text long enough to have a header'.repeat(20));
      const err = caught(() => SqliteStore.open({ file: junk }));
      expect(isError(err, Errors.STORE_OPEN_FAILED)).toBe(true);
      expect(err.message).toContain(junk);
    });
  });

  describe('plugins', () => {
    it('round-trips records, lists them by id and replaces on put', async () => {
      expect(await store.listPlugins()).toEqual([]);
      expect(await store.getPlugin('nope')).toBeUndefined();
      await store.putPlugin(record('b.plugin'));
      await store.putPlugin(record('a.plugin', { enabled: false, state: 'failed_to_start', lastError: 'boom' }));
      expect(await store.getPlugin('b.plugin')).toEqual(record('b.plugin'));
      expect((await store.listPlugins()).map((p) => p.id)).toEqual(['a.plugin', 'b.plugin']);
      expect(await store.getPlugin('a.plugin')).toEqual(record('a.plugin', { enabled: false, state: 'failed_to_start', lastError: 'boom' }));

      const upgraded = record('b.plugin', { version: '2.0.0', config: {}, bundleSha256: 'cd'.repeat(32), updatedAt: 9_000 });
      await store.putPlugin(upgraded);
      expect(await store.getPlugin('b.plugin')).toEqual({ ...upgraded, generation: 2 });
      expect(await store.listPlugins()).toHaveLength(2);
    });

    it('updates some fields and bumps updatedAt with the store clock', async () => {
      await store.putPlugin(record('p'));
      clock.advance(5);
      const updated = await store.updatePlugin('p', { state: 'running', lastError: null, config: { greeting: 'yo' } });
      // A configuration is a desired change: the generation goes up; a state alone would not.
      expect(updated).toEqual(record('p', { state: 'running', config: { greeting: 'yo' }, updatedAt: clock.t, generation: 2 }));
      expect(await store.getPlugin('p')).toEqual(updated);
      const again = await store.updatePlugin('p', { enabled: false, config: undefined });
      expect(again.enabled).toBe(false);
      expect(again.config).toEqual({ greeting: 'yo' });
    });

    it('rejects an update of an unknown plugin with STORE_UNKNOWN_PLUGIN (404)', async () => {
      const err = await rejected(store.updatePlugin('ghost', { enabled: true }));
      expect(isError(err, Errors.STORE_UNKNOWN_PLUGIN)).toBe(true);
      expect(err.status).toBe(404);
      expect(err.message).toContain('"ghost"');
      expect(await store.getPlugin('ghost')).toBeUndefined();
    });

    it('deletes a plugin with all its KV, and nothing of another plugin', async () => {
      await store.putPlugin(record('a'));
      await store.putPlugin(record('b'));
      await store.kvSet('a', 'k1', b('1'));
      await store.kvSet('a', 'k2', b('2'), { ttlMs: 1_000 });
      await store.kvSet('b', 'k1', b('b1'));
      await store.deletePlugin('a');
      expect(await store.getPlugin('a')).toBeUndefined();
      expect(await store.kvList('a', '', 10)).toEqual({ keys: [], next: null });
      expect(await store.kvGet('b', 'k1')).toEqual(b('b1'));
      expect(rawKvCount(file)).toBe(1);
      await store.deletePlugin('never-installed');
    });
  });

  describe('KV', () => {
    it('sets, gets, overwrites and deletes values byte for byte', async () => {
      const binary = Buffer.from([0, 255, 1, 254, 0]);
      expect(await store.kvGet('p', 'k')).toBeUndefined();
      expect(await store.kvSet('p', 'k', binary)).toBe(true);
      expect(await store.kvGet('p', 'k')).toEqual(binary);
      await store.kvSet('p', 'k', b('second'));
      expect(await store.kvGet('p', 'k')).toEqual(b('second'));
      await store.kvSet('p', 'empty', Buffer.alloc(0));
      expect(await store.kvGet('p', 'empty')).toEqual(Buffer.alloc(0));
      expect(await store.kvDelete('p', 'k')).toBe(true);
      expect(await store.kvDelete('p', 'k')).toBe(false);
      expect(await store.kvGet('p', 'k')).toBeUndefined();
    });

    it('scopes keys to the plugin', async () => {
      await store.kvSet('A', 'shared', b('a'));
      await store.kvSet('B', 'shared', b('b'));
      await store.kvSet('B', 'only-b', b('b'));
      expect(await store.kvGet('A', 'shared')).toEqual(b('a'));
      expect(await store.kvGet('A', 'only-b')).toBeUndefined();
      expect((await store.kvList('A', '', 10)).keys).toEqual(['shared']);
      expect(await store.kvDelete('A', 'only-b')).toBe(false);
      expect(await store.kvSet('A', 'only-b', b('x'), { compare: { expected: b('b') } })).toBe(false);
      expect(await store.kvDeleteAll('A')).toBe(1);
      expect(await store.kvGet('B', 'shared')).toEqual(b('b'));
      expect((await store.kvList('B', '', 10)).keys).toEqual(['only-b', 'shared']);
    });

    it('treats expired values as absent on every read, and writes over them', async () => {
      await store.kvSet('p', 'short', b('s'), { ttlMs: 1_000 });
      await store.kvSet('p', 'forever', b('f'), { ttlMs: 0 });
      clock.advance(999);
      expect(await store.kvGet('p', 'short')).toEqual(b('s'));
      clock.advance(1); // expiry is exclusive: at exactly now + ttl the value is gone
      expect(await store.kvGet('p', 'short')).toBeUndefined();
      expect((await store.kvList('p', '', 10)).keys).toEqual(['forever']);
      expect(await store.kvDelete('p', 'short')).toBe(false);
      expect(await store.kvGet('p', 'forever')).toEqual(b('f'));
      await store.kvSet('p', 'short', b('again'));
      clock.advance(10_000_000);
      expect(await store.kvGet('p', 'short')).toEqual(b('again'));
    });

    it('refuses a negative or non-finite ttl', async () => {
      for (const ttlMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        const err = await rejected(store.kvSet('p', 'k', b('v'), { ttlMs }));
        expect(isError(err, Errors.STORE_BAD_ARGUMENT)).toBe(true);
        expect(err.message).toContain('ttlMs');
      }
      expect(await store.kvGet('p', 'k')).toBeUndefined();
    });

    it('sweeps expired values out of the file and leaves live ones', async () => {
      for (let i = 0; i < 2_500; i++) await store.kvSet('p', `e${i}`, b('x'), { ttlMs: 10 });
      await store.kvSet('p', 'live', b('l'), { ttlMs: 1_000 });
      await store.kvSet('q', 'forever', b('f'));
      expect(await store.sweepExpired()).toBe(0);
      clock.advance(10);
      expect(await store.sweepExpired()).toBe(2_500); // more than one batch
      expect(rawKvCount(file)).toBe(2);
      expect(await store.kvGet('p', 'live')).toEqual(b('l'));
      expect(await store.sweepExpired()).toBe(0);
    });

    it('deleteAll removes expired values too and counts the live ones', async () => {
      await store.kvSet('p', 'a', b('1'));
      await store.kvSet('p', 'b', b('2'));
      await store.kvSet('p', 'gone', b('3'), { ttlMs: 5 });
      clock.advance(5);
      expect(await store.kvDeleteAll('p')).toBe(2);
      expect(rawKvCount(file)).toBe(0);
      expect(await store.kvDeleteAll('p')).toBe(0);
    });
  });

  describe('compare-and-set', () => {
    it('writes absent→value only when expected is null', async () => {
      expect(await store.kvSet('p', 'k', b('first'), { compare: { expected: null } })).toBe(true);
      expect(await store.kvSet('p', 'k', b('second'), { compare: { expected: null } })).toBe(false);
      expect(await store.kvGet('p', 'k')).toEqual(b('first'));
    });

    it('writes when the current value matches byte for byte, not otherwise', async () => {
      await store.kvSet('p', 'k', b('v1'));
      expect(await store.kvSet('p', 'k', b('v2'), { compare: { expected: b('v1') } })).toBe(true);
      expect(await store.kvGet('p', 'k')).toEqual(b('v2'));
      expect(await store.kvSet('p', 'k', b('v3'), { compare: { expected: b('v1') } })).toBe(false);
      expect(await store.kvSet('p', 'k', b('v3'), { compare: { expected: b('v2\0') } })).toBe(false);
      expect(await store.kvGet('p', 'k')).toEqual(b('v2'));
      expect(await store.kvSet('p', 'absent', b('x'), { compare: { expected: b('') } })).toBe(false);
      expect(await store.kvGet('p', 'absent')).toBeUndefined();
    });

    it('counts an expired value as absent', async () => {
      await store.kvSet('p', 'k', b('old'), { ttlMs: 100 });
      clock.advance(100);
      expect(await store.kvSet('p', 'k', b('new'), { compare: { expected: b('old') } })).toBe(false);
      expect(await store.kvSet('p', 'k', b('new'), { compare: { expected: null }, ttlMs: 50 })).toBe(true);
      expect(await store.kvGet('p', 'k')).toEqual(b('new'));
      clock.advance(50);
      expect(await store.kvGet('p', 'k')).toBeUndefined();
    });
  });

  describe('batches (the KV calls of one CallStream message)', () => {
    /** How each promise came out: its value, or its error's code or message. */
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then((value) => ({ value }), (err: Error & { code?: string }) => ({ error: err.code ?? err.message }));

    it('commits the calls in one transaction, seen by others only at its end; a failing call fails alone', async () => {
      await store.kvSet('p', 'old', b('kept'));
      const other = new Database(file, { readonly: true });
      const visible = (): number => (other.prepare("SELECT count(*) AS n FROM kv WHERE plugin_id = 'p'").get() as { n: number }).n;
      try {
        const calls: Promise<unknown>[] = [];
        let seenInside = -1;
        store.batch(() => {
          calls.push(store.kvSet('p', 'a', b('1')));
          calls.push(store.kvSet('p', 'bad-ttl', b('x'), { ttlMs: -5 }));
          // A statement SQLite refuses (value NOT NULL): rolled back alone, the transaction goes on.
          calls.push(store.kvSet('p', 'null', null as unknown as Buffer));
          calls.push(store.kvSet('p', 'a', b('2'), { compare: { expected: null } }));
          calls.push(store.kvSet('p', 'a', b('3'), { compare: { expected: b('1') } }));
          calls.push(store.kvGet('p', 'a'));
          calls.push(store.kvDelete('p', 'old'));
          calls.push(store.kvSet('p', 'z', b('last')));
          seenInside = visible();
        });
        // Nothing of the batch was visible to another connection before its end: one transaction.
        expect(seenInside).toBe(1);
        expect(visible()).toBe(2);
        const outcomes = await Promise.all(calls.map(outcome));
        expect(outcomes).toEqual([
          { value: true },
          { error: Errors.STORE_BAD_ARGUMENT.code },
          { error: 'SQLITE_CONSTRAINT_NOTNULL' },
          { value: false },
          { value: true },
          { value: b('3') },
          { value: true },
          { value: true },
        ]);
        expect(await store.kvGet('p', 'a')).toEqual(b('3'));
        expect(await store.kvGet('p', 'z')).toEqual(b('last'));
        expect(await store.kvGet('p', 'old')).toBeUndefined();
        expect(await store.kvGet('p', 'null')).toBeUndefined();
      } finally {
        other.close();
      }
    });

    it('commits what is open before any other method, which is acknowledged by its own commit', async () => {
      const calls: Promise<unknown>[] = [];
      store.batch(() => {
        calls.push(store.kvSet('p', 'k', b('v')));
        calls.push(store.putPlugin(record('com.example.one')));
        calls.push(store.kvSet('p', 'k2', b('v2')));
      });
      expect(await Promise.all(calls)).toEqual([true, 1, true]);
      expect(await store.getPlugin('com.example.one')).toBeDefined();
      expect([await store.kvGet('p', 'k'), await store.kvGet('p', 'k2')]).toEqual([b('v'), b('v2')]);
    });

    it('fails every call of a transaction SQLite rolled back, and the calls after it begin a new one', async () => {
      await store.kvSet('p', 'fill', Buffer.alloc(100));
      const db = (store as unknown as { db: Database.Database }).db;
      const pages = db.pragma('page_count', { simple: true }) as number;
      // A full database (SQLITE_FULL) is one of the errors on which SQLite rolls back the whole transaction.
      db.pragma(`max_page_count = ${pages}`);
      const calls: Promise<unknown>[] = [];
      store.batch(() => {
        calls.push(store.kvSet('p', 'small', b('s')));
        calls.push(store.kvSet('p', 'huge', Buffer.alloc(256 * 1024)));
        db.pragma('max_page_count = 1000000');
        calls.push(store.kvSet('p', 'after', b('a')));
      });
      const outcomes = await Promise.all(calls.map(outcome));
      expect(outcomes[0]).toEqual({ error: Errors.STORE_BATCH_ROLLED_BACK.code });
      expect(outcomes[1]).toEqual({ error: 'SQLITE_FULL' });
      expect(outcomes[2]).toEqual({ value: true });
      expect(await store.kvGet('p', 'small')).toBeUndefined();
      expect(await store.kvGet('p', 'after')).toEqual(b('a'));
    });
  });

  describe('listing by prefix', () => {
    const tricky = [
      'a', 'a%', 'a%b', 'a_', 'a_b', 'ab', 'abc', 'ab\u0000', 'ab\u{10FFFF}', 'ab\u{10FFFF}z', 'ac', 'aa',
      'b', '%', '_', '\\', 'a\\b',
      'é', 'é1', 'e', 'e\u0301', '日本', '日本語', '日',
      '\uD7FF', '\uD7FFx', '\uE000', '\uFFFF', '\u{1F600}', '\u{1F600}x', '\u{10FFFF}', '\u{10FFFF}\u{10FFFF}', '',
    ];

    beforeEach(async () => {
      for (const k of tricky) await store.kvSet('p', k, b(`v:${k}`));
    });

    const expectedFor = (prefix: string): string[] => tricky.filter((k) => k.startsWith(prefix)).sort(byteOrder);

    it.each([
      ['', 'everything'],
      ['a', 'a plain prefix'],
      ['a%', 'a LIKE wildcard %'],
      ['a_', 'a LIKE wildcard _'],
      ['%', 'only %'],
      ['_', 'only _'],
      ['a\\', 'a backslash'],
      ['ab', 'keys equal to, NUL after and U+10FFFF after the prefix'],
      ['ab\u{10FFFF}', 'a prefix ending in the last code point'],
      ['\u{10FFFF}', 'only the last code point'],
      ['é', 'a precomposed accent'],
      ['e', 'a base letter (a combining accent follows in one key)'],
      ['日本', 'CJK'],
      ['\uD7FF', 'the code point before the surrogates'],
      ['\u{1F600}', 'an astral code point'],
      ['zzz', 'nothing'],
    ])('prefix %j (%s) matches exactly the keys that start with it, in byte order, over pages', async (prefix) => {
      const expected = expectedFor(prefix);
      for (const limit of [1, 2, 3, 100]) {
        const { keys, pages } = await listAll(store, 'p', prefix, limit);
        expect(keys).toEqual(expected);
        expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
      }
    });

    it('orders by UTF-8 bytes, not by UTF-16 code units', async () => {
      const { keys } = await listAll(store, 'p', '', 5);
      expect(keys.indexOf('\uFFFF')).toBeLessThan(keys.indexOf('\u{1F600}'));
      expect(['\u{1F600}', '\uFFFF'].sort()).toEqual(['\u{1F600}', '\uFFFF']); // what JS `<` would say
    });

    it('says next only when more may follow, and honours an `after` outside the prefix', async () => {
      expect(await store.kvList('p', 'ab', 10)).toEqual({ keys: expectedFor('ab'), next: null });
      const first = await store.kvList('p', 'ab', 2);
      expect(first).toEqual({ keys: ['ab', 'ab\u0000'], next: 'ab\u0000' });
      expect((await store.kvList('p', 'ab', 10, 'a')).keys).toEqual(expectedFor('ab'));
      expect((await store.kvList('p', 'ab', 10, 'abc')).keys).toEqual(['ab\u{10FFFF}', 'ab\u{10FFFF}z']);
      expect(await store.kvList('p', 'ab', 10, 'b')).toEqual({ keys: [], next: null });
      expect((await store.kvList('p', '', 2, '\u{10FFFF}')).keys).toEqual(['\u{10FFFF}\u{10FFFF}']);
    });

    it('skips expired keys within and across pages', async () => {
      await store.kvSet('p', 'ab1', b('x'), { ttlMs: 1 });
      await store.kvSet('p', 'ab2', b('x'), { ttlMs: 1 });
      clock.advance(1);
      expect((await listAll(store, 'p', 'ab', 1)).keys).toEqual(expectedFor('ab'));
    });

    it('refuses a limit below 1 or not whole', async () => {
      for (const limit of [0, -1, 1.5, Number.NaN]) {
        const err = await rejected(store.kvList('p', '', limit));
        expect(isError(err, Errors.STORE_BAD_ARGUMENT)).toBe(true);
        expect(err.message).toContain('limit');
      }
    });

    it('computes the least string above a prefix', () => {
      expect(prefixUpperBound('')).toBeNull();
      expect(prefixUpperBound('ab')).toBe('ac');
      expect(prefixUpperBound('a\u{10FFFF}')).toBe('b');
      expect(prefixUpperBound('\u{10FFFF}\u{10FFFF}')).toBeNull();
      expect(prefixUpperBound('\uD7FF')).toBe('\uE000');
      expect(prefixUpperBound('\uFFFF')).toBe('\u{10000}');
    });
  });

  describe('closing', () => {
    it('rejects every call after close with STORE_CLOSED, and a second close does nothing', async () => {
      await store.close();
      await store.close();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['listPlugins', () => store.listPlugins()],
        ['getPlugin', () => store.getPlugin('p')],
        ['putPlugin', () => store.putPlugin(record('p'))],
        ['updatePlugin', () => store.updatePlugin('p', {})],
        ['deletePlugin', () => store.deletePlugin('p')],
        ['kvGet', () => store.kvGet('p', 'k')],
        ['kvSet', () => store.kvSet('p', 'k', b('v'))],
        ['kvDelete', () => store.kvDelete('p', 'k')],
        ['kvList', () => store.kvList('p', '', 1)],
        ['kvDeleteAll', () => store.kvDeleteAll('p')],
        ['sweepExpired', () => store.sweepExpired()],
      ];
      for (const [method, call] of calls) {
        const err = await rejected(call());
        expect(isError(err, Errors.STORE_CLOSED)).toBe(true);
        expect(err.message).toContain(`${method}()`);
        expect(err.message).toContain(file);
      }
    });

    it('starts one unref\'d sweep timer at open and clears it at close', async () => {
      await store.close();
      const set = jest.spyOn(global, 'setInterval');
      const clear = jest.spyOn(global, 'clearInterval');
      try {
        store = SqliteStore.open({ file });
        expect(set).toHaveBeenCalledTimes(1);
        expect(set.mock.calls[0][1]).toBe(60_000);
        const timer = set.mock.results[0].value as NodeJS.Timeout;
        expect(timer.hasRef()).toBe(false); // never keeps the host alive on its own
        await store.close();
        expect(clear).toHaveBeenCalledWith(timer);
        store = SqliteStore.open({ file, sweepIntervalMs: 0 });
        expect(set).toHaveBeenCalledTimes(1);
      } finally {
        set.mockRestore();
        clear.mockRestore();
      }
    });
  });

  describe('the sweep timer', () => {
    afterEach(() => {
      jest.useRealTimers();
    });

    it('sweeps on its interval and stops when the store closes', async () => {
      await store.close();
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      store = SqliteStore.open({ file, now: clock.now, sweepIntervalMs: 1_000 });
      expect(jest.getTimerCount()).toBe(1);
      await store.kvSet('p', 'k', b('v'), { ttlMs: 500 });
      clock.advance(500);
      expect(rawKvCount(file)).toBe(1);
      jest.advanceTimersByTime(1_000);
      expect(rawKvCount(file)).toBe(0);
      await store.close();
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  // ---- migration (plughost migrate) ----
  describe('holding the file exclusively', () => {
    it('is refused with STORE_FILE_IN_USE while another connection has the file open, and leaves that one working', async () => {
      const other = SqliteStore.open({ file, sweepIntervalMs: 0 });
      try {
        const err = await rejected(other.holdExclusively());
        expect(isError(err, Errors.STORE_FILE_IN_USE)).toBe(true);
        expect(err.message).toContain(JSON.stringify(file));
        expect(await store.kvSet('p1', 'k', b('still writable'))).toBe(true);
        expect(await other.kvGet('p1', 'k')).toEqual(b('still writable'));
      } finally {
        await other.close();
      }
    });

    it('once held, the holder reads and writes and no other connection can open the file until it closes', async () => {
      await store.kvSet('p1', 'k', b('v'));
      await store.close();
      const holder = SqliteStore.open({ file, sweepIntervalMs: 0 });
      try {
        await holder.holdExclusively();
        expect(await holder.kvGet('p1', 'k')).toEqual(b('v'));
        expect(await holder.kvSet('p1', 'k2', b('v2'))).toBe(true);
        // A host starting meanwhile waits out its busy timeout, then fails to open.
        const err = caught(() => SqliteStore.open({ file, sweepIntervalMs: 0 }));
        expect(isError(err, Errors.STORE_OPEN_FAILED)).toBe(true);
        expect(err.message).toContain('database is locked');
      } finally {
        await holder.close();
      }
      store = SqliteStore.open({ file, now: clock.now });
      expect(await store.kvGet('p1', 'k2')).toEqual(b('v2'));
    }, 30_000);
  });
});
