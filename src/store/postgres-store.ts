/**
 * The Store on PostgreSQL, through node-postgres with a pool. Every method
 * resolves after its statement has committed (each is one autocommitted
 * statement or one transaction), so "acknowledged" means "committed" with the
 * server's synchronous_commit.
 *
 * KV keys are stored as bytea (their UTF-8 bytes), so ordering, prefix ranges
 * and keys holding U+0000 behave exactly as in SQLite's BINARY collation.
 * Expiry is judged by the database's clock, so hosts whose clocks disagree
 * still agree on what is live.
 *
 * Tables are prefixed `plughost_` so they can live in an application's own
 * database.
 */
import type { Readable } from 'node:stream';
import { Client, Pool, type PoolClient, type QueryResult } from 'pg';
import { Errors, PlughostError } from '../errors';
import type { Manifest, PluginConfig } from '../manifest';
import { checkClaimable, staleReason } from '../protocol/cluster-contract';
import { MAX_KV_TTL_MS } from '../protocol/limits';
import { checkSha256, verifyingStream, writeChunks } from './bundle-chunks';
import { KvBatch, type BatchHost } from './postgres-kv-batch';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from './postgres-migrations';
import {
  definedFields, type JobClaimResult, type KvPage, type KvSetOptions, type LockGrant, type LockLease, type PluginPatch, type PluginRecord,
  type PluginState, type Store, type StoredBundle, type NodeHeartbeat, type NodeRecord, type ObservedRecord, type ObservedRow,
  type ObservedState, toObserved, type NewPluginRecord, isDesiredChange, type ClusterFeed, type FeedKind, type FeedRow, type StopWatching,
} from './store';
import { checkPageLimit, type KvEntry, type StoreContents } from './store';

export interface PostgresStoreOptions {
  /** A `postgres://` or `postgresql://` URL. */
  url: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** How often expired KV values are deleted; 0 turns the timer off. Default 60 s. */
  sweepIntervalMs?: number;
  /** Time to wait for a connection from the server. Default 10 s. */
  connectTimeoutMs?: number;
}

/** Keys for pg_advisory locks, fixed so every plughost agrees on them. */
const MIGRATION_LOCK = 0x706c7567; // "plug"
const SWEEP_BATCH = 1_000;
/** The NOTIFY channel of the cluster feed; the payload is the new row's sequence number. */
export const FEED_CHANNEL = 'plughost_feed';
/** application_name of each host's LISTEN session, so an operator (or a test) can find it. */
export const LISTEN_APPLICATION_NAME = 'plughost-listen';
/** Feed rows older than this are deleted by the sweep: hosts read the feed every few seconds and reread everything after an outage. */
export const FEED_RETENTION_MS = 10 * 60_000;
/** The LISTEN session reconnects after 100 ms, doubling up to this. */
const LISTEN_BACKOFF_MAX_MS = 5_000;

/** The database's clock in ms since the epoch. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const LIVE = `(expires_at IS NULL OR expires_at > ${NOW_MS})`;

/**
 * A statement the server parses and plans once per pooled connection and
 * then only binds and runs: for the KV calls a plugin makes at a high rate.
 * An unnamed statement is parsed and planned on every call, which costs
 * more than the work of a one-row KV read (on loopback: about 150 µs
 * against 35 µs, the latter about a SELECT 1). The names are plughost's own
 * in each session.
 */
interface Prepared {
  name: string;
  text: string;
}

const EXPIRY = `CASE WHEN $4::bigint IS NULL THEN NULL ELSE ${NOW_MS} + $4::bigint END`;
const KV = {
  get: { name: 'plughost_kv_get', text: `SELECT value FROM plughost_kv WHERE plugin_id = $1 AND key = $2 AND ${LIVE}` },
  set: {
    name: 'plughost_kv_set',
    text: `INSERT INTO plughost_kv (plugin_id, key, value, expires_at) VALUES ($1, $2, $3, ${EXPIRY})
      ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  },
  // Insert, or take over a row whose value has expired; a live row stays. One
  // statement, so racing writers never see a duplicate-key error: one wins.
  setIfAbsent: {
    name: 'plughost_kv_set_if_absent',
    text: `INSERT INTO plughost_kv (plugin_id, key, value, expires_at) VALUES ($1, $2, $3, ${EXPIRY})
      ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
      WHERE plughost_kv.expires_at IS NOT NULL AND plughost_kv.expires_at <= ${NOW_MS}`,
  },
  // A concurrent writer's row lock makes this wait, then re-check the value it compares.
  setIfEqual: {
    name: 'plughost_kv_set_if_equal',
    text: `UPDATE plughost_kv SET value = $3, expires_at = ${EXPIRY} WHERE plugin_id = $1 AND key = $2 AND value = $5 AND ${LIVE}`,
  },
  delete: { name: 'plughost_kv_delete', text: `DELETE FROM plughost_kv WHERE plugin_id = $1 AND key = $2 RETURNING ${LIVE} AS live` },
} satisfies Record<string, Prepared>;

interface PluginRow {
  id: string;
  manifest: string;
  version: string;
  enabled: boolean;
  state: string;
  last_error: string | null;
  config: string;
  bundle_sha256: string;
  installed_at: string;
  updated_at: string;
  generation: string;
}

export class PostgresStore implements Store {
  /** The URL without its password, for messages and logs. */
  readonly where: string;
  private readonly pool: Pool;
  readonly feed: ClusterFeed;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Inside batch(): the KV calls made so far, committed together when batch's work returns. */
  private open: KvBatch | undefined;
  private readonly batchHost: BatchHost;

  /**
   * Connects and migrates under an advisory lock, so hosts starting together
   * never race. Any number of hosts may share the database: each converges on
   * what the others write (src/runtime/reconciler.ts).
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const where = redact(options.url);
    if (!/^postgres(ql)?:\/\//.test(options.url)) {
      throw Errors.STORE_BAD_ARGUMENT('database', where, 'a postgres:// or postgresql:// URL');
    }
    const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    if (!Number.isFinite(sweepIntervalMs) || sweepIntervalMs < 0) {
      throw Errors.STORE_BAD_ARGUMENT('sweepIntervalMs', sweepIntervalMs, 'a number of milliseconds, 0 or more (0 turns sweeping off)');
    }
    const pool = new Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: 'plughost',
    });
    // An idle client's connection can drop (server restart); the pool replaces it on next use.
    pool.on('error', () => undefined);
    try {
      await migrate(pool, where);
      return new PostgresStore(pool, where, sweepIntervalMs, { url: options.url, connectTimeoutMs: options.connectTimeoutMs ?? 10_000 });
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw asStoreError(err, where);
    }
  }

  private constructor(pool: Pool, where: string, sweepIntervalMs: number, listen: ListenOptions) {
    this.pool = pool;
    this.where = where;
    this.batchHost = { pool, where, closed: () => this.closed, asStoreError: (err) => asStoreError(err, where) };
    this.feed = {
      head: () => this.feedHead(),
      read: (after, limit) => this.feedRead(after, limit),
      append: (kind, pluginId, origin, payload) => this.query('appendFeed', APPEND_FEED, [kind, pluginId, origin, payload]).then(({ rows }) => Number(rows[0].seq)),
      watch: (onWake, onReconnect) => this.watch(listen, onWake, onReconnect),
    };
    if (sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => void this.sweep().catch(() => undefined), sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  async listPlugins(): Promise<PluginRecord[]> {
    const { rows } = await this.query<PluginRow>('listPlugins', 'SELECT * FROM plughost_plugins ORDER BY id COLLATE "C"');
    return rows.map(toRecord);
  }

  async getPlugin(id: string): Promise<PluginRecord | undefined> {
    const { rows } = await this.query<PluginRow>('getPlugin', 'SELECT * FROM plughost_plugins WHERE id = $1', [id]);
    return rows[0] && toRecord(rows[0]);
  }

  async putPlugin(record: NewPluginRecord): Promise<number> {
    return this.transaction('putPlugin', async (c) => {
      const { rows } = await c.query<{ generation: string }>(UPSERT_PLUGIN, toParams(record));
      await appendChange(c, record.id);
      return Number(rows[0].generation);
    });
  }

  async updatePlugin(id: string, patch: PluginPatch): Promise<PluginRecord> {
    return this.transaction('updatePlugin', async (c) => {
      const { rows } = await c.query<PluginRow>('SELECT * FROM plughost_plugins WHERE id = $1 FOR UPDATE', [id]);
      if (!rows[0]) throw Errors.STORE_UNKNOWN_PLUGIN(id);
      const stored = toRecord(rows[0]);
      const desired = isDesiredChange(patch);
      const record: PluginRecord = { ...stored, ...definedFields(patch), updatedAt: Date.now(), generation: stored.generation + (desired ? 1 : 0) };
      await c.query(UPDATE_PLUGIN, [...toParams(record), record.generation]);
      // Only the operator's wishes concern the other hosts.
      if (desired) await appendChange(c, id);
      return record;
    });
  }

  async deletePlugin(id: string): Promise<void> {
    await this.transaction('deletePlugin', async (c) => {
      await c.query('DELETE FROM plughost_kv WHERE plugin_id = $1', [id]);
      await c.query('DELETE FROM plughost_observed WHERE plugin_id = $1', [id]);
      const { rowCount } = await c.query('DELETE FROM plughost_plugins WHERE id = $1', [id]);
      if (rowCount) await appendChange(c, id);
    });
  }

  async heartbeat(node: NodeHeartbeat): Promise<void> {
    await this.query('heartbeat',
      `INSERT INTO plughost_nodes (node_id, version, started_at, heartbeat_at) VALUES ($1, $2, $3, ${NOW_MS})
       ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
      [node.nodeId, node.version, node.startedAt]);
  }

  async listNodes(): Promise<NodeRecord[]> {
    const { rows } = await this.query<{ node_id: string; version: string; started_at: string; heartbeat_at: string; age: string }>('listNodes',
      `SELECT node_id, version, started_at, heartbeat_at, greatest(0, ${NOW_MS} - heartbeat_at) AS age
       FROM plughost_nodes ORDER BY node_id COLLATE "C"`);
    return rows.map((r) => ({
      nodeId: r.node_id,
      version: r.version,
      startedAt: Number(r.started_at),
      heartbeatAt: Number(r.heartbeat_at),
      heartbeatAgeMs: Number(r.age),
    }));
  }

  async putObserved(o: ObservedState): Promise<void> {
    await this.query('putObserved',
      // Only for a plugin that still has a record: a late write never brings back the rows of a removed one.
      `INSERT INTO plughost_observed (plugin_id, node_id, state, last_error, pid, restarts, generation, updated_at)
       SELECT $1, $2, $3, $4, $5, $6, $7, ${NOW_MS} WHERE EXISTS (SELECT 1 FROM plughost_plugins WHERE id = $1)
       ON CONFLICT (plugin_id, node_id) DO UPDATE SET state = excluded.state, last_error = excluded.last_error,
         pid = excluded.pid, restarts = excluded.restarts, generation = excluded.generation, updated_at = excluded.updated_at`,
      [o.pluginId, o.nodeId, o.state, o.lastError, o.pid, o.restarts, o.generation]);
  }

  async listObserved(pluginId: string): Promise<ObservedRecord[]> {
    const { rows } = await this.query<ObservedRow>('listObserved', 'SELECT * FROM plughost_observed WHERE plugin_id = $1 ORDER BY node_id COLLATE "C"', [pluginId]);
    return rows.map(toObserved);
  }

  /**
   * The KV calls `work` makes (but kvList) share one transaction on one
   * pooled connection, begun once `work` has returned and committed after
   * its last call; each call's promise settles after that COMMIT, and a call
   * the server refuses fails alone (src/store/postgres-kv-batch.ts). Other
   * methods called inside run on their own connections, as always.
   */
  batch(work: () => void): void {
    if (this.open) return work();
    const batch = new KvBatch(this.batchHost);
    this.open = batch;
    try {
      work();
    } finally {
      this.open = undefined;
      void batch.commit();
    }
  }

  async kvGet(pluginId: string, key: string): Promise<Buffer | undefined> {
    const { rows } = await this.kvQuery<{ value: Buffer }>('kvGet', KV.get, [pluginId, keyBytes(key)]);
    return rows[0]?.value;
  }

  async kvSet(pluginId: string, key: string, value: Buffer, options: KvSetOptions = {}): Promise<boolean> {
    const ttl = ttlOf(options.ttlMs);
    const params = [pluginId, keyBytes(key), value, ttl];
    if (!options.compare) {
      await this.kvQuery('kvSet', KV.set, params);
      return true;
    }
    if (options.compare.expected === null) return (await this.kvQuery('kvSet', KV.setIfAbsent, params)).rowCount === 1;
    return (await this.kvQuery('kvSet', KV.setIfEqual, [...params, options.compare.expected])).rowCount === 1;
  }

  async kvDelete(pluginId: string, key: string): Promise<boolean> {
    const { rows } = await this.kvQuery<{ live: boolean }>('kvDelete', KV.delete, [pluginId, keyBytes(key)]);
    return rows[0]?.live === true;
  }

  async kvList(pluginId: string, prefix: string, limit: number, after?: string): Promise<KvPage> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw Errors.STORE_BAD_ARGUMENT('limit', limit, 'a whole number of keys, 1 or more');
    }
    const from = keyBytes(prefix);
    const past = after === undefined ? undefined : keyBytes(after);
    const startAfter = past !== undefined && Buffer.compare(past, from) >= 0;
    const { rows } = await this.query<{ key: Buffer }>('kvList',
      `SELECT key FROM plughost_kv
       WHERE plugin_id = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3) AND ($4::bytea IS NULL OR key <> $4) AND ${LIVE}
       ORDER BY key LIMIT $5`,
      [pluginId, startAfter ? past : from, bytesUpperBound(from), startAfter ? past : null, limit + 1]);
    const keys = rows.slice(0, limit).map((r) => r.key.toString('utf8'));
    return { keys, next: rows.length > limit ? keys[keys.length - 1] : null };
  }

  async kvDeleteAll(pluginId: string): Promise<number> {
    const { rows } = await this.kvQuery<{ live: string }>('kvDeleteAll',
      `WITH gone AS (DELETE FROM plughost_kv WHERE plugin_id = $1 RETURNING ${LIVE} AS live)
       SELECT count(*) FILTER (WHERE live) AS live FROM gone`, [pluginId]);
    return Number(rows[0].live);
  }

  async sweepExpired(): Promise<number> {
    return this.sweep();
  }

  /**
   * One transaction, one INSERT per chunk as the bytes arrive, so memory
   * holds one chunk. The bundle row is inserted first: a second writer of the
   * same bundle waits on it, then finds it there and only renews its
   * `stored_at`, which keeps it from garbage collection for the grace period.
   */
  async putBundle(sha256: string, bytes: Buffer | Readable, signature: Buffer | null = null): Promise<void> {
    checkSha256(sha256);
    try {
      await this.transaction('putBundle', async (c) => {
        const { rows } = await c.query<{ inserted: boolean }>(
          `INSERT INTO plughost_bundles (sha256, size, chunks, signature, stored_at) VALUES ($1, 0, 0, $2, ${NOW_MS})
           ON CONFLICT (sha256) DO UPDATE SET stored_at = excluded.stored_at RETURNING (xmax = 0) AS inserted`, [sha256, signature]);
        if (!rows[0].inserted) {
          if (signature) await c.query('UPDATE plughost_bundles SET signature = $2 WHERE sha256 = $1 AND signature IS NULL', [sha256, signature]);
          return;
        }
        const { size, chunks } = await writeChunks(sha256, bytes, (seq, chunk) =>
          c.query('INSERT INTO plughost_bundle_chunks (sha256, seq, data) VALUES ($1, $2, $3)', [sha256, seq, chunk]));
        await c.query('UPDATE plughost_bundles SET size = $2, chunks = $3 WHERE sha256 = $1', [sha256, size, chunks]);
      });
    } finally {
      if (!Buffer.isBuffer(bytes)) bytes.destroy();
    }
  }

  async getBundle(sha256: string): Promise<StoredBundle | undefined> {
    const { rows } = await this.query<{ size: string; chunks: number; signature: Buffer | null }>('getBundle',
      'SELECT size, chunks, signature FROM plughost_bundles WHERE sha256 = $1', [sha256]);
    if (!rows[0]) return undefined;
    const size = Number(rows[0].size);
    const stream = verifyingStream(sha256, size, rows[0].chunks, async (seq) => {
      const chunk = await this.query<{ data: Buffer }>('getBundle',
        'SELECT data FROM plughost_bundle_chunks WHERE sha256 = $1 AND seq = $2', [sha256, seq]);
      return chunk.rows[0]?.data;
    });
    return { sha256, size, signature: rows[0].signature, stream };
  }

  async deleteUnreferencedBundles(keep: Iterable<string> = [], graceMs = 0): Promise<number> {
    // Chunks go with their bundle row (ON DELETE CASCADE).
    const { rowCount } = await this.query('deleteUnreferencedBundles',
      `DELETE FROM plughost_bundles WHERE sha256 NOT IN (SELECT bundle_sha256 FROM plughost_plugins)
         AND NOT (sha256 = ANY ($1::text[])) AND stored_at <= ${NOW_MS} - $2::bigint`, [[...keep], Math.max(0, Math.ceil(graceMs))]);
    return rowCount ?? 0;
  }

  async clusterNow(): Promise<number> {
    const { rows } = await this.query<{ now: string }>('clusterNow', `SELECT ${NOW_MS} AS now`);
    return Number(rows[0].now);
  }

  async lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant> {
    // One statement with one reading of the clock: racing acquirers queue on the row (or on the
    // insert of a new name), and each re-checks the expiry it finds there, so exactly one takes a free lock.
    const { rows } = await this.query<{ token: string; expires_at: string; now: string }>('lockAcquire',
      `WITH t AS (SELECT ${NOW_MS} AS now)
       INSERT INTO plughost_locks (plugin_id, name, token, expires_at) SELECT $1, $2, 1, t.now + $3::bigint FROM t
       ON CONFLICT (plugin_id, name) DO UPDATE SET token = plughost_locks.token + 1, expires_at = excluded.expires_at
       WHERE plughost_locks.expires_at <= (SELECT now FROM t)
       RETURNING token, expires_at, (SELECT now FROM t) AS now`, [pluginId, name, ttlMs]);
    if (rows[0]) return { acquired: true, token: Number(rows[0].token), expiresAt: Number(rows[0].expires_at), nowMs: Number(rows[0].now) };
    const { row, now } = await this.lockRow('lockAcquire', pluginId, name);
    return { acquired: false, token: 0, expiresAt: row?.expiresAt ?? now, nowMs: now };
  }

  async lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease> {
    const { rows } = await this.query<{ expires_at: string; now: string }>('lockRefresh',
      `WITH t AS (SELECT ${NOW_MS} AS now)
       UPDATE plughost_locks SET expires_at = t.now + $4::bigint FROM t
       WHERE plugin_id = $1 AND name = $2 AND token = $3 AND expires_at > t.now
       RETURNING expires_at, t.now AS now`, [pluginId, name, token, ttlMs]);
    if (rows[0]) return { expiresAt: Number(rows[0].expires_at), nowMs: Number(rows[0].now) };
    const { row, now } = await this.lockRow('lockRefresh', pluginId, name);
    throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(row, token, now));
  }

  async lockRelease(pluginId: string, name: string, token: number): Promise<void> {
    // expires_at 0 frees the lock and keeps the row, so the next token is still larger.
    const { rowCount } = await this.query('lockRelease',
      'UPDATE plughost_locks SET expires_at = 0 WHERE plugin_id = $1 AND name = $2 AND token = $3', [pluginId, name, token]);
    if (rowCount === 1) return;
    const { row, now } = await this.lockRow('lockRelease', pluginId, name);
    throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(row, token, now));
  }

  async jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult> {
    // The window check and the insert share one reading of the database clock; ON CONFLICT DO
    // NOTHING lets exactly one of any number of racing claims insert the ticket.
    const { rows } = await this.query<{ now: string; claimed: boolean }>('jobClaim',
      `WITH t AS (SELECT ${NOW_MS} AS now),
       ins AS (
         INSERT INTO plughost_job_tickets (plugin_id, name, period, expires_at)
         SELECT $1, $2, $3::bigint, GREATEST(t.now + $5::bigint, ($3::bigint + 2) * $4::bigint) FROM t
         WHERE $3::bigint BETWEEN t.now / $4::bigint - 1 AND t.now / $4::bigint + 1
         ON CONFLICT DO NOTHING RETURNING 1)
       SELECT t.now, EXISTS (SELECT 1 FROM ins) AS claimed FROM t`, [pluginId, name, period, everyMs, ttlMs]);
    const nowMs = Number(rows[0].now);
    checkClaimable(pluginId, name, period, everyMs, nowMs);
    return { claimed: rows[0].claimed, nowMs };
  }

  // ---- migration (plughost migrate) ----

  async kvEntries(pluginId: string, after: string | undefined, limit: number): Promise<KvEntry[]> {
    checkPageLimit(limit);
    const past = after === undefined ? null : keyBytes(after);
    // One reading of the clock decides both what is live and how long it has left.
    const { rows } = await this.query<{ key: Buffer; value: Buffer; ttl: string | null }>('kvEntries',
      `WITH t AS (SELECT ${NOW_MS} AS now)
       SELECT key, value, expires_at - t.now AS ttl FROM plughost_kv, t
       WHERE plugin_id = $1 AND key >= $2 AND ($3::bytea IS NULL OR key <> $3) AND (expires_at IS NULL OR expires_at > t.now)
       ORDER BY key LIMIT $4`,
      [pluginId, past ?? Buffer.alloc(0), past, limit]);
    return rows.map((r) => ({ key: r.key.toString('utf8'), value: r.value, ttlMs: r.ttl === null ? null : Number(r.ttl) }));
  }

  async listBundles(): Promise<string[]> {
    const { rows } = await this.query<{ sha256: string }>('listBundles', 'SELECT sha256 FROM plughost_bundles ORDER BY sha256 COLLATE "C"');
    return rows.map((r) => r.sha256);
  }

  async contentCounts(): Promise<StoreContents> {
    const { rows } = await this.query<{ plugins: string; kv: string; bundles: string }>('contentCounts',
      `SELECT (SELECT count(*) FROM plughost_plugins) AS plugins, (SELECT count(*) FROM plughost_kv WHERE ${LIVE}) AS kv,
         (SELECT count(*) FROM plughost_bundles) AS bundles`);
    return { plugins: Number(rows[0].plugins), kv: Number(rows[0].kv), bundles: Number(rows[0].bundles) };
  }

  /** Stops the sweep timer and closes the pool. A second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.pool.end();
  }

  private async feedHead(): Promise<number> {
    const { rows } = await this.query<{ seq: string }>('feedHead', 'SELECT seq FROM plughost_feed_seq');
    return Number(rows[0].seq);
  }

  private async feedRead(after: number, limit: number): Promise<FeedRow[]> {
    const { rows } = await this.query<{ seq: string; kind: FeedKind; plugin_id: string; origin: string; payload: Buffer | null }>('readFeed',
      'SELECT seq, kind, plugin_id, origin, payload FROM plughost_feed WHERE seq > $1 ORDER BY seq LIMIT $2', [after, limit]);
    return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, pluginId: r.plugin_id, origin: r.origin, payload: r.payload }));
  }

  /**
   * A session of its own that LISTENs on the feed channel, reconnecting after
   * a loss with a bounded backoff; never part of the pool, so it cannot be
   * handed to a query or starve one.
   */
  private watch(options: ListenOptions, onWake: () => void, onReconnect: () => void): StopWatching {
    let stopped = false;
    let client: Client | undefined;
    let timer: NodeJS.Timeout | undefined;
    let delay = 100;
    let connectedOnce = false;
    let connecting: Promise<void> = Promise.resolve();
    const retry = () => {
      if (stopped) return;
      timer = setTimeout(() => { connecting = connect(); }, delay);
      timer.unref();
      delay = Math.min(delay * 2, LISTEN_BACKOFF_MAX_MS);
    };
    const connect = async () => {
      const c = new Client({ connectionString: options.url, application_name: LISTEN_APPLICATION_NAME, connectionTimeoutMillis: options.connectTimeoutMs, keepAlive: true });
      // A lost session ends with 'end' (after 'error' when it broke): reconnect from there.
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.query(`LISTEN ${FEED_CHANNEL}`);
      } catch {
        await c.end().catch(() => undefined);
        retry();
        return;
      }
      if (stopped) {
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
      delay = 100;
      c.on('notification', () => onWake());
      c.once('end', () => {
        if (client === c) client = undefined;
        retry();
      });
      if (connectedOnce) onReconnect();
      else onWake();
      connectedOnce = true;
    };
    connecting = connect();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await connecting;
      await client?.end().catch(() => undefined);
    };
  }

  private async lockRow(method: string, pluginId: string, name: string): Promise<{ row: { token: number; expiresAt: number } | undefined; now: number }> {
    const { rows } = await this.query<{ token: string | null; expires_at: string | null; now: string }>(method,
      `SELECT l.token, l.expires_at, ${NOW_MS} AS now FROM (SELECT 1) one
       LEFT JOIN plughost_locks l ON l.plugin_id = $1 AND l.name = $2`, [pluginId, name]);
    const r = rows[0];
    const row = r.token === null ? undefined : { token: Number(r.token), expiresAt: Number(r.expires_at) };
    return { row, now: Number(r.now) };
  }

  private async sweep(): Promise<number> {
    await this.query('sweepExpired', `DELETE FROM plughost_feed WHERE at < ${NOW_MS} - $1::bigint`, [FEED_RETENTION_MS]);
    const tickets = await this.query('sweepExpired', `DELETE FROM plughost_job_tickets WHERE expires_at <= ${NOW_MS}`);
    let total = tickets.rowCount ?? 0;
    for (;;) {
      // Batches keep each delete short, so a large sweep never holds many row locks for long.
      const { rowCount } = await this.query('sweepExpired',
        `DELETE FROM plughost_kv WHERE ctid IN (SELECT ctid FROM plughost_kv WHERE expires_at <= ${NOW_MS} LIMIT ${SWEEP_BATCH})`);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < SWEEP_BATCH) return total;
    }
  }

  /** A KV statement: inside batch() it joins the open batch, else it runs alone as query() does. */
  private kvQuery<R extends object = Record<string, unknown>>(method: string, sql: string | Prepared, params: unknown[]): Promise<QueryResult<R>> {
    const batch = this.open;
    if (!batch || this.closed) return this.query<R>(method, sql, params);
    const statement = typeof sql === 'string' ? { text: sql, values: params } : { ...sql, values: params };
    return batch.add(method, statement, method !== 'kvGet') as Promise<QueryResult<R>>;
  }

  private async query<R extends object = Record<string, unknown>>(method: string, sql: string | Prepared, params: unknown[] = []) {
    if (this.closed) throw Errors.STORE_CLOSED(this.where, method);
    try {
      return await (typeof sql === 'string' ? this.pool.query<R>(sql, params) : this.pool.query<R>({ ...sql, values: params }));
    } catch (err) {
      throw asStoreError(err, this.where);
    }
  }

  private async transaction<T>(method: string, work: (c: PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw Errors.STORE_CLOSED(this.where, method);
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw asStoreError(err, this.where);
    }
    let broken = false;
    // The pool listens for 'error' only on idle clients: on a checked-out one a session the server
    // ends (restart, pg_terminate_backend) would be an unhandled 'error' event and end the process.
    const lost = () => { broken = true; };
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => { broken = true; });
      throw asStoreError(err, this.where);
    } finally {
      client.off('error', lost);
      client.release(broken);
    }
  }
}

const UPSERT_PLUGIN = `
  INSERT INTO plughost_plugins (id, manifest, version, enabled, state, last_error, config, bundle_sha256, installed_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (id) DO UPDATE SET manifest = excluded.manifest, version = excluded.version, enabled = excluded.enabled,
    state = excluded.state, last_error = excluded.last_error, config = excluded.config,
    bundle_sha256 = excluded.bundle_sha256, installed_at = excluded.installed_at, updated_at = excluded.updated_at,
    generation = plughost_plugins.generation + 1
  RETURNING generation`;

const UPDATE_PLUGIN = `
  UPDATE plughost_plugins SET manifest = $2, version = $3, enabled = $4, state = $5, last_error = $6, config = $7,
    bundle_sha256 = $8, installed_at = $9, updated_at = $10, generation = $11
  WHERE id = $1`;

interface ListenOptions {
  url: string;
  connectTimeoutMs: number;
}

/**
 * Appends a feed row and notifies, in one statement. The counter row's lock is
 * held to the end of the caller's transaction, so rows commit in seq order.
 */
const APPEND_FEED = `
  WITH s AS (UPDATE plughost_feed_seq SET seq = seq + 1 RETURNING seq),
  ins AS (INSERT INTO plughost_feed (seq, kind, plugin_id, origin, payload, at)
          SELECT s.seq, $1, $2, $3, $4, ${NOW_MS} FROM s RETURNING seq)
  SELECT seq, pg_notify('${FEED_CHANNEL}', seq::text) FROM ins`;

/** A 'change' row for plugin `id`, in the caller's transaction: every host converges it once that commits. */
async function appendChange(c: PoolClient, id: string): Promise<void> {
  await c.query(APPEND_FEED, ['change', id, '', null]);
}

/** Applies what the database lacks, one transaction under a transaction-scoped advisory lock. */
async function migrate(pool: Pool, where: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS plughost_schema (version integer NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM plughost_schema');
    const found = rows[0]?.version ?? 0;
    if (found > PG_SCHEMA_VERSION) throw Errors.STORE_VERSION_TOO_NEW(where, found, PG_SCHEMA_VERSION);
    for (const m of PG_MIGRATIONS.filter((x) => x.version > found)) {
      await client.query(m.sql);
      await client.query('INSERT INTO plughost_schema (version) VALUES ($1)', [m.version]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Our own errors pass through; anything from the driver or server becomes
 * STORE_UNAVAILABLE, naming the database without its password.
 */
function asStoreError(err: unknown, where: string): Error {
  if (err instanceof PlughostError) return err;
  const e = err as Error & { code?: string };
  return Errors.STORE_UNAVAILABLE(where, e.code ? `${e.message} (${e.code})` : e.message);
}

/** The URL for messages: password (in the user part or a query parameter) masked; other schemes not echoed. */
export function redact(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(an unparsable URL)';
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) return `(a URL with scheme ${u.protocol})`;
  if (u.password) u.password = '***';
  for (const k of [...u.searchParams.keys()]) if (/pass/i.test(k)) u.searchParams.set(k, '***');
  return u.toString();
}

function toParams(r: NewPluginRecord): unknown[] {
  return [r.id, JSON.stringify(r.manifest), r.version, r.enabled, r.state, r.lastError, JSON.stringify(r.config),
    r.bundleSha256, r.installedAt, r.updatedAt];
}

function toRecord(row: PluginRow): PluginRecord {
  return {
    id: row.id,
    manifest: JSON.parse(row.manifest) as Manifest,
    version: row.version,
    enabled: row.enabled,
    state: row.state as PluginState,
    lastError: row.last_error,
    config: JSON.parse(row.config) as PluginConfig,
    bundleSha256: row.bundle_sha256,
    installedAt: Number(row.installed_at),
    updatedAt: Number(row.updated_at),
    generation: Number(row.generation),
  };
}

/** A key's UTF-8 bytes (lone surrogates become U+FFFD, as on their way into SQLite). */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

function ttlOf(ttlMs: number | undefined): number | null {
  if (ttlMs === undefined || ttlMs === 0) return null;
  if (!Number.isFinite(ttlMs) || ttlMs < 0) {
    throw Errors.STORE_BAD_ARGUMENT('ttlMs', ttlMs, 'milliseconds to live, more than 0 (0 or absent: no expiry)');
  }
  // The expiry is a bigint of ms on the database's clock; refuse what would overflow it.
  if (ttlMs > MAX_KV_TTL_MS) throw Errors.STORE_BAD_ARGUMENT('ttlMs', ttlMs, `at most ${MAX_KV_TTL_MS} ms`);
  return Math.ceil(ttlMs);
}

/**
 * The least byte string above every string that starts with `prefix`, or
 * null when there is none (empty, or all 0xFF): drop trailing 0xFF bytes and
 * increment the last. The key index then serves the range [prefix, bound).
 */
function bytesUpperBound(prefix: Buffer): Buffer | null {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const bound = Buffer.from(prefix.subarray(0, end));
  bound[end - 1] += 1;
  return bound;
}
