/**
 * PostgreSQL for tests: the server scripts/with-postgres.sh starts (its URL in
 * PLUGHOST_TEST_PG_URL) and one throwaway database per suite. Without a server
 * the PostgreSQL suites say what to install and skip, unless
 * PLUGHOST_REQUIRE_INTEROP=1 (CI), where a missing server is a failure.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { availableOrSkip } from './index';

const INSTALL = 'run the tests through scripts/with-postgres.sh (it needs Debian\'s postgresql package: apt-get install postgresql)';

/** The admin URL of the test server (a superuser on its `postgres` database), or undefined. */
export function pgUrl(): string | undefined {
  const url = process.env.PLUGHOST_TEST_PG_URL;
  return url === undefined || url === '' ? undefined : url;
}

/**
 * `describe` when a test server is there, else `describe.skip` after saying
 * why; throws instead of skipping under PLUGHOST_REQUIRE_INTEROP=1.
 */
export function describeIfPg(what: string): jest.Describe {
  return havePg(what) ? describe : describe.skip;
}

/** Whether a test server is there; says what to install when not, and throws under PLUGHOST_REQUIRE_INTEROP=1. */
export function havePg(what: string): boolean {
  return availableOrSkip(what, pgUrl() !== undefined ? null : `PLUGHOST_TEST_PG_URL is not set, so the ${what} tests have no PostgreSQL: ${INSTALL}`);
}

export interface FreshDatabase {
  name: string;
  /** A URL for the new database, with the admin URL's credentials. */
  url: string;
  /** Ends every session on the database and drops it. */
  drop(): Promise<void>;
}

/** The admin URL pointed at another database. */
export function urlOf(database: string): string {
  const u = new URL(requiredUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs one statement as the admin, on `database` (default: the admin URL's own). */
export async function adminQuery<R extends object = Record<string, unknown>>(sql: string, params: unknown[] = [], database?: string): Promise<R[]> {
  const client = new Client({ connectionString: database === undefined ? requiredUrl() : urlOf(database) });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Ends every other session on `database` (what a server restart or a DBA does to a host's pool). */
export async function terminateSessions(database: string): Promise<number> {
  const rows = await adminQuery<{ pid: number }>(
    'SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  return rows.length;
}

/** A database of its own for one suite (or one test), so suites never see each other's rows or locks. */
export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `plughost_t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  return {
    name,
    url: urlOf(name),
    drop: async () => {
      // FORCE (PostgreSQL 13+) ends the remaining sessions first, as pg_terminate_backend would.
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * How many rows each plughost table in `database` holds, by table name without the prefix,
 * leaving out empty tables (so `{}` is a schema with no data); null when there are no tables.
 * The schema version and the cluster feed (a log of recent changes, pruned by itself) are not data.
 */
export async function plughostRows(database: string): Promise<Record<string, number> | null> {
  const tables = await adminQuery<{ name: string }>(
    `SELECT substr(tablename, 10) AS name FROM pg_tables WHERE tablename LIKE 'plughost\\_%'
       AND tablename NOT IN ('plughost_schema', 'plughost_feed', 'plughost_feed_seq') ORDER BY tablename`, [], database);
  if (tables.length === 0) return null;
  const rows: Record<string, number> = {};
  for (const { name } of tables) {
    const n = Number((await adminQuery<{ n: string }>(`SELECT count(*) AS n FROM plughost_${name}`, [], database))[0].n);
    if (n > 0) rows[name] = n;
  }
  return rows;
}

function requiredUrl(): string {
  const url = pgUrl();
  if (url === undefined) throw new Error(`PLUGHOST_TEST_PG_URL is not set: ${INSTALL}`);
  return url;
}
