/** The store layer: the interface the runtime uses, the embedded SQLite implementation and PostgreSQL. */
export type {
  Store, PluginRecord, PluginPatch, PluginState, KvSetOptions, KvPage, NodeHeartbeat, NodeRecord, ObservedState, ObservedRecord,
} from './store';
export type { StoredBundle } from './store';
export type { KvEntry, StoreContents } from './store';
export { BUNDLE_CHUNK_BYTES } from './store';
export { SqliteStore, DEFAULT_SWEEP_INTERVAL_MS, BUSY_TIMEOUT_MS } from './sqlite-store';
export type { SqliteStoreOptions, Durability } from './sqlite-store';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations';
export type { Migration } from './migrations';
export { PostgresStore } from './postgres-store';
export type { PostgresStoreOptions } from './postgres-store';
