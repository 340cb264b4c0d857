/**
 * An in-memory API service for the test harness: the host's side of the
 * contract with KV (expiry, compare-and-set, paging), configuration, log
 * capture, event capture, and Invoke and CallPlugin routed to the test's own
 * functions with the manifest's permission checks (the runtime's own rules). It follows api.proto's rules and errors so
 * a plugin tested here behaves the same under a real host, and serves every method both unary and over
 * API.CallStream, as the host does.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors, PlughostError } from '../../src/errors';
import { ApiStreamServer, type ApiDone, type ApiRun } from '../../src/protocol/api-stream-server';
import { MemoryCluster, clusterHandlers, type CallState } from '../../src/protocol/cluster-contract';
import { statusError } from '../../src/protocol/contract';
import { checkKvTtl } from '../../src/protocol/limits';
import { HOST_TOPIC_PREFIX, allowsCall, allowsInvoke, callPermission, isHostTopic } from '../../src/manifest/permissions';
import type { HookOutcome, JsonValue, LogLevel, Manifest, SettingsMap } from '../types';

const MAX_KEY_BYTES = 256;
const MAX_VALUE_BYTES = 1024 * 1024;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: Record<string, unknown>;
}

export interface PublishedEvent {
  topic: string;
  payload: JsonValue;
}

export interface Invocation {
  method: string;
  args: JsonValue;
  /** False when the manifest's permissions did not allow it (the call was refused). */
  allowed: boolean;
  result?: JsonValue;
  error?: string;
}

/** The integrator's methods as the test supplies them. */
export type ApiImplementation = { [method: string]: (args: never) => unknown };

export interface MemoryHostOptions {
  manifest: Manifest;
  config: SettingsMap;
  hostVersion: string;
  api: ApiImplementation;
  /** Answers the plugin's plugins.call once the manifest's "plugins.call:" permissions allow it; unknown plugins are NOT_FOUND. */
  callPlugin?: (pluginId: string, hook: string, payload: JsonValue) => HookOutcome<JsonValue> | Promise<HookOutcome<JsonValue>>;
  /** Delivers a saved configuration back to the plugin (OnConfigurationChange). */
  deliverConfiguration: (config: SettingsMap) => Promise<void>;
  /** Locks and job tickets; pass one MemoryCluster to several test hosts to see them contend. */
  cluster?: MemoryCluster;
  /** The message size limit, which CallStream keeps its answers under. */
  maxMessageBytes: number;
}

interface Entry {
  value: Buffer;
  /** Epoch ms after which the entry is gone; Infinity for no expiry. */
  expiresAt: number;
}

type Unary = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/** The runtime's codes for the errors the shared contract code throws (src/runtime/api-service.ts grpcCodeFor). */
const CODES: Record<number, grpc.status> = { 400: grpc.status.INVALID_ARGUMENT, 412: grpc.status.FAILED_PRECONDITION };

function asServiceError(err: grpc.ServiceError | PlughostError): grpc.ServiceError {
  if (err instanceof PlughostError) return statusError(CODES[err.status] ?? grpc.status.UNKNOWN, err.message);
  return err.code !== undefined ? err : statusError(grpc.status.UNKNOWN, String((err as Error).message));
}

function parse(bytes: Buffer | undefined): JsonValue {
  if (!bytes || bytes.length === 0) return null;
  try {
    return JSON.parse(bytes.toString('utf8')) as JsonValue;
  } catch {
    throw statusError(grpc.status.INVALID_ARGUMENT, 'payload: expected JSON');
  }
}

/** KV private to one plugin, with lazy expiry (no timers to leak). */
export class MemoryKV {
  private readonly entries = new Map<string, Entry>();

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  get(key: string): Buffer | undefined {
    return this.live(key)?.value;
  }

  set(key: string, value: Buffer, ttlMs = 0, compare?: { expected?: Buffer; absent?: boolean }): boolean {
    checkKey(key);
    if (value.length > MAX_VALUE_BYTES) throw statusError(grpc.status.INVALID_ARGUMENT, `value: ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
    if (compare) {
      const current = this.live(key);
      if (compare.absent ? current !== undefined : !current || !current.value.equals(compare.expected ?? Buffer.alloc(0))) return false;
    }
    this.entries.set(key, { value: Buffer.from(value), expiresAt: ttlMs > 0 ? Date.now() + ttlMs : Infinity });
    return true;
  }

  delete(key: string): boolean {
    const had = this.live(key) !== undefined;
    this.entries.delete(key);
    return had;
  }

  deleteAll(): number {
    const n = this.keys().length;
    this.entries.clear();
    return n;
  }

  /** Live keys with `prefix`, in byte order. */
  keys(prefix = ''): string[] {
    return [...this.entries.keys()]
      .filter((k) => k.startsWith(prefix) && this.live(k) !== undefined)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }
}

function checkKey(key: string): void {
  const n = Buffer.byteLength(key);
  if (n < 1 || n > MAX_KEY_BYTES) throw statusError(grpc.status.INVALID_ARGUMENT, `key: expected 1-${MAX_KEY_BYTES} bytes of UTF-8, got ${n}`);
}

/** Everything the harness records, and the API service implementation over it. */
export class MemoryHost {
  readonly kv = new MemoryKV();
  readonly logs: LogRecord[] = [];
  readonly published: PublishedEvent[] = [];
  readonly invocations: Invocation[] = [];
  /** Locks and job tickets, on this process's clock; a test may share one between hosts to run a plugin's instances side by side. */
  readonly cluster: MemoryCluster;
  config: SettingsMap;
  /** API.CallStream streams the plugin opened, and calls it made on them. */
  apiStreamsOpened = 0;
  apiStreamCalls = 0;
  /** The CallStream side of implementation(), to end its streams. */
  apiStreams: ApiStreamServer | undefined;

  constructor(private readonly options: MemoryHostOptions) {
    this.config = { ...options.config };
    this.cluster = options.cluster ?? new MemoryCluster();
  }

  implementation(): grpc.UntypedServiceImplementation {
    const o = this.options;
    const handlers: Record<string, (req: Record<string, unknown>, call: CallState) => unknown> = {
      GetConfiguration: () => ({ configuration: Buffer.from(JSON.stringify(this.config)) }),
      SaveConfiguration: async (req) => {
        const config = parse(req.configuration as Buffer);
        if (!config || typeof config !== 'object' || Array.isArray(config)) throw statusError(grpc.status.INVALID_ARGUMENT, 'configuration: expected a JSON object');
        await o.deliverConfiguration(config as SettingsMap);
        return {};
      },
      GetManifest: () => ({ manifest: Buffer.from(JSON.stringify(o.manifest)) }),
      GetHostVersion: () => ({ version: o.hostVersion }),
      Log: (req) => {
        const level = LEVELS.includes(req.level as LogLevel) ? (req.level as LogLevel) : 'info';
        const fields = parse(req.fields as Buffer);
        this.logs.push({ level, message: String(req.message), fields: fields && typeof fields === 'object' && !Array.isArray(fields) ? fields : {} });
        return {};
      },
      KVSet: (req) => {
        const compare = req.compare ? { expected: req.expected as Buffer, absent: Boolean(req.expected_absent) } : undefined;
        return { ok: this.kv.set(String(req.key), req.value as Buffer, checkKvTtl(String(req.key), req.ttl_ms), compare) };
      },
      KVGet: (req) => {
        checkKey(String(req.key));
        const value = this.kv.get(String(req.key));
        return { found: value !== undefined, value: value ?? Buffer.alloc(0) };
      },
      KVDelete: (req) => ({ deleted: this.kv.delete(String(req.key)) }),
      KVList: (req) => {
        const size = Number(req.page_size) || DEFAULT_PAGE;
        if (size > MAX_PAGE) throw statusError(grpc.status.INVALID_ARGUMENT, `page_size: expected 1-${MAX_PAGE}, got ${size}`);
        const token = String(req.page_token ?? '');
        const all = this.kv.keys(String(req.prefix ?? '')).filter((k) => !token || Buffer.compare(Buffer.from(k), Buffer.from(token)) > 0);
        const keys = all.slice(0, size);
        return { keys, next_page_token: all.length > size ? keys[keys.length - 1] : '' };
      },
      KVDeleteAll: () => ({ deleted: this.kv.deleteAll() }),
      PublishEvent: (req) => {
        const topic = String(req.topic);
        if (topic.length < 1 || topic.length > 200) throw statusError(grpc.status.INVALID_ARGUMENT, 'topic: expected 1-200 characters');
        if (isHostTopic(topic)) throw statusError(grpc.status.PERMISSION_DENIED, Errors.TOPIC_RESERVED(o.manifest.id, topic, HOST_TOPIC_PREFIX).message);
        this.published.push({ topic, payload: parse(req.payload as Buffer) });
        return {};
      },
      CallPlugin: async (req) => {
        const id = String(req.plugin_id);
        if (!allowsCall(o.manifest.permissions, o.manifest.id, id)) {
          throw statusError(grpc.status.PERMISSION_DENIED, Errors.CALL_NOT_PERMITTED(o.manifest.id, id, callPermission(id)).message);
        }
        if (!o.callPlugin) throw statusError(grpc.status.NOT_FOUND, `no plugin with id ${JSON.stringify(id)} is running`);
        const payload = parse(req.payload as Buffer);
        const out = await o.callPlugin(id, String(req.hook), payload);
        return out.rejected
          ? { rejected: true, reason: out.reason, payload: Buffer.alloc(0) }
          : { rejected: false, reason: '', payload: Buffer.from(JSON.stringify(out.payload)) };
      },
      Invoke: async (req) => this.invoke(String(req.method), parse(req.payload as Buffer)),
      ...clusterHandlers(this.cluster, o.manifest.id),
    };
    const runs = new Map<string, ApiRun>();
    for (const [name, fn] of Object.entries(handlers)) {
      runs.set(name, (request, call, done) => {
        Promise.resolve()
          .then(() => fn(request, call))
          .then((res) => done(null, res as object), (err: grpc.ServiceError | PlughostError) => done(asServiceError(err)));
      });
    }
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, run] of runs) impl[name] = ((call, cb) => run(call.request, call, cb as ApiDone)) as Unary;
    impl.CallStream = this.streams(runs).serve;
    return impl;
  }

  /** The host's side of API.CallStream over the same methods as the unary ones; made by implementation(). */
  private streams(runs: Map<string, ApiRun>): ApiStreamServer {
    this.apiStreams = new ApiStreamServer(runs, {
      maxMessageBytes: this.options.maxMessageBytes,
      opened: { inc: () => void this.apiStreamsOpened++ },
      calls: { inc: () => void this.apiStreamCalls++ },
    });
    return this.apiStreams;
  }

  private async invoke(method: string, args: JsonValue): Promise<{ payload: Buffer }> {
    if (!allowsInvoke(this.options.manifest.permissions, method)) {
      this.invocations.push({ method, args, allowed: false });
      throw statusError(grpc.status.PERMISSION_DENIED, Errors.PERMISSION_DENIED(this.options.manifest.id, method).message);
    }
    const fn = Object.prototype.hasOwnProperty.call(this.options.api, method) ? this.options.api[method] : undefined;
    if (!fn) {
      this.invocations.push({ method, args, allowed: true, error: 'unknown method' });
      throw statusError(grpc.status.NOT_FOUND, `the host has no API method ${JSON.stringify(method)}`);
    }
    try {
      const result = (await (fn as (a: JsonValue) => unknown)(args)) as JsonValue;
      this.invocations.push({ method, args, allowed: true, result: result ?? null });
      return { payload: Buffer.from(JSON.stringify(result ?? null)) };
    } catch (err) {
      this.invocations.push({ method, args, allowed: true, error: (err as Error).message });
      throw statusError(grpc.status.UNKNOWN, `${method} failed: ${(err as Error).message}`);
    }
  }
}
