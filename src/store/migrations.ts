/**
 * The SQLite schema as an ordered list of migrations. `PRAGMA user_version`
 * holds the number of the last one applied, so opening a database applies
 * only what it lacks, and a database written by a newer plughost (a version
 * we do not know) is refused rather than misread.
 *
 * Append new migrations at the end; never edit one that has shipped, since
 * databases in the field have already run it.
 */
import { Errors } from '../errors';

/**
 * What migrating needs of a better-sqlite3 Database. Structural on purpose: this file's types are
 * published (the store's index re-exports MIGRATIONS), and naming better-sqlite3's own type would
 * make every TypeScript user install @types/better-sqlite3, a devDependency of ours.
 */
export interface MigratableDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): unknown;
  transaction(fn: () => number): { immediate(): number };
}

export interface Migration {
  /** 1, 2, 3, ... in order; becomes `user_version` once applied. */
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'plugins and plugin-scoped KV',
    sql: `
      CREATE TABLE plugins (
        id            TEXT PRIMARY KEY NOT NULL,
        manifest      TEXT NOT NULL CHECK (json_valid(manifest)),
        version       TEXT NOT NULL,
        enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        state         TEXT NOT NULL,
        last_error    TEXT,
        config        TEXT NOT NULL CHECK (json_valid(config)),
        bundle_sha256 TEXT NOT NULL,
        installed_at  INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      -- No foreign key to plugins: deletePlugin removes a plugin's KV in the
      -- same transaction, and a KV write should not depend on the order in
      -- which the runtime writes the plugin record.
      CREATE TABLE kv (
        plugin_id  TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      BLOB NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (plugin_id, key)
      ) WITHOUT ROWID;
      CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    description: 'bundles stored by sha256, in chunks',
    sql: `
      -- A bundle row exists only once all its chunks are written and their
      -- SHA-256 checked, in the same transaction.
      CREATE TABLE bundles (
        sha256    TEXT PRIMARY KEY NOT NULL,
        size      INTEGER NOT NULL,
        chunks    INTEGER NOT NULL,
        signature BLOB,
        stored_at INTEGER NOT NULL
      );
      -- Fixed-size chunks (1 MiB) so no row holds a whole bundle. A rowid table:
      -- WITHOUT ROWID suits small rows, not megabyte blobs.
      CREATE TABLE bundle_chunks (
        sha256 TEXT NOT NULL REFERENCES bundles (sha256) ON DELETE CASCADE,
        seq    INTEGER NOT NULL,
        data   BLOB NOT NULL,
        PRIMARY KEY (sha256, seq)
      );
    `,
  },
  {
    version: 3,
    description: 'nodes and per-node observed plugin state',
    sql: `
      CREATE TABLE nodes (
        node_id      TEXT PRIMARY KEY NOT NULL,
        version      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
      );
      -- No foreign keys, as for kv: deletePlugin removes a plugin's rows in its transaction,
      -- and a node's first state write must not depend on its first heartbeat.
      CREATE TABLE observed (
        plugin_id  TEXT NOT NULL,
        node_id    TEXT NOT NULL,
        state      TEXT NOT NULL,
        last_error TEXT,
        pid        INTEGER,
        restarts   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (plugin_id, node_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Version 4: 2 and 3 were taken by work landing beside this; gaps are skipped harmlessly.
    version: 4,
    description: 'cluster locks (leases with fencing tokens) and job tickets',
    sql: `
      -- One row per lock name ever granted, kept after release and expiry so
      -- the fencing token (the last one granted) never goes back.
      CREATE TABLE locks (
        plugin_id  TEXT NOT NULL,
        name       TEXT NOT NULL,
        token      INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (plugin_id, name)
      ) WITHOUT ROWID;
      CREATE TABLE job_tickets (
        plugin_id  TEXT NOT NULL,
        name       TEXT NOT NULL,
        period     INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (plugin_id, name, period)
      ) WITHOUT ROWID;
      CREATE INDEX job_tickets_expires_at ON job_tickets (expires_at);
    `,
  },
  {
    version: 5,
    description: 'desired generation of each plugin, and the generation each node observed',
    sql: `
      ALTER TABLE plugins ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE observed ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    `,
  },
];

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length === 0 ? 0 : MIGRATIONS[MIGRATIONS.length - 1].version;

export function schemaVersion(db: MigratableDatabase): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the schema up to SCHEMA_VERSION in one IMMEDIATE transaction, so two
 * processes opening the same new file do not both run a migration: the second
 * waits for the write lock, then sees the version the first one set.
 */
export function migrate(db: MigratableDatabase, file: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const apply = db.transaction(() => {
    const current = schemaVersion(db);
    if (current > known) throw Errors.STORE_VERSION_TOO_NEW(file, current, known);
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    return current;
  });
  return apply.immediate();
}
