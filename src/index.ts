/** plughost: the host's public surface. */
export * from './protocol';
export { PluginHost, DEFAULTS as RUNTIME_DEFAULTS } from './runtime';
export type * from './runtime/types';
export { startServer, plughostRoutes, plughostServerOptions, type ServerOptions, type RunningServer, type PlughostRoutesOptions, type ConnectionLimits } from './server';
export { MIN_ADMIN_TOKEN_LENGTH, AUTH_THROTTLE_DEFAULTS, DEFAULT_MAX_REDIRECTS, type AuthThrottleOptions, type UrlGuardOptions } from './server';
export { userAuthenticator, type UserAuthOptions } from './server';
export * from './manifest';
export * from './bundle';
export type { Store, PluginRecord, PluginState, KvSetOptions, KvPage, StoredBundle, NodeHeartbeat, NodeRecord, ObservedState, ObservedRecord } from './store/store';
export type { KvEntry, StoreContents } from './store/store';
export { SqliteStore, PostgresStore } from './store';
export { PlughostError, Errors, isError } from './errors';
