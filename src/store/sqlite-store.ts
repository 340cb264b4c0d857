/**
 * The embedded Store: one SQLite file in WAL mode through better-sqlite3.
 * better-sqlite3 is synchronous, so every method does its work before it
 * returns and hands back an already-settled promise; "acknowledged" (the
 * promise resolved) therefore means "committed". docs/durability.md says what
 * a commit survives in each durability mode.
 */
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { Errors, PlughostError } from '../errors';
import type { Manifest, PluginConfig } from '../manifest';
import { checkClaimable, staleReason, ticketExpiry } from '../protocol/cluster-contract';
import { MAX_KV_TTL_MS } from '../protocol/limits';
import { checkSha256, verifyingStream, writeChunks } from './bundle-chunks';
import { migrate, schemaVersion, SCHEMA_VERSION } from './migrations';
import {
  definedFields, type JobClaimResult, type KvPage, type KvSetOptions, type LockGrant, type LockLease, type PluginPatch, type PluginRecord,
  type PluginState, type NewPluginRecord, isDesiredChange, type Store, type StoredBundle, type NodeHeartbeat, type NodeRecord, type ObservedRecord, type ObservedRow,
  type ObservedState, toObserved,
} from './store';
import { checkPageLimit, type KvEntry, type StoreContents } from './store';

/**
 * 'process-crash': a commit survives the host being killed (SIGKILL, OOM) but
 * may be lost on power loss or an OS crash (synchronous=NORMAL).
 * 'power-loss': every commit is fsynced before it returns (synchronous=FULL).
 */
export type Durability = 'process-crash' | 'power-loss';

export interface SqliteStoreOptions {
  /** The database file; SQLite keeps `<file>-wal` and `<file>-shm` beside it. */
  file: string;
  /** Default 'process-crash'. */
  durability?: Durability;
  /** How often expired KV values are deleted; 0 turns the timer off. Default 60 s. */
  sweepIntervalMs?: number;
  /** The clock for expiry and updatedAt, ms since the epoch. Tests move it. */
  now?: () => number;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** How long a write waits for another connection's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000;
/** Rows per sweep transaction, so a large sweep never holds the write lock for long. */
const SWEEP_BATCH = 1_000;

const SYNCHRONOUS: Record<Durability, string> = { 'process-crash': 'NORMAL', 'power-loss': 'FULL' };

/**
 * The open transaction of a batch: the KV calls made in it settle when it
 * commits (or fail with it when SQLite rolled it back).
 */
class BatchTransaction {
  readonly committed: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;

  constructor() {
    this.committed = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Every call that joined holds its own promise off this one; a transaction whose writes all failed has no other listener.
    this.committed.catch(() => undefined);
  }
}

interface PluginRow {
  id: string;
  manifest: string;
  version: string;
  enabled: number;
  state: string;
  last_error: string | null;
  config: string;
  bundle_sha256: string;
  installed_at: number;
  updated_at: number;
  generation: number;
}

interface NodeRow {
  node_id: string;
  version: string;
  started_at: number;
  heartbeat_at: number;
}

/** A value is live while it has no expiry or its expiry is still ahead of `now`. */
const LIVE = '(expires_at IS NULL OR expires_at > @now)';

function prepareStatements(db: Database.Database) {
  return {
    listPlugins: db.prepare<[], PluginRow>('SELECT * FROM plugins ORDER BY id'),
    getPlugin: db.prepare<[string], PluginRow>('SELECT * FROM plugins WHERE id = ?'),
    putPlugin: db.prepare<Omit<PluginRow, 'generation'>, { generation: number }>(
      `INSERT INTO plugins (id, manifest, version, enabled, state, last_error, config, bundle_sha256, installed_at, updated_at, generation)
       VALUES (@id, @manifest, @version, @enabled, @state, @last_error, @config, @bundle_sha256, @installed_at, @updated_at, 1)
       ON CONFLICT (id) DO UPDATE SET manifest = excluded.manifest, version = excluded.version, enabled = excluded.enabled,
         state = excluded.state, last_error = excluded.last_error, config = excluded.config,
         bundle_sha256 = excluded.bundle_sha256, installed_at = excluded.installed_at, updated_at = excluded.updated_at,
         generation = plugins.generation + 1
       RETURNING generation`,
    ),
    updatePlugin: db.prepare<PluginRow>(
      `UPDATE plugins SET manifest = @manifest, version = @version, enabled = @enabled, state = @state, last_error = @last_error,
         config = @config, bundle_sha256 = @bundle_sha256, installed_at = @installed_at, updated_at = @updated_at, generation = @generation
       WHERE id = @id`,
    ),
    deletePlugin: db.prepare<[string]>('DELETE FROM plugins WHERE id = ?'),

    heartbeat: db.prepare<NodeRow>(
      `INSERT INTO nodes (node_id, version, started_at, heartbeat_at) VALUES (@node_id, @version, @started_at, @heartbeat_at)
       ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
    ),
    listNodes: db.prepare<[], NodeRow>('SELECT * FROM nodes ORDER BY node_id'),
    // Only for a plugin that still has a record: a late write never brings back the rows of a removed one.
    putObserved: db.prepare<ObservedRow & { updated_at: number }>(
      `INSERT INTO observed (plugin_id, node_id, state, last_error, pid, restarts, generation, updated_at)
       SELECT @plugin_id, @node_id, @state, @last_error, @pid, @restarts, @generation, @updated_at
       WHERE EXISTS (SELECT 1 FROM plugins WHERE id = @plugin_id)
       ON CONFLICT (plugin_id, node_id) DO UPDATE SET state = excluded.state, last_error = excluded.last_error,
         pid = excluded.pid, restarts = excluded.restarts, generation = excluded.generation, updated_at = excluded.updated_at`,
    ),
    listObserved: db.prepare<[string], ObservedRow>('SELECT * FROM observed WHERE plugin_id = ? ORDER BY node_id'),
    deleteObservedOf: db.prepare<[string]>('DELETE FROM observed WHERE plugin_id = ?'),

    kvGet: db.prepare<{ pluginId: string; key: string; now: number }, { value: Buffer }>(
      `SELECT value FROM kv WHERE plugin_id = @pluginId AND key = @key AND ${LIVE}`,
    ),
    kvUpsert: db.prepare<{ pluginId: string; key: string; value: Buffer; expiresAt: number | null }>(
      `INSERT INTO kv (plugin_id, key, value, expires_at) VALUES (@pluginId, @key, @value, @expiresAt)
       ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    ),
    kvDelete: db.prepare<{ pluginId: string; key: string; now: number }, { live: number }>(
      `DELETE FROM kv WHERE plugin_id = @pluginId AND key = @key RETURNING ${LIVE} AS live`,
    ),
    // Two shapes of the same page query: with an upper bound on the key, and
    // without one (an empty prefix, or a prefix of only U+10FFFF).
    kvListBounded: db.prepare<{ pluginId: string; lower: string; exclude: string | null; upper: string; now: number; take: number }, { key: string }>(
      `SELECT key FROM kv WHERE plugin_id = @pluginId AND key >= @lower AND key < @upper AND key IS NOT @exclude AND ${LIVE}
       ORDER BY key LIMIT @take`,
    ),
    kvListOpen: db.prepare<{ pluginId: string; lower: string; exclude: string | null; now: number; take: number }, { key: string }>(
      `SELECT key FROM kv WHERE plugin_id = @pluginId AND key >= @lower AND key IS NOT @exclude AND ${LIVE}
       ORDER BY key LIMIT @take`,
    ),
    kvDeleteLive: db.prepare<{ pluginId: string; now: number }>(`DELETE FROM kv WHERE plugin_id = @pluginId AND ${LIVE}`),
    kvDeleteAllOf: db.prepare<[string]>('DELETE FROM kv WHERE plugin_id = ?'),

    bundleHead: db.prepare<[string], { size: number; chunks: number; signature: Buffer | null }>(
      'SELECT size, chunks, signature FROM bundles WHERE sha256 = ?',
    ),
    bundleInsert: db.prepare<{ sha256: string; size: number; chunks: number; signature: Buffer | null; storedAt: number }>(
      'INSERT INTO bundles (sha256, size, chunks, signature, stored_at) VALUES (@sha256, @size, @chunks, @signature, @storedAt)',
    ),
    bundleSign: db.prepare<[Buffer, string]>('UPDATE bundles SET signature = ? WHERE sha256 = ? AND signature IS NULL'),
    chunkInsert: db.prepare<[string, number, Buffer]>('INSERT INTO bundle_chunks (sha256, seq, data) VALUES (?, ?, ?)'),
    chunkGet: db.prepare<[string, number], { data: Buffer }>('SELECT data FROM bundle_chunks WHERE sha256 = ? AND seq = ?'),
    // Chunks go with their bundle row (ON DELETE CASCADE).
    bundleCollect: db.prepare<{ keep: string }>(
      `DELETE FROM bundles WHERE sha256 NOT IN (SELECT bundle_sha256 FROM plugins)
         AND sha256 NOT IN (SELECT value FROM json_each(@keep))`,
    ),
    sweepBatch: db.prepare<{ now: number; batch: number }>(
      `DELETE FROM kv WHERE (plugin_id, key) IN
         (SELECT plugin_id, key FROM kv WHERE expires_at <= @now LIMIT @batch)`,
    ),
    sweepTickets: db.prepare<{ now: number }>('DELETE FROM job_tickets WHERE expires_at <= @now'),

    // Take when free or expired; the row is never deleted, so token + 1 is above every earlier grant.
    lockTake: db.prepare<{ pluginId: string; name: string; now: number; expiresAt: number }, { token: number; expires_at: number }>(
      `INSERT INTO locks (plugin_id, name, token, expires_at) VALUES (@pluginId, @name, 1, @expiresAt)
       ON CONFLICT (plugin_id, name) DO UPDATE SET token = locks.token + 1, expires_at = excluded.expires_at
       WHERE locks.expires_at <= @now
       RETURNING token, expires_at`,
    ),
    lockGet: db.prepare<{ pluginId: string; name: string }, { token: number; expires_at: number }>(
      'SELECT token, expires_at FROM locks WHERE plugin_id = @pluginId AND name = @name',
    ),
    lockExtend: db.prepare<{ pluginId: string; name: string; token: number; now: number; expiresAt: number }>(
      `UPDATE locks SET expires_at = @expiresAt
       WHERE plugin_id = @pluginId AND name = @name AND token = @token AND expires_at > @now`,
    ),
    lockFree: db.prepare<{ pluginId: string; name: string; token: number }>(
      'UPDATE locks SET expires_at = 0 WHERE plugin_id = @pluginId AND name = @name AND token = @token',
    ),
    ticketInsert: db.prepare<{ pluginId: string; name: string; period: number; expiresAt: number }>(
      `INSERT INTO job_tickets (plugin_id, name, period, expires_at) VALUES (@pluginId, @name, @period, @expiresAt)
       ON CONFLICT DO NOTHING`,
    ),
  };
}

export class SqliteStore implements Store {
  readonly file: string;
  readonly durability: Durability;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Inside batch(): KV calls (but kvList) join `tx`, begun at the first one. */
  private batching = false;
  private tx: BatchTransaction | undefined;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;

  private readonly updateTx: (id: string, patch: PluginPatch, now: number) => PluginRecord;
  private readonly deletePluginTx: (id: string) => void;
  private readonly casTx: (pluginId: string, key: string, value: Buffer, expiresAt: number | null, expected: Buffer | null, now: number) => boolean;
  private readonly deleteAllTx: (pluginId: string, now: number) => number;
  private readonly putBundleTx: (sha256: string, size: number, chunks: Buffer[], signature: Buffer | null, now: number) => void;

  /**
   * Opens (creating if needed) and migrates the database. Throws
   * STORE_VERSION_TOO_NEW for a file written by a newer plughost and
   * STORE_OPEN_FAILED when SQLite cannot use the file.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    const durability = options.durability ?? 'process-crash';
    if (!(durability in SYNCHRONOUS)) {
      throw Errors.STORE_BAD_ARGUMENT('durability', durability, "'process-crash' or 'power-loss'");
    }
    const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (!Number.isFinite(sweepIntervalMs) || sweepIntervalMs < 0) {
      throw Errors.STORE_BAD_ARGUMENT('sweepIntervalMs', sweepIntervalMs, 'a number of milliseconds, 0 or more (0 turns sweeping off)');
    }
    let db: Database.Database;
    try {
      db = new Database(options.file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw Errors.STORE_OPEN_FAILED(options.file, (err as Error).message);
    }
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Refuse a newer schema before changing anything in the file (the journal mode is persistent).
      const found = schemaVersion(db);
      if (found > SCHEMA_VERSION) throw Errors.STORE_VERSION_TOO_NEW(options.file, found, SCHEMA_VERSION);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw Errors.STORE_OPEN_FAILED(options.file, `SQLite kept journal_mode ${String(mode)}; WAL is required`);
      db.pragma(`synchronous = ${SYNCHRONOUS[durability]}`);
      db.pragma('foreign_keys = ON');
      migrate(db, options.file);
      return new SqliteStore(db, options.file, durability, sweepIntervalMs, options.now ?? Date.now);
    } catch (err) {
      db.close();
      if (err instanceof PlughostError) throw err;
      throw Errors.STORE_OPEN_FAILED(options.file, (err as Error).message);
    }
  }

  private constructor(db: Database.Database, file: string, durability: Durability, sweepIntervalMs: number, now: () => number) {
    this.db = db;
    this.file = file;
    this.durability = durability;
    this.now = now;
    this.stmt = prepareStatements(db);
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    const s = this.stmt;

    this.updateTx = db.transaction((id: string, patch: PluginPatch, at: number): PluginRecord => {
      const row = s.getPlugin.get(id);
      if (!row) throw Errors.STORE_UNKNOWN_PLUGIN(id);
      const stored = toRecord(row);
      const record: PluginRecord = { ...stored, ...definedFields(patch), updatedAt: at, generation: stored.generation + (isDesiredChange(patch) ? 1 : 0) };
      s.updatePlugin.run(toRow(record));
      return record;
    }).immediate;

    this.deletePluginTx = db.transaction((id: string): void => {
      s.kvDeleteAllOf.run(id);
      s.deleteObservedOf.run(id);
      s.deletePlugin.run(id);
    }).immediate;

    // IMMEDIATE takes the write lock before the read, so the compare and the
    // write are atomic even against another process using the same file.
    this.casTx = db.transaction(
      (pluginId: string, key: string, value: Buffer, expiresAt: number | null, expected: Buffer | null, at: number): boolean => {
        const current = s.kvGet.get({ pluginId, key, now: at })?.value;
        const matches = expected === null ? current === undefined : current !== undefined && current.equals(expected);
        if (!matches) return false;
        s.kvUpsert.run({ pluginId, key, value, expiresAt });
        return true;
      },
    ).immediate;

    this.deleteAllTx = db.transaction((pluginId: string, at: number): number => {
      const live = s.kvDeleteLive.run({ pluginId, now: at }).changes;
      s.kvDeleteAllOf.run(pluginId);
      return live;
    }).immediate;

    this.putBundleTx = db.transaction((sha256: string, size: number, chunks: Buffer[], signature: Buffer | null, at: number): void => {
      if (s.bundleHead.get(sha256)) {
        if (signature) s.bundleSign.run(signature, sha256);
        return;
      }
      s.bundleInsert.run({ sha256, size, chunks: chunks.length, signature, storedAt: at });
      chunks.forEach((chunk, seq) => s.chunkInsert.run(sha256, seq, chunk));
    }).immediate;

    if (sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweepFromTimer(), sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  async listPlugins(): Promise<PluginRecord[]> {
    this.assertOpen('listPlugins');
    return this.stmt.listPlugins.all().map(toRecord);
  }

  async getPlugin(id: string): Promise<PluginRecord | undefined> {
    this.assertOpen('getPlugin');
    const row = this.stmt.getPlugin.get(id);
    return row && toRecord(row);
  }

  async putPlugin(record: NewPluginRecord): Promise<number> {
    this.assertOpen('putPlugin');
    const { generation: _given, ...row } = toRow({ ...record, generation: 0 });
    return this.stmt.putPlugin.get(row)!.generation;
  }

  async updatePlugin(id: string, patch: PluginPatch): Promise<PluginRecord> {
    this.assertOpen('updatePlugin');
    return this.updateTx(id, patch, this.now());
  }

  async deletePlugin(id: string): Promise<void> {
    this.assertOpen('deletePlugin');
    this.deletePluginTx(id);
  }

  async heartbeat(node: NodeHeartbeat): Promise<void> {
    this.assertOpen('heartbeat');
    this.stmt.heartbeat.run({ node_id: node.nodeId, version: node.version, started_at: node.startedAt, heartbeat_at: this.now() });
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.assertOpen('listNodes');
    const now = this.now();
    return this.stmt.listNodes.all().map((r) => ({
      nodeId: r.node_id,
      version: r.version,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      heartbeatAgeMs: Math.max(0, now - r.heartbeat_at),
    }));
  }

  async putObserved(o: ObservedState): Promise<void> {
    this.assertOpen('putObserved');
    this.stmt.putObserved.run({
      plugin_id: o.pluginId, node_id: o.nodeId, state: o.state, last_error: o.lastError, pid: o.pid, restarts: o.restarts, generation: o.generation,
      updated_at: this.now(),
    });
  }

  async listObserved(pluginId: string): Promise<ObservedRecord[]> {
    this.assertOpen('listObserved');
    return this.stmt.listObserved.all(pluginId).map(toObserved);
  }

  /**
   * One transaction (BEGIN IMMEDIATE, begun by the first KV call) for the
   * KV calls `work` makes, committed when it returns: one WAL append and
   * commit for many writes. A write that fails undoes only itself (its
   * statement, or the savepoint of a compare-and-set); every call's promise
   * settles after the commit, so an acknowledged write is a committed one,
   * as docs/durability.md promises. Any other store method called inside
   * commits what is open first and runs alone.
   */
  batch(work: () => void): void {
    if (this.batching) return work();
    this.batching = true;
    try {
      work();
    } finally {
      this.batching = false;
      this.endBatch();
    }
  }

  async kvGet(pluginId: string, key: string): Promise<Buffer | undefined> {
    this.assertOpenKv('kvGet');
    this.joinBatch(true);
    return this.settled(this.stmt.kvGet.get({ pluginId, key, now: this.now() })?.value);
  }

  async kvSet(pluginId: string, key: string, value: Buffer, options: KvSetOptions = {}): Promise<boolean> {
    this.assertOpenKv('kvSet');
    const now = this.now();
    const expiresAt = expiryOf(options.ttlMs, now);
    this.joinBatch();
    try {
      if (!options.compare) {
        this.stmt.kvUpsert.run({ pluginId, key, value, expiresAt });
        return this.settled(true);
      }
      return this.settled(this.casTx(pluginId, key, value, expiresAt, options.compare.expected, now));
    } catch (err) {
      throw this.failedInBatch(err);
    }
  }

  async kvDelete(pluginId: string, key: string): Promise<boolean> {
    this.assertOpenKv('kvDelete');
    this.joinBatch();
    try {
      return this.settled(this.stmt.kvDelete.get({ pluginId, key, now: this.now() })?.live === 1);
    } catch (err) {
      throw this.failedInBatch(err);
    }
  }

  async kvList(pluginId: string, prefix: string, limit: number, after?: string): Promise<KvPage> {
    this.assertOpenKv('kvList');
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw Errors.STORE_BAD_ARGUMENT('limit', limit, 'a whole number of keys, 1 or more');
    }
    // SQLite stores what the strings encode to; compare what it compares.
    const from = wellFormed(prefix);
    const past = after === undefined ? undefined : wellFormed(after);
    const startAfter = past !== undefined && utf8Compare(past, from) >= 0;
    const lower = startAfter ? past : from;
    const exclude = startAfter ? past : null;
    const upper = prefixUpperBound(from);
    const params = { pluginId, lower, exclude, now: this.now(), take: limit + 1 };
    const rows = upper === null ? this.stmt.kvListOpen.all(params) : this.stmt.kvListBounded.all({ ...params, upper });
    const more = rows.length > limit;
    const keys = rows.slice(0, limit).map((r) => r.key);
    return this.settled({ keys, next: more ? keys[keys.length - 1] : null });
  }

  async kvDeleteAll(pluginId: string): Promise<number> {
    this.assertOpenKv('kvDeleteAll');
    this.joinBatch();
    try {
      return this.settled(this.deleteAllTx(pluginId, this.now()));
    } catch (err) {
      throw this.failedInBatch(err);
    }
  }

  async sweepExpired(): Promise<number> {
    this.assertOpen('sweepExpired');
    return this.sweep();
  }

  /**
   * better-sqlite3 cannot keep a transaction open across the awaits of a
   * stream without taking this host's other writes into it, so the chunks are
   * gathered (and hashed) in memory first, then written in one transaction:
   * a bundle's size in memory, bounded by the bundle size limit (50 MiB by default).
   */
  async putBundle(sha256: string, bytes: Buffer | Readable, signature: Buffer | null = null): Promise<void> {
    this.assertOpen('putBundle');
    checkSha256(sha256);
    if (this.stmt.bundleHead.get(sha256)) {
      if (!Buffer.isBuffer(bytes)) bytes.destroy();
      if (signature) this.stmt.bundleSign.run(signature, sha256);
      return;
    }
    const chunks: Buffer[] = [];
    const { size } = await writeChunks(sha256, bytes, (_seq, chunk) => chunks.push(chunk));
    this.assertOpen('putBundle');
    this.putBundleTx(sha256, size, chunks, signature, this.now());
  }

  async getBundle(sha256: string): Promise<StoredBundle | undefined> {
    this.assertOpen('getBundle');
    const head = this.stmt.bundleHead.get(sha256);
    if (!head) return undefined;
    const stream = verifyingStream(sha256, head.size, head.chunks, async (seq) => {
      this.assertOpen('getBundle');
      return this.stmt.chunkGet.get(sha256, seq)?.data;
    });
    return { sha256, size: head.size, signature: head.signature, stream };
  }

  async deleteUnreferencedBundles(keep: Iterable<string> = []): Promise<number> {
    this.assertOpen('deleteUnreferencedBundles');
    return this.stmt.bundleCollect.run({ keep: JSON.stringify([...keep]) }).changes;
  }

  async clusterNow(): Promise<number> {
    this.assertOpen('clusterNow');
    return this.now();
  }

  async lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant> {
    this.assertOpen('lockAcquire');
    const now = this.now();
    const taken = this.stmt.lockTake.get({ pluginId, name, now, expiresAt: now + ttlMs });
    if (taken) return { acquired: true, token: taken.token, expiresAt: taken.expires_at, nowMs: now };
    const held = this.stmt.lockGet.get({ pluginId, name });
    return { acquired: false, token: 0, expiresAt: held?.expires_at ?? now, nowMs: now };
  }

  async lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease> {
    this.assertOpen('lockRefresh');
    const now = this.now();
    const expiresAt = now + ttlMs;
    if (this.stmt.lockExtend.run({ pluginId, name, token, now, expiresAt }).changes === 1) return { expiresAt, nowMs: now };
    throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(this.lockRow(pluginId, name), token, now));
  }

  async lockRelease(pluginId: string, name: string, token: number): Promise<void> {
    this.assertOpen('lockRelease');
    if (this.stmt.lockFree.run({ pluginId, name, token }).changes === 1) return;
    throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(this.lockRow(pluginId, name), token, this.now()));
  }

  async jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult> {
    this.assertOpen('jobClaim');
    const now = this.now();
    checkClaimable(pluginId, name, period, everyMs, now);
    const expiresAt = ticketExpiry(now, period, everyMs, ttlMs);
    return { claimed: this.stmt.ticketInsert.run({ pluginId, name, period, expiresAt }).changes === 1, nowMs: now };
  }

  // ---- migration (plughost migrate) ----

  async kvEntries(pluginId: string, after: string | undefined, limit: number): Promise<KvEntry[]> {
    this.assertOpen('kvEntries');
    checkPageLimit(limit);
    const lower = after === undefined ? '' : wellFormed(after);
    const rows = this.db.prepare<{ pluginId: string; lower: string; exclude: string | null; now: number; limit: number }, { key: string; value: Buffer; ttl: number | null }>(
      `SELECT key, value, expires_at - @now AS ttl FROM kv WHERE plugin_id = @pluginId AND key >= @lower AND key IS NOT @exclude AND ${LIVE}
       ORDER BY key LIMIT @limit`,
    ).all({ pluginId, lower, exclude: after === undefined ? null : lower, now: this.now(), limit });
    return rows.map((r) => ({ key: r.key, value: r.value, ttlMs: r.ttl }));
  }

  async listBundles(): Promise<string[]> {
    this.assertOpen('listBundles');
    return this.db.prepare<[], { sha256: string }>('SELECT sha256 FROM bundles ORDER BY sha256').all().map((r) => r.sha256);
  }

  async contentCounts(): Promise<StoreContents> {
    this.assertOpen('contentCounts');
    return this.db.prepare<{ now: number }, StoreContents>(
      `SELECT (SELECT count(*) FROM plugins) AS plugins, (SELECT count(*) FROM kv WHERE ${LIVE}) AS kv, (SELECT count(*) FROM bundles) AS bundles`,
    ).get({ now: this.now() }) as StoreContents;
  }

  /**
   * Takes the database file for this connection alone until close(): a host
   * running on it (whose connection keeps a shared lock on the file while it
   * is open) makes this fail at once with STORE_FILE_IN_USE, and a host
   * started meanwhile cannot open the file. plughost migrate holds it so the
   * copy reads a database nobody changes.
   */
  async holdExclusively(): Promise<void> {
    this.assertOpen('holdExclusively');
    // In WAL mode the exclusive lock is taken by the next write transaction and kept from then on.
    this.db.pragma('locking_mode = EXCLUSIVE');
    this.db.pragma('busy_timeout = 0');
    try {
      this.db.transaction(() => undefined).immediate();
    } catch (err) {
      this.db.pragma('locking_mode = NORMAL');
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw Errors.STORE_FILE_IN_USE(this.file);
      throw Errors.STORE_OPEN_FAILED(this.file, (err as Error).message);
    } finally {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /** Stops the sweep timer and closes the database. A second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.endBatch();
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.db.close();
  }

  private lockRow(pluginId: string, name: string): { token: number; expiresAt: number } | undefined {
    const row = this.stmt.lockGet.get({ pluginId, name });
    return row && { token: row.token, expiresAt: row.expires_at };
  }

  private sweep(): number {
    const now = this.now();
    let total = this.stmt.sweepTickets.run({ now }).changes;
    for (;;) {
      const { changes } = this.stmt.sweepBatch.run({ now, batch: SWEEP_BATCH });
      total += changes;
      if (changes < SWEEP_BATCH) return total;
    }
  }

  private sweepFromTimer(): void {
    try {
      this.sweep();
    } catch {
      // A busy database or full disk: expired values stay invisible to reads
      // regardless, and the next tick tries again; a throw here would crash the host.
    }
  }

  /** Every method but the KV ones: a batch's open transaction is committed first, so this method's writes are acknowledged by their own commit. */
  private assertOpen(method: string): void {
    if (this.closed) throw Errors.STORE_CLOSED(this.file, method);
    if (this.tx) this.endBatch();
  }

  private assertOpenKv(method: string): void {
    if (this.closed) throw Errors.STORE_CLOSED(this.file, method);
  }

  /** Inside batch(), a KV call runs in the batch's transaction, begun here by the first: reads too, which then need no read lock of their own. */
  private joinBatch(read = false): void {
    if (!this.batching) return;
    if (this.tx && !this.db.inTransaction) this.abandon(this.tx, 'an earlier write of the batch failed and SQLite rolled back its transaction');
    if (this.tx) return;
    try {
      this.begin.run();
    } catch (err) {
      // Another connection holds the write lock past the busy timeout: a read goes on without it, as reads in WAL mode do.
      if (read) return;
      throw err;
    }
    this.tx = new BatchTransaction();
  }

  /** `value` once the open batch transaction (if any) has committed: what was read or written in it is not acknowledged before. */
  private settled<T>(value: T): T | Promise<T> {
    const tx = this.tx;
    return tx ? tx.committed.then(() => value) : value;
  }

  /**
   * After a write failed inside a batch: SQLite rolls back the whole
   * transaction on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY,
   * SQLITE_NOMEM); then the calls that joined it fail too, and the next write
   * begins a new one.
   */
  private failedInBatch(err: unknown): unknown {
    if (this.tx && !this.db.inTransaction) this.abandon(this.tx, (err as Error).message);
    return err;
  }

  private abandon(tx: BatchTransaction, why: string): void {
    this.tx = undefined;
    tx.reject(Errors.STORE_BATCH_ROLLED_BACK(this.file, why));
  }

  private endBatch(): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    if (!this.db.inTransaction) {
      tx.reject(Errors.STORE_BATCH_ROLLED_BACK(this.file, 'a write of the batch failed and SQLite rolled back its transaction'));
      return;
    }
    try {
      this.commit.run();
      tx.resolve();
    } catch (err) {
      if (this.db.inTransaction) this.rollback.run();
      tx.reject(Errors.STORE_BATCH_ROLLED_BACK(this.file, (err as Error).message));
    }
  }
}

function toRow(r: PluginRecord): PluginRow {
  return {
    id: r.id,
    manifest: JSON.stringify(r.manifest),
    version: r.version,
    enabled: r.enabled ? 1 : 0,
    state: r.state,
    last_error: r.lastError,
    config: JSON.stringify(r.config),
    bundle_sha256: r.bundleSha256,
    installed_at: r.installedAt,
    updated_at: r.updatedAt,
    generation: r.generation,
  };
}

function toRecord(row: PluginRow): PluginRecord {
  return {
    id: row.id,
    manifest: JSON.parse(row.manifest) as Manifest,
    version: row.version,
    enabled: row.enabled === 1,
    state: row.state as PluginState,
    lastError: row.last_error,
    config: JSON.parse(row.config) as PluginConfig,
    bundleSha256: row.bundle_sha256,
    installedAt: row.installed_at,
    updatedAt: row.updated_at,
    generation: row.generation,
  };
}


function expiryOf(ttlMs: number | undefined, now: number): number | null {
  if (ttlMs === undefined || ttlMs === 0) return null;
  if (!Number.isFinite(ttlMs) || ttlMs < 0) {
    throw Errors.STORE_BAD_ARGUMENT('ttlMs', ttlMs, 'milliseconds to live, more than 0 (0 or absent: no expiry)');
  }
  // As in PostgreSQL: an expiry past exact integers would be a far-future one nobody asked for.
  if (ttlMs > MAX_KV_TTL_MS) throw Errors.STORE_BAD_ARGUMENT('ttlMs', ttlMs, `at most ${MAX_KV_TTL_MS} ms`);
  return Math.ceil(now + ttlMs);
}

/** Lone surrogates become U+FFFD, as they do on their way into SQLite. */
function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** UTF-8 byte order, which is SQLite's BINARY collation (and code point order, unlike `<` on JS strings). */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The least string above every string that starts with `prefix`, or null when
 * there is none to give (empty prefix, or only U+10FFFF): the prefix with its
 * last code point incremented, after dropping trailing U+10FFFF. Exactly the
 * keys in [prefix, bound) start with the prefix, so the key index serves the
 * range and no LIKE escaping is involved.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < 0x10ffff) {
      // Surrogate code points are not characters; the next one after U+D7FF is U+E000.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.map((p) => String.fromCodePoint(p)).join('') + String.fromCodePoint(next);
    }
  }
  return null;
}
