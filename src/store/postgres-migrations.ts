/**
 * The PostgreSQL schema as an ordered list of migrations, applied by
 * PostgresStore.open under an advisory lock. `plughost_schema` records the
 * versions applied. Append new migrations at the end; never edit a shipped one.
 */
import type { Migration } from './migrations';

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'plugins and plugin-scoped KV',
    sql: `
      CREATE TABLE plughost_plugins (
        id            text PRIMARY KEY,
        manifest      text NOT NULL,
        version       text NOT NULL,
        enabled       boolean NOT NULL,
        state         text NOT NULL,
        last_error    text,
        config        text NOT NULL,
        bundle_sha256 text NOT NULL,
        installed_at  bigint NOT NULL,
        updated_at    bigint NOT NULL
      );
      -- Keys as bytea: byte order and U+0000 as in SQLite. No foreign key, as in SQLite:
      -- deletePlugin removes a plugin's KV in the same transaction.
      CREATE TABLE plughost_kv (
        plugin_id  text NOT NULL,
        key        bytea NOT NULL,
        value      bytea NOT NULL,
        expires_at bigint,
        PRIMARY KEY (plugin_id, key)
      );
      CREATE INDEX plughost_kv_expires_at ON plughost_kv (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    description: 'bundles stored by sha256, in chunks',
    sql: `
      -- A bundle row is committed in the same transaction as all its chunks,
      -- after their SHA-256 was checked.
      CREATE TABLE plughost_bundles (
        sha256    text PRIMARY KEY,
        size      bigint NOT NULL,
        chunks    integer NOT NULL,
        signature bytea,
        stored_at bigint NOT NULL
      );
      -- Fixed-size chunks (1 MiB) so no row or statement holds a whole bundle.
      CREATE TABLE plughost_bundle_chunks (
        sha256 text NOT NULL REFERENCES plughost_bundles (sha256) ON DELETE CASCADE,
        seq    integer NOT NULL,
        data   bytea NOT NULL,
        PRIMARY KEY (sha256, seq)
      );
    `,
  },
  {
    version: 3,
    description: 'nodes and per-node observed plugin state',
    sql: `
      -- Times in ms on the database's clock, so nodes with different clocks compare heartbeats fairly.
      CREATE TABLE plughost_nodes (
        node_id      text PRIMARY KEY,
        version      text NOT NULL,
        started_at   bigint NOT NULL,
        heartbeat_at bigint NOT NULL
      );
      -- No foreign keys, as for KV: deletePlugin removes a plugin's rows in its transaction.
      CREATE TABLE plughost_observed (
        plugin_id  text NOT NULL,
        node_id    text NOT NULL,
        state      text NOT NULL,
        last_error text,
        pid        integer,
        restarts   integer NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (plugin_id, node_id)
      );
    `,
  },
  {
    // Version 4: 2 and 3 were taken by work landing beside this; gaps are skipped harmlessly.
    version: 4,
    description: 'cluster locks (leases with fencing tokens) and job tickets',
    sql: `
      -- Kept after release and expiry, so the fencing token never goes back.
      CREATE TABLE plughost_locks (
        plugin_id  text NOT NULL,
        name       text NOT NULL,
        token      bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (plugin_id, name)
      );
      CREATE TABLE plughost_job_tickets (
        plugin_id  text NOT NULL,
        name       text NOT NULL,
        period     bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (plugin_id, name, period)
      );
      CREATE INDEX plughost_job_tickets_expires_at ON plughost_job_tickets (expires_at);
    `,
  },
  {
    version: 5,
    description: 'the cluster feed (changes, events and state changes in commit order); plugin generations',
    sql: `
      -- One counter row: a writer takes it inside its transaction and holds it to commit, so
      -- sequence numbers become visible in order and a reader past N has seen every row up to N.
      CREATE TABLE plughost_feed_seq (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        seq bigint NOT NULL
      );
      INSERT INTO plughost_feed_seq (one, seq) VALUES (true, 0);
      -- kind: 'change' (a plugin's desired record changed), 'event' (a published event,
      -- payload = its JSON), 'state' (a node's plugin changed state, payload = its JSON).
      -- Payloads live here, not in the NOTIFY (which carries only seq), so they may exceed 8000 bytes.
      CREATE TABLE plughost_feed (
        seq       bigint PRIMARY KEY,
        kind      text NOT NULL,
        plugin_id text NOT NULL,
        origin    text NOT NULL,
        payload   bytea,
        at        bigint NOT NULL
      );
      CREATE INDEX plughost_feed_at ON plughost_feed (at);
      -- The desired generation of each plugin, and the generation each node's state answers.
      ALTER TABLE plughost_plugins ADD COLUMN generation bigint NOT NULL DEFAULT 1;
      ALTER TABLE plughost_observed ADD COLUMN generation bigint NOT NULL DEFAULT 0;
    `,
  },
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;
