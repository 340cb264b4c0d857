/**
 * The integrator's view of the runtime: options, typed hooks and API methods,
 * and what dispatch returns.
 */
import type pino from 'pino';
import type { KeyInput } from '../bundle';
import type { BundleLimits } from '../bundle/limits';
import type { Manifest, PluginConfig } from '../manifest';
import type { PluginLogRecord } from '../protocol/log-lines';
import type { PluginState, Store } from '../store/store';
import type { Reason } from './plugin-states';

/** Hook name → payload type, e.g. `{ NoteWillBeSaved: Note; NoteSaved: Note }`. */
export type HookMap = Record<string, unknown>;

/** Who is calling an integrator API method: always taken from the plugin's connection. */
export interface InvokeCaller {
  pluginId: string;
}

/**
 * Method name → implementation. Plugins reach a method through `Invoke` only
 * when their manifest lists its name under `permissions`.
 */
export type ApiMethods = Record<string, (args: never, caller: InvokeCaller) => unknown>;

/** 'stream': RunHookStream for plugins that offer it; 'unary': RunHook for every plugin. See RuntimeDefaults.hookTransport. */
export type HookTransportMode = 'stream' | 'unary';

/** 'stream': API.CallStream offered to plugins; 'unary': unary API calls only. See RuntimeDefaults.apiTransport. */
export type ApiTransportMode = 'stream' | 'unary';

/** How a host enforces plugin memory limits: 'auto' uses a cgroup per plugin where it can, 'watchdog' never does. */
export type MemoryEnforcement = 'auto' | 'watchdog';

export interface RuntimeDefaults {
  /**
   * Let `enable(id, { inspect })` start a node plugin under the Node inspector on a loopback
   * address: for development servers. Default false (such an enable is refused).
   */
  allowInspect: boolean;
  /**
   * Start `runtime: node` plugins with a V8 code cache kept in their folder, so a plugin's
   * later starts skip most of compiling it (src/runtime/code-cache.ts). Default true.
   */
  codeCache: boolean;
  /** For the handshake line. Manifest `limits.start_timeout_ms` overrides. Default 30 s. */
  startTimeoutMs: number;
  /** Deadline of one hook call. Manifest `limits.hook_timeout_ms` overrides. Default 5 s. */
  hookTimeoutMs: number;
  /** Shutdown → SIGKILL grace. Default 2 s. */
  killGraceMs: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  /** Failures (crashes, failed health checks, failed restarts) within `failureWindowMs` that park a plugin. Default 3. */
  maxFailures: number;
  failureWindowMs: number;
  /** First restart delay; doubles per failure up to the max. */
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  autoMTLS: boolean;
  /** Records kept per plugin in its log ring buffer. */
  logBufferSize: number;
  /** Plugin log records accepted per second (burst: one second's worth); the excess is dropped and counted. Default 1000. */
  logLinesPerSecond: number;
  /** Bytes of plugin log messages accepted per second, as above. Default 1 MiB. */
  logBytesPerSecond: number;
  /** How long a stop (disable, upgrade, removal, close) lets the plugin's HTTP responses in progress finish before it cuts them. Default 5 s. */
  httpDrainMs: number;
  /**
   * How plugin HTTP reaches plugins that offer ServeHTTPStream: 'stream' (default) multiplexes
   * every exchange over one stream per plugin; 'per-request' opens a ServeHTTP stream per request,
   * as for plugins that offer only ServeHTTP.
   */
  httpTransport: 'stream' | 'per-request';
  /**
   * Large plugin HTTP bodies over one-use unix sockets beside ServeHTTPStream, with plugins that
   * list "HTTPSideChannel" (docs/protocol.md): request bodies of a known length from
   * `httpSideChannelMinBytes` on, and responses the plugin knows to be that large. false keeps
   * every body on the stream. Default true.
   */
  httpSideChannel: boolean;
  /** The body size from which a side channel is used, both ways (plugins are told per exchange). Default 1 MiB. */
  httpSideChannelMinBytes: number;
  /**
   * HTTP/2 flow-control window on both ends of a plugin's connection, and the credit each side
   * of a ServeHTTPStream exchange keeps open; the plugin is given the same value. Default 8 MiB.
   */
  flowControlWindowBytes: number;
  /**
   * Largest gRPC message (hook payloads, API requests and replies) either side of a plugin's
   * connections sends or accepts; the plugin is given the same value. Default 64 MiB.
   */
  maxMessageBytes: number;
  /** Memory limit (MiB) of a plugin whose manifest sets no `limits.memory_mb`; 0 for none. Default 0. */
  memoryLimitMb: number;
  /** 'auto': a cgroup per plugin where the host can make one, else the RSS watchdog; 'watchdog': always the watchdog. Default 'auto'. */
  memoryEnforcement: MemoryEnforcement;
  /** How often the RSS watchdog samples a plugin's process tree. Default 500 ms. */
  memoryWatchdogIntervalMs: number;
  /** Tasks (processes and threads) allowed in a plugin's cgroup; 0 for no limit. Default 1024. */
  pidsLimit: number;
  /**
   * 'stream': hook calls to a plugin that lists RunHookStream travel over one long-lived stream
   * per plugin (docs/protocol.md); other plugins get unary RunHook. 'unary': RunHook for every
   * plugin, as before streams existed. Default 'stream'.
   */
  hookTransport: HookTransportMode;
  /**
   * With hookTransport 'stream', whether hook calls to a plugin that also lists
   * RunHookBatchStream (every SDK plugin) share one message per event-loop turn when several
   * are in flight. false sends them over RunHookStream, one message per call, as to plugins
   * that list only that. Default true.
   */
  hookBatching: boolean;
  /**
   * Whether the batched hook stream goes over a second connection to the plugin made with
   * node:http2 directly (same socket, certificates and limits) instead of the grpc-js channel,
   * skipping grpc-js's per-message layers. A plugin that cannot be reached that way keeps the
   * grpc-js channel (with a warning in its log). Default false: in bench/hooks.js it was faster
   * on a busy machine and slower on a quiet one, not a clear win yet.
   */
  hookHttp2: boolean;
  /**
   * 'stream': the host offers plugins API.CallStream (OnActivateRequest.api_features), and the
   * SDK then sends its API calls over one stream per activation, batched per event-loop turn
   * (docs/protocol.md). 'unary': the host offers nothing, so every plugin makes unary API calls,
   * as before the stream existed (the stream is still served). Default 'stream'.
   */
  apiTransport: ApiTransportMode;
}

export interface HookPolicy {
  /** A filter plugin that fails or passes its deadline rejects the payload instead of being skipped. */
  failClosed?: boolean;
}

export interface PluginHostOptions<A extends ApiMethods = ApiMethods> {
  /** Where bundles are unpacked and the SQLite file lives. Created if missing. */
  dataDir: string;
  /** The integrator's API methods callable by plugins through Invoke. */
  api?: A;
  /** Ed25519 public keys (PEM) that may sign bundles. */
  trustedKeys?: KeyInput[];
  /** Refuse bundles without a valid signature from a trusted key. */
  requireSignature?: boolean;
  /** The version plugins see and `min_host_version` is checked against. Default: this package's version. */
  hostVersion?: string;
  logger?: pino.Logger;
  /** Default: SQLite in dataDir, or PostgreSQL when `database` is given. */
  store?: Store;
  /**
   * A `postgres://` URL: keep plugin records, configuration, KV and bundles in
   * PostgreSQL instead of the data dir's SQLite file. The data dir keeps the
   * unpacked plugin folders, placed again from the database when missing.
   * Any number of hosts may share one database: they converge on each other's changes.
   */
  database?: string;
  /** SQLite durability, when the default store is used. */
  durability?: 'process-crash' | 'power-loss';
  defaults?: Partial<RuntimeDefaults>;
  /** Per-hook dispatch policy, by hook name. */
  hooks?: Record<string, HookPolicy>;
  bundleLimits?: Partial<BundleLimits>;
  /** Start enabled plugins during open (default true); open waits for them. */
  startPlugins?: boolean;
  /**
   * This host's node id (see NODE_ID_RULE). Default: the one kept in `<dataDir>/node-id`,
   * generated (`node-<8 hex>`) on the first open.
   */
  nodeId?: string;
  /** How often the host writes its heartbeat to the store. Default 5 s. */
  heartbeatIntervalMs?: number;
  /**
   * On a store several hosts share (PostgreSQL): how often the host reads the cluster feed
   * besides the wake-ups of LISTEN/NOTIFY (which a dropped connection loses). Default 5 s.
   */
  reconcileIntervalMs?: number;
}

/** A plugin as `list()` and `get()` show it. */
export interface PluginInfo {
  id: string;
  name: string;
  version: string;
  description?: string;
  enabled: boolean;
  state: PluginState;
  lastError: string | null;
  permissions: string[];
  hooks: string[];
  hasServer: boolean;
  hasWebapp: boolean;
  bundleSha256: string;
  installedAt: number;
  updatedAt: number;
  restarts: number;
  /** The plugin process id while it runs. */
  pid?: number;
  manifest: Manifest;
  /** The desired generation: bumped by every install, upgrade, enable, disable and configuration. */
  generation: number;
}

/** What one node last saw of a plugin. */
export interface PluginNodeState {
  nodeId: string;
  state: PluginState;
  lastError: string | null;
  /** When that node last wrote it, ms since the epoch (the store's clock). */
  updatedAt: number;
  /** The desired generation that node's state answers: behind the plugin's while it converges. */
  generation: number;
  /** Whether that node's heartbeat is recent (within 3 heartbeat intervals of this host). */
  live: boolean;
}

/** The plugin across the live nodes. */
export interface PluginSummary {
  /** Live nodes that report the plugin. */
  nodes: number;
  running: number;
  /** Live nodes whose state answers the current generation. */
  converged: number;
  /** The state every live node reports, or 'mixed'. */
  state: PluginState | 'mixed';
}

/** A plugin with every node's observed state; `state` and `lastError` are this node's. */
export interface PluginDetail extends PluginInfo {
  nodes: PluginNodeState[];
  summary: PluginSummary;
}

/** The nodes sharing this host's store. */
export interface ClusterInfo {
  /** This host's node id. */
  nodeId: string;
  nodes: Array<{
    nodeId: string;
    version: string;
    /** When that node's host opened, ms since the epoch (its own clock). */
    startedAt: number;
    /** Time since its last heartbeat, on the store's clock. */
    heartbeatAgeMs: number;
  }>;
}

export interface InstallOptions {
  /** Replace an installed plugin with the same id. */
  force?: boolean;
  /** Path of a detached signature; default `<bundle>.sig` when present. */
  signature?: string;
}

/** What `install` answers: the plugin, and what the install could not keep. */
export interface InstallResult extends PluginInfo {
  /** One sentence per setting an upgrade dropped (gone from the schema, or its value no longer fits) and per required setting left without a value. Empty for a fresh install. */
  warnings: string[];
}

/** What one plugin did with a notify hook. */
export interface NotifyOutcome {
  pluginId: string;
  ok: boolean;
  error?: string;
  durationMs: number;
}

export interface FilterStep {
  pluginId: string;
  outcome: 'unchanged' | 'changed' | 'rejected' | 'failed';
  error?: string;
  durationMs: number;
}

export type FilterResult<P> =
  | { rejected: false; payload: P; steps: FilterStep[] }
  | { rejected: true; reason: string; by: string; payload: P; steps: FilterStep[] };

export interface HookCallContext {
  requestId?: string;
  userId?: string;
  values?: Record<string, string>;
}

export interface PluginLogEntry extends PluginLogRecord {
  pluginId: string;
}

/** Who vouched for an installed bundle: a trusted key (by its position and SPKI SHA-256), or nobody. */
export type InstalledSignature =
  | { signed: true; keyIndex: number; fingerprint: string }
  | { signed: false };

/** How this host treats bundle signatures (PluginHostOptions.requireSignature and trustedKeys). */
export interface SignaturePolicy {
  requireSignature: boolean;
  /** SHA-256 of each trusted key's SPKI DER, hex, in the order the options gave them. */
  trustedKeys: string[];
}

/** One move of a plugin's state (plugin-states.ts). */
export interface StateChange {
  pluginId: string;
  from: PluginState;
  state: PluginState;
  /** The move of the table that was made. */
  reason: Reason;
  lastError: string | null;
  /** The desired generation the move was made under. */
  generation: number;
  /** The node whose plugin moved: this host's, or (on a shared store) another's. */
  nodeId?: string;
}

/** A published event, as the host's 'event' listeners get it. */
export interface PublishedEvent {
  topic: string;
  payload: unknown;
  /** The publishing plugin, or null for the host. */
  source: string | null;
  /** The node it was published on. */
  nodeId: string;
}

export type { PluginState, PluginConfig };
