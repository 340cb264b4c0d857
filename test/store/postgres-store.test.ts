/**
 * What only PostgresStore has: migrations shared by hosts starting together,
 * several hosts opening one database together, a schema from a newer plughost, an unreachable or
 * misspelt URL, passwords kept out of messages, and a server that drops the
 * store's connections. The Store semantics themselves are in store-contract.test.ts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import { Errors, isError, PlughostError } from '../../src/errors';
import { PostgresStore } from '../../src/store';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/store/postgres-migrations';
import { rejected } from '../fixtures/expect-error';
import { closedPort, until } from '../helpers';
import { adminQuery, describeIfPg, freshDatabase, terminateSessions, type FreshDatabase } from '../helpers/postgres';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PASSWORD = 's3cr3t-Pw';

/** The URL with a password put in (the test server trusts every password). */
function withPassword(url: string, password = PASSWORD): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

async function schemaVersions(db: FreshDatabase): Promise<Array<{ version: number; n: number }>> {
  return adminQuery<{ version: number; n: number }>(
    'SELECT version, count(*)::int AS n FROM plughost_schema GROUP BY version ORDER BY version', [], db.name);
}

async function advisoryLocks(db: FreshDatabase): Promise<number> {
  const rows = await adminQuery<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    [db.name]);
  return rows[0].n;
}

/** The error, checked to be one of ours (never a raw driver error) and free of the password. */
function storeError(err: unknown): PlughostError {
  if (!(err instanceof PlughostError)) throw new Error(`expected a PlughostError, got ${String(err)}`, { cause: err });
  expect(err.message).not.toContain(PASSWORD);
  return err;
}

describeIfPg('PostgresStore')('PostgresStore', () => {
  let db: FreshDatabase;
  const opened: PostgresStore[] = [];

  /** Opens a store that the test's cleanup closes. */
  async function open(url = db.url, sweepIntervalMs = 0): Promise<PostgresStore> {
    const store = await PostgresStore.open({ url, sweepIntervalMs, poolSize: 4 });
    opened.push(store);
    return store;
  }

  beforeEach(async () => { db = await freshDatabase(); });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await db.drop();
  });

  describe('opening', () => {
    it('three hosts opening a fresh database together: migrations run once, all three open and share the data', async () => {
      const stores = await Promise.all([0, 1, 2].map(() => PostgresStore.open({ url: withPassword(db.url), sweepIntervalMs: 0 })));
      opened.push(...stores);
      expect(await schemaVersions(db)).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, n: 1 })));

      await stores[0].putPlugin({
        id: 'p1', manifest: { id: 'p1', name: 'P', version: '1.0.0' } as never, version: '1.0.0', enabled: true, state: 'running',
        lastError: null, config: {}, bundleSha256: '00'.repeat(32), installedAt: 1, updatedAt: 2,
      });
      await stores[1].kvSet('p1', 'k', b('v'));
      expect((await stores[2].getPlugin('p1'))?.updatedAt).toBe(2);
      expect(await stores[0].kvGet('p1', 'k')).toEqual(b('v'));
      await stores[0].close();
      // One host closing leaves the others working.
      expect(await stores[1].kvGet('p1', 'k')).toEqual(b('v'));

      // Another host opening later migrates nothing again.
      await open();
      expect(await schemaVersions(db)).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, n: 1 })));
    });

    it('close() ends every session the store opened and holds no advisory lock', async () => {
      const sessions = async (): Promise<number> => (await adminQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'plughost'", [db.name]))[0].n;
      const before = await sessions();
      for (let i = 0; i < 5; i++) {
        const store = await PostgresStore.open({ url: db.url, sweepIntervalMs: 0 });
        await Promise.all([0, 1, 2].map((n) => store.kvSet('p1', `round${n}`, b(String(i)))));
        await store.close();
        expect({ round: i, advisoryLocks: await advisoryLocks(db) }).toEqual({ round: i, advisoryLocks: 0 });
      }
      // Sessions end asynchronously on the server's side: poll.
      let now = await sessions();
      for (const until = Date.now() + 10_000; now !== before && Date.now() < until; now = await sessions()) await sleep(50);
      expect(now).toBe(before);
      const last = await open();
      expect(await last.kvGet('p1', 'round0')).toEqual(b('4'));
    });

    it('refuses a database with a newer schema version and changes nothing', async () => {
      const first = await open();
      await first.kvSet('p1', 'k', b('v'));
      await first.close();
      await adminQuery('INSERT INTO plughost_schema (version) VALUES (999)', [], db.name);
      const before = await schemaVersions(db);

      const err = storeError(await rejected(PostgresStore.open({ url: withPassword(db.url), sweepIntervalMs: 0 })));
      expect(isError(err, Errors.STORE_VERSION_TOO_NEW)).toBe(true);
      expect(err.message).toContain('999');
      expect(err.message).toContain(String(PG_SCHEMA_VERSION));
      expect(await schemaVersions(db)).toEqual(before);
      expect(await adminQuery('SELECT encode(value, \'escape\') AS v FROM plughost_kv', [], db.name)).toEqual([{ v: 'v' }]);
      expect(await advisoryLocks(db)).toBe(0);
    });

    it('refuses a database a newer plughost only began, creating none of its tables', async () => {
      await adminQuery('CREATE TABLE plughost_schema (version integer NOT NULL)', [], db.name);
      await adminQuery('INSERT INTO plughost_schema (version) VALUES (999)', [], db.name);
      const err = storeError(await rejected(PostgresStore.open({ url: db.url, sweepIntervalMs: 0 })));
      expect(isError(err, Errors.STORE_VERSION_TOO_NEW)).toBe(true);
      const tables = await adminQuery<{ t: string }>(
        "SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'plughost%' ORDER BY 1", [], db.name);
      expect(tables).toEqual([{ t: 'plughost_schema' }]);
    });

    it('an unreachable server is STORE_UNAVAILABLE (503), naming the database without its password', async () => {
      const port = await closedPort();
      const url = `postgres://plughost:${PASSWORD}@127.0.0.1:${port}/plughost`;
      const err = storeError(await rejected(PostgresStore.open({ url, sweepIntervalMs: 0, connectTimeoutMs: 5_000 })));
      expect(isError(err, Errors.STORE_UNAVAILABLE)).toBe(true);
      expect(err.status).toBe(503);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(err.message).toContain('ECONNREFUSED');
    });

    it('a URL that is not postgres:// is STORE_BAD_ARGUMENT, without its password', async () => {
      for (const url of [`mysql://u:${PASSWORD}@127.0.0.1/db`, `http://u:${PASSWORD}@127.0.0.1/db`, `u:${PASSWORD}@127.0.0.1/db`, '', 'postgres:/x']) {
        const err = storeError(await rejected(PostgresStore.open({ url, sweepIntervalMs: 0 })));
        expect({ url, code: err.code }).toEqual({ url, code: Errors.STORE_BAD_ARGUMENT.code });
      }
    });

    it('a bad sweepIntervalMs is refused and the store it would have opened leaves no lock', async () => {
      const err = storeError(await rejected(PostgresStore.open({ url: db.url, sweepIntervalMs: -1 })));
      expect(isError(err, Errors.STORE_BAD_ARGUMENT)).toBe(true);
      expect(await advisoryLocks(db)).toBe(0);
      await open();
    });
  });

  describe('passwords', () => {
    it('no error message or store name carries the password, however the URL gives it', async () => {
      const port = await closedPort();
      const encoded = 'p%40ss%3Aw0rd%2F';
      const decoded = 'p@ss:w0rd/';
      const unreachable = [
        `postgres://u:${PASSWORD}@127.0.0.1:${port}/db`,
        `postgresql://u:${encoded}@127.0.0.1:${port}/db`,
        `postgres://u@127.0.0.1:${port}/db?password=${PASSWORD}`,
        `postgres://u@127.0.0.1:${port}/db?sslmode=disable&password=${encoded}`,
      ];
      const messages: string[] = [];
      for (const url of unreachable) {
        const err = await rejected(PostgresStore.open({ url, sweepIntervalMs: 0, connectTimeoutMs: 5_000 }));
        expect({ url, code: err.code }).toEqual({ url, code: Errors.STORE_UNAVAILABLE.code });
        messages.push(err.message);
      }
      // The server's own refusal (no such database) passes through the same mapping.
      const missing = new URL(withPassword(db.url));
      missing.pathname = '/plughost_no_such_db';
      const noDb = await rejected(PostgresStore.open({ url: missing.toString(), sweepIntervalMs: 0 }));
      expect(isError(noDb, Errors.STORE_UNAVAILABLE)).toBe(true);
      messages.push(noDb.message);

      const store = await open(withPassword(db.url));
      expect(store.where).not.toContain(PASSWORD);
      messages.push(store.where);
      await store.close();
      messages.push(storeError(await rejected(store.kvGet('p1', 'k'))).message);

      for (const m of messages) {
        for (const secret of [PASSWORD, encoded, decoded, 'p@ss']) expect({ message: m, leaks: m.includes(secret) }).toEqual({ message: m, leaks: false });
      }
    });
  });

  describe('a server that drops the connections', () => {
    it('each call after the drop succeeds on a fresh connection or is STORE_UNAVAILABLE, and calls recover', async () => {
      const store = await open(withPassword(db.url));
      await store.kvSet('p1', 'k', b('v'));
      await store.putPlugin({
        id: 'p1', manifest: { id: 'p1', name: 'P', version: '1.0.0' } as never, version: '1.0.0', enabled: true, state: 'running',
        lastError: null, config: {}, bundleSha256: '00'.repeat(32), installedAt: 1, updatedAt: 2,
      });
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['kvGet', () => store.kvGet('p1', 'k')],
        ['kvSet', () => store.kvSet('p1', 'k', b('v'))],
        ['kvSet CAS', () => store.kvSet('p1', 'k', b('v'), { compare: { expected: b('v') } })],
        ['kvList', () => store.kvList('p1', '', 10)],
        ['updatePlugin', () => store.updatePlugin('p1', { state: 'running' })],
        ['listPlugins', () => store.listPlugins()],
      ];
      for (const [name, call] of calls) {
        // Warm the pool so the drop hits pooled idle connections.
        await Promise.all([call(), call(), call()]);
        expect(await terminateSessions(db.name)).toBeGreaterThan(0);
        let failures = 0;
        let recovered = false;
        for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
          try {
            await call();
            recovered = true;
          } catch (err) {
            const e = storeError(err);
            expect({ call: name, code: e.code }).toEqual({ call: name, code: Errors.STORE_UNAVAILABLE.code });
            failures++;
            await sleep(100);
          }
        }
        expect({ call: name, recovered }).toEqual({ call: name, recovered: true });
        expect(failures).toBeLessThan(50);
      }
      expect(await store.kvGet('p1', 'k')).toEqual(b('v'));
    });

    it('a session ended inside a transaction (a bundle half written) is STORE_UNAVAILABLE, not an unhandled error; nothing of it is stored', async () => {
      const store = await open();
      const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      // The first chunk arrives, the transaction writes it, then the server ends the session while the store waits for more.
      const pieces = async function* () {
        yield bytes.subarray(0, 1024 * 1024);
        await until(async () => (await adminQuery('SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = $2', [db.name, 'idle in transaction'])).length > 0,
          'the transaction waiting for the next chunk');
        await terminateSessions(db.name);
        yield bytes.subarray(1024 * 1024);
      };
      const err = storeError(await rejected(store.putBundle(sha256, Readable.from(pieces()))));
      expect(err.code).toBe(Errors.STORE_UNAVAILABLE.code);
      expect(await adminQuery('SELECT sha256 FROM plughost_bundles', [], db.name)).toEqual([]);
      await store.putBundle(sha256, bytes);
      expect((await store.getBundle(sha256))?.size).toBe(bytes.length);
    });
  });

  describe('batches (the KV calls of one CallStream message)', () => {
    /** How each promise came out: its value, or its error's code. */
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then((value) => ({ value }), (err: Error & { code?: string }) => ({ error: err.code ?? err.message }));
    /** The transaction ids that wrote the rows of `keys`: one for rows written in one transaction. */
    const writers = async (keys: string[]): Promise<string[]> =>
      (await adminQuery<{ xmin: string }>('SELECT DISTINCT xmin::text AS xmin FROM plughost_kv WHERE plugin_id = $1 AND key = ANY($2)',
        ['p', keys.map(b)], db.name)).map((r) => r.xmin);

    it('commits the calls in one transaction; a call the server refuses fails alone and the others are kept', async () => {
      const store = await open();
      await store.kvSet('p', 'old', b('kept'));
      const calls: Promise<unknown>[] = [];
      store.batch(() => {
        calls.push(store.kvSet('p', 'a', b('1')));
        calls.push(store.kvSet('p', 'bad-ttl', b('x'), { ttlMs: -5 }));
        // A statement PostgreSQL refuses (value NOT NULL): it aborts the transaction, which is begun again without it.
        calls.push(store.kvSet('p', 'null', null as unknown as Buffer));
        calls.push(store.kvSet('p', 'a', b('2'), { compare: { expected: null } }));
        calls.push(store.kvSet('p', 'a', b('3'), { compare: { expected: b('1') } }));
        calls.push(store.kvGet('p', 'a'));
        calls.push(store.kvDelete('p', 'old'));
        calls.push(store.kvSet('p', 'z', b('last')));
      });
      const outcomes = await Promise.all(calls.map(outcome));
      expect(outcomes).toEqual([
        { value: true },
        { error: Errors.STORE_BAD_ARGUMENT.code },
        { error: Errors.STORE_UNAVAILABLE.code },
        { value: false },
        { value: true },
        { value: b('3') },
        { value: true },
        { value: true },
      ]);
      expect(await writers(['a', 'z'])).toHaveLength(1);
      expect(await store.kvGet('p', 'a')).toEqual(b('3'));
      expect(await store.kvGet('p', 'z')).toEqual(b('last'));
      expect(await store.kvGet('p', 'old')).toBeUndefined();
      expect(await store.kvGet('p', 'null')).toBeUndefined();
    });

    it('answers no call before the COMMIT: a batch held behind a lock leaves every call waiting, then all are kept', async () => {
      const store = await open();
      await store.kvSet('p', 'held', b('0'));
      const holder = new Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query("UPDATE plughost_kv SET value = 'x' WHERE plugin_id = 'p' AND key = $1", [b('held')]);
        const settled: string[] = [];
        const calls: Array<Promise<unknown>> = [];
        store.batch(() => {
          calls.push(store.kvSet('p', 'first', b('1')).then((v) => { settled.push('first'); return v; }));
          calls.push(store.kvSet('p', 'held', b('2')).then((v) => { settled.push('held'); return v; }));
        });
        await until(async () => (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [db.name])).length > 0,
          'the batch waiting on the held row');
        // 'first' ran before the lock, but its transaction has not committed: not answered, not visible.
        expect(settled).toEqual([]);
        expect(await adminQuery("SELECT 1 FROM plughost_kv WHERE key = 'first'::bytea", [], db.name)).toEqual([]);
        await holder.query('COMMIT');
        expect(await Promise.all(calls)).toEqual([true, true]);
        expect(await store.kvGet('p', 'held')).toEqual(b('2'));
        expect(await writers(['first', 'held'])).toHaveLength(1);
      } finally {
        await holder.end();
      }
    });

    it('fails every call of a transaction PostgreSQL rolled back (a deadlock), and the calls after it begin a new one', async () => {
      const store = await open();
      await store.kvSet('p', 'mine', b('0'));
      await store.kvSet('p', 'theirs', b('0'));
      const other = new Client({ connectionString: db.url });
      await other.connect();
      try {
        // Only the batch's session looks for the deadlock (after its 1 s deadlock_timeout), so the batch is the one rolled back.
        await other.query("SET deadlock_timeout = '1h'");
        await other.query('BEGIN');
        await other.query("UPDATE plughost_kv SET value = 'o' WHERE plugin_id = 'p' AND key = 'theirs'::bytea");
        const calls: Promise<unknown>[] = [];
        store.batch(() => {
          calls.push(store.kvSet('p', 'mine', b('1')));
          calls.push(store.kvSet('p', 'theirs', b('1')));
          calls.push(store.kvSet('p', 'after', b('a')));
        });
        const settled = Promise.all(calls.map(outcome));
        await until(async () => (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [db.name])).length > 0,
          'the batch waiting on the other session\'s row');
        // The other session now waits on the batch's row: a deadlock.
        const theirs = other.query("UPDATE plughost_kv SET value = 'o' WHERE plugin_id = 'p' AND key = 'mine'::bytea");
        // The other session goes on once the batch is rolled back (or at once, were the batch's rows committed already).
        await theirs;
        await other.query('COMMIT');
        const outcomes = await settled;
        expect(outcomes).toEqual([
          { error: Errors.STORE_BATCH_ROLLED_BACK.code },
          { error: Errors.STORE_UNAVAILABLE.code },
          { value: true },
        ]);
        expect(await calls[0].catch((err: Error) => err.message)).toContain('deadlock detected');
        expect(await store.kvGet('p', 'mine')).toEqual(b('o'));
        expect(await store.kvGet('p', 'after')).toEqual(b('a'));
      } finally {
        await other.end();
      }
    });

    it('a session ended under a batch fails its calls with our errors (no unhandled error), and the next batch runs', async () => {
      const store = await open();
      await store.kvSet('p', 'held', b('0'));
      const holder = new Client({ connectionString: db.url, application_name: 'holder' });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query("UPDATE plughost_kv SET value = 'x' WHERE plugin_id = 'p' AND key = 'held'::bytea");
        const calls: Promise<unknown>[] = [];
        store.batch(() => {
          calls.push(store.kvSet('p', 'first', b('1')));
          calls.push(store.kvSet('p', 'held', b('2')));
        });
        const settled = Promise.all(calls.map(outcome));
        await until(async () => (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [db.name])).length > 0,
          'the batch waiting on the held row');
        await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'plughost' AND wait_event_type = 'Lock'", [db.name]);
        expect(await settled).toEqual([
          { error: Errors.STORE_BATCH_ROLLED_BACK.code },
          { error: Errors.STORE_UNAVAILABLE.code },
        ]);
        await holder.query('ROLLBACK');
        const next: Promise<unknown>[] = [];
        store.batch(() => {
          next.push(store.kvSet('p', 'first', b('again')));
          next.push(store.kvGet('p', 'first'));
        });
        expect(await Promise.all(next)).toEqual([true, b('again')]);
      } finally {
        await holder.end();
      }
    });

    it('a call made inside a batch after close() is STORE_CLOSED', async () => {
      const store = await open();
      await store.close();
      const calls: Promise<unknown>[] = [];
      store.batch(() => calls.push(store.kvSet('p', 'k', b('v'))));
      expect(await Promise.all(calls.map(outcome))).toEqual([{ error: Errors.STORE_CLOSED.code }]);
    });
  });

  describe('sweeping', () => {
    it('the sweep timer deletes expired rows by itself, and close() stops it', async () => {
      const store = await open(db.url, 50);
      await store.kvSet('p1', 'gone', b('x'), { ttlMs: 1 });
      await store.kvSet('p1', 'kept', b('y'), { ttlMs: 60_000 });
      const until = Date.now() + 10_000;
      let rows = -1;
      while (Date.now() < until) {
        rows = (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM plughost_kv', [], db.name))[0].n;
        if (rows === 1) break;
        await sleep(50);
      }
      expect(rows).toBe(1);
      await store.close();
    });

    it('keys are stored as their UTF-8 bytes', async () => {
      const store = await open();
      await store.kvSet('p1', 'a\u0000😀', b('v'));
      const rows = await adminQuery<{ key: Buffer }>('SELECT key FROM plughost_kv', [], db.name);
      expect(rows.map((r) => r.key)).toEqual([Buffer.from('a\u0000😀', 'utf8')]);
    });
  });
});
