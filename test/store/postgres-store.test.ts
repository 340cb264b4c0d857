/**
 * What only PostgresStore has: migrations shared by hosts starting together,
 * several hosts opening one database together, a schema from a newer plughost, an unreachable or
 * misspelt URL, passwords kept out of messages, and a server that drops the
 * store's connections. The Store semantics themselves are in store-contract.test.ts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
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
