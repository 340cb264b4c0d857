/**
 * The types a plugin author writes against. They are written for authors: no
 * generated proto names appear here, and every generic has a default so a
 * plugin that types nothing still compiles.
 */
import type { PluginLogger } from '../src/protocol/plugin-log';
import type { Manifest, SettingValue } from '../src/manifest/types';

export type { Manifest, SettingValue };

/** Any value JSON can carry. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The integrator's hooks: hook name → payload type, e.g. `{ NoteWillBeSaved: Note }`. */
export type HookMap = { [hook: string]: unknown };

/**
 * The integrator's API methods: name → function type, e.g.
 * `{ getNote(args: { id: string }): Note }`. Only the shape is used; the
 * methods run in the host.
 */
export type ApiMap = { [method: string]: (args: never) => unknown };

/** The plugin's configuration: setting key → value, as the settings schema declares. */
export type SettingsMap = { [key: string]: SettingValue | undefined };

/** Levels of the API's Log call, lowest first. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Structured logging to the host, the same shape as the protocol layer's stderr logger; each record carries the plugin's id there. */
export type Logger = PluginLogger;

/** Options of a KV write. */
export interface KVSetOptions<V> {
  /** Time to live in milliseconds, up to MAX_KV_TTL_MS; omitted or 0 keeps the value until deleted. A negative one is refused (the wire field is unsigned). */
  ttlMs?: number;
  /** Write only if the current value equals this (compared as stored bytes; for JSON, the JSON text). */
  expected?: V;
  /** Write only if the key has no live value. */
  expectAbsent?: boolean;
}

/** One page of `kv.listPage`. */
export interface KVPage {
  keys: string[];
  /** Pass as `pageToken` for the next page; empty on the last page. */
  nextPageToken: string;
}

/** Key-value storage private to this plugin (keys 1-256 bytes, values up to 1 MiB). */
export interface KVStore {
  /** The JSON value at `key`, or undefined when it has none (or it expired). */
  get<T = JsonValue>(key: string): Promise<T | undefined>;
  /** Stores `value` as JSON; resolves false only when a compare (`expected`/`expectAbsent`) did not match. */
  set<T = JsonValue>(key: string, value: T, options?: KVSetOptions<T>): Promise<boolean>;
  getBytes(key: string): Promise<Uint8Array | undefined>;
  setBytes(key: string, value: Uint8Array, options?: KVSetOptions<Uint8Array>): Promise<boolean>;
  /** Resolves true when a live value was deleted. */
  delete(key: string): Promise<boolean>;
  /** Deletes every key of this plugin; resolves with how many. */
  deleteAll(): Promise<number>;
  /** Every key with `prefix`, in byte order, fetched a page at a time as you iterate. */
  list(prefix?: string, options?: { pageSize?: number }): AsyncIterableIterator<string>;
  listPage(prefix?: string, options?: { pageSize?: number; pageToken?: string }): Promise<KVPage>;
}

/** Options of `cluster.lock`. */
export interface LockOptions {
  /** How long the lease lasts without a refresh, 1-3600000 ms. The SDK refreshes it every ttlMs/3 while held. */
  ttlMs: number;
  /** How long to wait for a held lock to become free; omitted or 0 tries once. */
  waitMs?: number;
}

/**
 * A held lock. While held, the SDK refreshes it every ttlMs/3; if a refresh is
 * refused (the lease expired, e.g. the process stalled past its TTL) or cannot
 * reach the host before the lease ends, the lease is lost: `lost` turns true
 * and `signal` aborts with the reason. Stop work under the lock then, since
 * another holder may already have it.
 */
export interface Lease {
  readonly name: string;
  /**
   * The fencing token: larger than every token this lock name was granted
   * before, on every host sharing the store. Pass it with each write to the
   * resource the lock guards, and have that resource refuse a token lower than
   * the highest it has seen, so a holder that lost the lease without noticing
   * cannot overwrite its successor's work.
   */
  readonly token: number;
  /** When the lease ends unless refreshed, in ms since the epoch on the store's clock. */
  readonly expiresAt: number;
  /** Aborted when the lease is lost (not when it is released). */
  readonly signal: AbortSignal;
  readonly lost: boolean;
  /** Frees the lock for the next holder and stops refreshing. Resolves also when the lease was already lost. */
  release(): Promise<void>;
}

/** One run of a scheduled job. */
export interface JobRun {
  readonly name: string;
  /** floor(store clock / everyMs) at the start of the period this run claimed; unique per run across the cluster. */
  readonly period: number;
}

export interface ScheduledJob {
  /** Stops the timer; a run in progress finishes. Deactivation cancels every job. */
  cancel(): void;
}

/**
 * Cluster primitives: the same on one host with SQLite and on several hosts
 * sharing PostgreSQL. Lock and job names are this plugin's own (1-200 bytes);
 * every time is the store's clock, never this process's.
 */
export interface ClusterApi {
  /** The lease, or undefined when the lock stayed held by another for all of `waitMs`. */
  lock(name: string, options: LockOptions): Promise<Lease | undefined>;
  /**
   * Runs `fn` once per period of `everyMs` (10 ms to one week) across every
   * instance of this plugin: each instance claims the period's ticket and only
   * the one whose claim succeeds runs it. The first period is the current one.
   * An instance still running the previous period's `fn` does not claim, so
   * another may take the period. Errors thrown by `fn` are logged.
   */
  schedule(name: string, options: { everyMs: number }, fn: (run: JobRun) => void | Promise<void>): ScheduledJob;
  /** The store's clock, ms since the epoch. */
  now(): Promise<number>;
}

/** The outcome of a filter hook, as `plugins.call` reports it. */
export type HookOutcome<T> = { rejected: false; payload: T } | { rejected: true; reason: string };

/** The host's API, as this plugin sees it. `Api` types `invoke`, `Config` the configuration. */
export interface PluginApi<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> {
  getConfiguration(): Promise<Config>;
  /** Validated by the host against the settings schema, then delivered through onConfigurationChange. */
  saveConfiguration(config: Config): Promise<void>;
  getManifest(): Promise<Manifest>;
  getHostVersion(): Promise<string>;
  readonly log: Logger;
  readonly kv: KVStore;
  readonly events: {
    /** Delivers `payload` to every other plugin subscribed to `topic`, and to the integrator. Topics under "host." are the host's: PERMISSION_DENIED. */
    publish(topic: string, payload?: unknown): Promise<void>;
  };
  readonly plugins: {
    /**
     * Runs `hook` of another running plugin. A payload left unchanged comes back as sent.
     * The manifest's `permissions` must grant it ("plugins.call:<id>", "plugins.call:<prefix>.*"
     * or "plugins.call:*"), else PERMISSION_DENIED; the target sees this plugin as `ctx.caller`.
     */
    call<T = JsonValue>(pluginId: string, hook: string, payload: T): Promise<HookOutcome<T>>;
  };
  readonly cluster: ClusterApi;
  /** Calls the integrator's method; the manifest's `permissions` must list it. */
  invoke<M extends keyof Api & string>(method: M, ...args: Parameters<Api[M]>): Promise<Awaited<ReturnType<Api[M]>>>;
}

/** What every handler receives. */
export interface PluginContext<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> {
  readonly api: PluginApi<Api, Config>;
  /** Shorthand for `api.log`. */
  readonly log: Logger;
  readonly pluginId: string;
  readonly manifest: Manifest;
  readonly hostVersion: string;
  /** The current configuration, kept up to date by the SDK. */
  readonly config: Config;
}

/** Refuses a filter hook's payload; build one with `reject(reason)` or `ctx.reject(reason)`. */
export interface Rejection {
  readonly rejected: true;
  readonly reason: string;
}

/** Per-call details of a hook. */
export interface HookCall {
  readonly hook: string;
  readonly requestId: string;
  /** The user on whose behalf the hook runs, or ''. */
  readonly userId: string;
  readonly values: Readonly<Record<string, string>>;
}

export interface HookContext<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> extends PluginContext<Api, Config> {
  readonly call: HookCall;
  /**
   * The id of the plugin that ran this hook through `api.plugins.call`, as the
   * host knows it from that plugin's connection; undefined when the host or the
   * integrator called.
   */
  readonly caller: string | undefined;
  reject(reason: string): Rejection;
}

/**
 * A hook handler. Return the payload (changed or not) to pass it on, nothing
 * to leave it unchanged, or a Rejection to stop a filter chain. Throwing fails
 * the call (the host counts it as this plugin's failure). Notify hooks' results
 * are ignored.
 */
export type HookHandler<T, Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> = (
  payload: T,
  ctx: HookContext<Api, Config>,
) => T | Rejection | void | Promise<T | Rejection | void>;

export interface EventContext<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> extends PluginContext<Api, Config> {
  readonly topic: string;
  /** The publishing plugin's id, or '' when the host published. */
  readonly sourcePluginId: string;
}

export type EventHandler<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> = (
  payload: JsonValue,
  ctx: EventContext<Api, Config>,
) => void | Promise<void>;

/** Per-request details of an HTTP call beyond the standard Request. */
export interface HttpContext<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> extends PluginContext<Api, Config> {
  /** The authenticated user's id, or ''. */
  readonly userId: string;
  readonly remoteAddr: string;
}

/** Everything a plugin may define; each part is optional and `Implemented` lists what is there. */
export interface PluginDefinition<Hooks extends HookMap = HookMap, Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> {
  /** Runs once the host's API is connected; throwing fails activation with the message. */
  onActivate?(ctx: PluginContext<Api, Config>): void | Promise<void>;
  onDeactivate?(ctx: PluginContext<Api, Config>): void | Promise<void>;
  /** Throwing rejects the new configuration; the host keeps the old one. */
  onConfigurationChange?(config: Config, ctx: PluginContext<Api, Config>): void | Promise<void>;
  /** Requests to /plugins/<id>/...; `request.url`'s path is the part below the plugin's prefix. */
  serveHTTP?(request: Request, ctx: HttpContext<Api, Config>): Response | Promise<Response>;
  hooks?: { [K in keyof Hooks & string]?: HookHandler<Hooks[K], Api, Config> };
  /** Topic → handler; a topic is an exact name, a prefix ending in "*" ("notes.*"), or "*". */
  events?: { [topic: string]: EventHandler<Api, Config> };
}
