/**
 * What the runtime needs from persistent state. The embedded default is SQLite
 * (sqlite-store.ts); PostgreSQL (postgres-store.ts) implements the same
 * interface, which is why every method is async.
 */
import type { Manifest, PluginConfig } from '../manifest';

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
  /** Milliseconds since the epoch. */
  installedAt: number;
  updatedAt: number;
}

export type PluginPatch = Partial<Pick<PluginRecord, 'enabled' | 'state' | 'lastError' | 'config'>>;

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
}

export interface ObservedRecord extends ObservedState {
  /** When the node last wrote the row, ms since the epoch, on the database's clock (SQLite: the host's). */
  updatedAt: number;
}

export interface Store {
  listPlugins(): Promise<PluginRecord[]>;
  getPlugin(id: string): Promise<PluginRecord | undefined>;
  /** Inserts or replaces the whole record (install, upgrade). */
  putPlugin(record: PluginRecord): Promise<void>;
  /** Changes some fields and bumps updatedAt; throws if the plugin is unknown. */
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

  kvGet(pluginId: string, key: string): Promise<Buffer | undefined>;
  /** Returns false only when a compare did not match (nothing written). */
  kvSet(pluginId: string, key: string, value: Buffer, options?: KvSetOptions): Promise<boolean>;
  /** True when a live value was deleted. */
  kvDelete(pluginId: string, key: string): Promise<boolean>;
  /** Live keys starting with `prefix`, in byte order, after `after` (exclusive), at most `limit`. */
  kvList(pluginId: string, prefix: string, limit: number, after?: string): Promise<KvPage>;
  kvDeleteAll(pluginId: string): Promise<number>;
  /** Deletes expired values now; returns how many. */
  sweepExpired(): Promise<number>;

  close(): Promise<void>;
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
    updatedAt: Number(r.updated_at),
  };
}
