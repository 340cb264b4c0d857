/**
 * plughost/sdk: what TypeScript plugin authors import. It carries the plugin
 * side of the protocol only; never the host runtime, server or store.
 */
export { definePlugin, type Plugin, type ServeOptions } from './define';
export { reject } from './rejection';
export { PluginApiError } from './api-client';
/** The longest KV `ttlMs` the host takes (0 is no expiry). */
export { MAX_KV_TTL_MS } from '../src/protocol/limits';
export type {
  ApiMap,
  ClusterApi,
  EventContext,
  EventHandler,
  HookCall,
  HookContext,
  HookHandler,
  HookMap,
  HookOutcome,
  HttpContext,
  JobRun,
  JsonValue,
  KVPage,
  KVSetOptions,
  KVStore,
  Lease,
  LockOptions,
  LogLevel,
  Logger,
  Manifest,
  PluginApi,
  PluginContext,
  PluginDefinition,
  Rejection,
  ScheduledJob,
  SettingValue,
  SettingsMap,
} from './types';
/** The protocol layer, for a plugin that serves its own gRPC services beside or instead of the Hooks contract. */
export { servePlugin, type ServePluginOptions, type ServedPlugin, type ServeContext } from '../src/protocol/server';
export type { ServiceRegistration, BrokerConnection, BrokerServer, GrpcBroker } from '../src/protocol/broker';
/** Loads the plugin's own .proto files at run time, for the services it passes to servePlugin. */
export { loadProtos } from '../src/protocol/proto';
