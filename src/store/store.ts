/**
 * What the runtime needs from persistent state. The embedded default is SQLite
 * (sqlite-store.ts); PostgreSQL (postgres-store.ts) implements the same
 * interface, which is why every method is async.
 */
import type { Readable } from 'node:stream';
import { Errors } from '../errors';
import type { Manifest, PluginConfig } from '../manifest';
import type { JobClaimResult, LockGrant, LockLease } from '../protocol/cluster-contract';

export type { JobClaimResult, LockGrant, LockLease };

/** The states of design.md. Only `running` plugins receive calls. */
export type PluginState = 'not_running' | 'starting' | 'running' | 'failed_to_start' | 'failed_to_stay_running' | 'stopping';

export interface PluginRecord {
  id: string;
  manifest: Manifest;
  version: string;
  /** What the operator asked for; the runtime converges the state toward it. */
  enabled: boolean;
  state: PluginState;
  /** Why the plugin last failed, or null. */
  lastError: string | null;
  /** The configuration, validated against the manifest's settings schema, defaults applied. */
  config: PluginConfig;
  /** SHA-256 (hex) of the installed bundle's bytes. */
  bundleSha256: string;
  /**
   * Bumped by the store on every change of what the operator asked for (install or
   * upgrade, enabled, configuration): 1 for a fresh install. Each node reports the
   * generation its state answers (ObservedState.generation), so a node that has not
   * caught up yet shows.
   */
  generation: number;
  /** Milliseconds since the epoch. */
  installedAt: number;
  updatedAt: number;
}

export type PluginPatch = Partial<Pick<PluginRecord, 'enabled' | 'state' | 'lastError' | 'config'>>;

/** A record to store: the store assigns the generation. */
export type NewPluginRecord = Omit<PluginRecord, 'generation'> & { generation?: number };

/** Whether a patch changes what the operator asked for (and so bumps the generation). */
export function isDesiredChange(patch: PluginPatch): boolean {
  return patch.enabled !== undefined || patch.config !== undefined;
}

export interface KvSetOptions {
  /** Time to live in ms; absent or 0 keeps the value until deleted. */
  ttlMs?: number;
  /**
   * Compare-and-set: write only if the current live value equals `expected`
   * (byte for byte), or, when `expected` is null, only if the key has no live value.
   */
  compare?: { expected: Buffer | null };
}

export interface KvPage {
  keys: string[];
  /** The last key of this page when more may follow; pass it back as `after`. */
  next: string | null;
}

/** Bytes per stored bundle chunk: no row or statement ever holds a whole (up to 50 MiB) bundle. */
export const BUNDLE_CHUNK_BYTES = 1024 * 1024;

/** A bundle kept in the store, as `getBundle` hands it back. */
export interface StoredBundle {
  sha256: string;
  /** Bytes of the bundle (the .tar.gz file). */
  size: number;
  /** The detached signature stored with it, or null when it was installed unsigned. */
  signature: Buffer | null;
  /**
   * The bytes, read one chunk at a time. The SHA-256 is recomputed while
   * reading: a stream whose bytes do not hash to `sha256` (a corrupted or
   * missing chunk) fails with STORE_BUNDLE_CORRUPT instead of ending.
   */
  stream: Readable;
}

/** What a node says about itself at each heartbeat. */
export interface NodeHeartbeat {
  nodeId: string;
  /** The plughost version the node runs. */
  version: string;
  /** When the node's host opened, ms since the epoch (the node's clock). */
  startedAt: number;
}

export interface NodeRecord extends NodeHeartbeat {
  /** The last heartbeat, ms since the epoch, on the database's clock (SQLite: the host's). */
  heartbeatAt: number;
  /** How long ago that was, judged by the same clock, so hosts whose clocks disagree agree on it. */
  heartbeatAgeMs: number;
}

/** What one node sees of one plugin; the operator's wishes stay in PluginRecord. */
export interface ObservedState {
  pluginId: string;
  nodeId: string;
  state: PluginState;
  lastError: string | null;
  /** The plugin process id on that node while it runs. */
  pid: number | null;
  restarts: number;
  /** The desired generation this state answers (PluginRecord.generation once the node caught up). */
  generation: number;
}

export interface ObservedRecord extends ObservedState {
  /** When the node last wrote the row, ms since the epoch, on the database's clock (SQLite: the host's). */
  updatedAt: number;
}

/** What a feed row says happened. */
export type FeedKind = 'change' | 'event' | 'state';

/** One row of the cluster feed, as `ClusterFeed.read` returns it. */
export interface FeedRow {
  /** Sequence number: rows become visible in this order, without gaps. */
  seq: number;
  kind: FeedKind;
  pluginId: string;
  /** The node that wrote it ('' for changes, which every node converges on, its writer included). */
  origin: string;
  /** JSON of the event or the state change; null for changes. */
  payload: Buffer | null;
}

/** Stops watching; resolves once the LISTEN connection is closed. */
export type StopWatching = () => Promise<void>;

/**
 * The cluster feed of a store several hosts share (PostgreSQL). Writes of
 * plugin records (putPlugin, an enabled/config updatePlugin, deletePlugin)
 * append a 'change' row in their own transaction and wake every watcher, so a
 * host reads the feed after the last row it saw and converges those plugins.
 */
export interface ClusterFeed {
  /** The last sequence number written (0 when none). */
  head(): Promise<number>;
  /** Rows after `after`, in order, at most `limit`. */
  read(after: number, limit: number): Promise<FeedRow[]>;
  /** Appends an event or state row and wakes every watcher; resolves once committed. */
  append(kind: 'event' | 'state', pluginId: string, origin: string, payload: Buffer): Promise<number>;
  /**
   * Listens on a connection of its own: `onWake` after each committed row
   * (and once connected), `onReconnect` after the connection was lost and came
   * back (wake-ups sent meanwhile are lost: the watcher should reread everything).
   */
  watch(onWake: () => void, onReconnect: () => void): StopWatching;
}

export interface Store {
  /** Set when several hosts may share this store (PostgreSQL); absent for SQLite and memory. */
  readonly feed?: ClusterFeed;

  listPlugins(): Promise<PluginRecord[]>;
  getPlugin(id: string): Promise<PluginRecord | undefined>;
  /** Inserts or replaces the whole record (install, upgrade); returns its new generation (1 for a new one, else one more). */
  putPlugin(record: NewPluginRecord): Promise<number>;
  /** Changes some fields and bumps updatedAt; throws if the plugin is unknown. A change of `enabled` or `config` goes to the feed. */
  updatePlugin(id: string, patch: PluginPatch): Promise<PluginRecord>;
  /** Removes the plugin, all its KV and every node's observed state of it. */
  deletePlugin(id: string): Promise<void>;

  /** Records that the node is alive (inserting it the first time). */
  heartbeat(node: NodeHeartbeat): Promise<void>;
  /** Every node that ever heartbeated, by node id. */
  listNodes(): Promise<NodeRecord[]>;
  /** Inserts or replaces the node's row for the plugin. */
  putObserved(observed: ObservedState): Promise<void>;
  /** Every node's row for the plugin, by node id. */
  listObserved(pluginId: string): Promise<ObservedRecord[]>;

  /**
   * Runs `work` (synchronously), letting the KV calls it makes share one
   * transaction where the store can: one commit for a whole CallStream
   * message instead of one per write. Each call still has its own result or
   * error (a call that fails undoes nothing of the others), and every promise
   * of a call made inside settles only after that commit.
   */
  batch(work: () => void): void;

  kvGet(pluginId: string, key: string): Promise<Buffer | undefined>;
  /** Returns false only when a compare did not match (nothing written). */
  kvSet(pluginId: string, key: string, value: Buffer, options?: KvSetOptions): Promise<boolean>;
  /** True when a live value was deleted. */
  kvDelete(pluginId: string, key: string): Promise<boolean>;
  /** Live keys starting with `prefix`, in byte order, after `after` (exclusive), at most `limit`. */
  kvList(pluginId: string, prefix: string, limit: number, after?: string): Promise<KvPage>;
  kvDeleteAll(pluginId: string): Promise<number>;
  /** Deletes expired values (and expired job tickets) now; returns how many. */
  sweepExpired(): Promise<number>;

  /**
   * Stores a bundle's bytes (and its detached signature, if any) under their
   * SHA-256 (hex), in BUNDLE_CHUNK_BYTES chunks. Idempotent: storing a
   * bundle that is already there changes nothing (a signature is added when
   * the stored copy had none). Throws STORE_BUNDLE_MISMATCH, storing nothing,
   * when the bytes do not hash to `sha256`.
   */
  putBundle(sha256: string, bytes: Buffer | Readable, signature?: Buffer | null): Promise<void>;
  /** The stored bundle, or undefined when there is none with this SHA-256. */
  getBundle(sha256: string): Promise<StoredBundle | undefined>;
  /**
   * Garbage collection: deletes every bundle no plugin record references,
   * except those in `keep` (bundles of installs still in progress, whose
   * record is not committed yet). Returns how many bundles were deleted.
   * A shared store (one with a `feed`) also keeps bundles stored within the
   * last `graceMs` (another host's install may be between putBundle and
   * putPlugin; putBundle of a stored bundle renews it); the others ignore it.
   */
  deleteUnreferencedBundles(keep?: Iterable<string>, graceMs?: number): Promise<number>;

  /**
   * Cluster primitives, scoped by plugin id (src/protocol/cluster-contract.ts
   * has the rules). Every time is the store's own clock: the database's on
   * PostgreSQL, so hosts sharing it agree whatever their own clocks say.
   */
  clusterNow(): Promise<number>;
  /** Atomically takes the lock if it is free or its lease expired; the token grows with every grant of the name, never reused. */
  lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant>;
  /** Extends a live lease held with `token`; LOCK_TOKEN_STALE otherwise. */
  lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease>;
  /** Frees the lock if `token` is its latest grant (expired or not); LOCK_TOKEN_STALE otherwise. */
  lockRelease(pluginId: string, name: string, token: number): Promise<void>;
  /** Inserts the ticket for (plugin, name, period) if absent; JOB_PERIOD_NOT_CURRENT outside the claimable window. */
  jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult>;

  close(): Promise<void>;

  // ---- migration (plughost migrate) ----
  /**
   * A plugin's live KV values with their remaining time to live, in key byte
   * order after `after` (exclusive), at most `limit`: what a copy needs to
   * give each value the same remaining life on another store.
   */
  kvEntries(pluginId: string, after: string | undefined, limit: number): Promise<KvEntry[]>;
  /** The SHA-256 of every stored bundle, in order. */
  listBundles(): Promise<string[]>;
  /** How much plughost data the store holds: a copy goes only into a store where all three are 0. */
  contentCounts(): Promise<StoreContents>;
}

/** The patch without keys whose value is undefined, so `{ config: undefined }` keeps the config. */
export function definedFields(patch: PluginPatch): PluginPatch {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as PluginPatch;
}

/** An observed-state row as both databases return it (PostgreSQL's bigint arrives as a string). */
export interface ObservedRow {
  plugin_id: string;
  node_id: string;
  state: string;
  last_error: string | null;
  pid: number | null;
  restarts: number;
  generation: number | string;
  updated_at: number | string;
}

export function toObserved(r: ObservedRow): ObservedRecord {
  return {
    pluginId: r.plugin_id,
    nodeId: r.node_id,
    state: r.state as PluginState,
    lastError: r.last_error,
    pid: r.pid,
    restarts: r.restarts,
    generation: Number(r.generation),
    updatedAt: Number(r.updated_at),
  };
}

// ---- migration (plughost migrate) ----

/** One live KV value, as `kvEntries` lists it. */
export interface KvEntry {
  key: string;
  value: Buffer;
  /** Milliseconds left to live on the store's clock (1 or more), or null when the value never expires. */
  ttlMs: number | null;
}

export interface StoreContents {
  plugins: number;
  /** Live KV values of every plugin; expired ones not yet swept are not counted. */
  kv: number;
  bundles: number;
}

/** The `limit` of a paged read: a whole number of entries, 1 or more. */
export function checkPageLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw Errors.STORE_BAD_ARGUMENT('limit', limit, 'a whole number of entries, 1 or more');
}
