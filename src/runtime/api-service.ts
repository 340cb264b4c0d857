/**
 * The API service the host serves to one plugin over the broker. The caller's
 * identity is the supervisor this implementation was built for, never a
 * request field, so a plugin can only ever touch its own KV and configuration.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors, PlughostError } from '../errors';
import { HOST_TOPIC_PREFIX, allowsCall, allowsInvoke, callPermission, isHostTopic } from '../manifest/permissions';
import type { RunHookResponse } from '../gen/plughost/v1/RunHookResponse';
import { clusterHandlers, type CallState } from '../protocol/cluster-contract';
import { apiServiceDefinition } from '../protocol/api-stream';
import type { ServiceRegistration } from '../protocol/broker';
import { jsonBytes, parseJsonBytes } from '../protocol/contract';
import { checkKvTtl } from '../protocol/limits';
import { ApiStreamServer, type ApiDone, type ApiRun, type ApiStatus } from '../protocol/api-stream-server';
import type { LogLevel } from '../protocol/log-lines';
import type { Store } from '../store/store';
import { secondsSince, type RuntimeMetrics } from './metrics';
import { errorMessage, type PluginSupervisor } from './supervisor';
import type { ApiMethods, PluginConfig } from './types';

export const MAX_KV_KEY_BYTES = 256;
export const MAX_KV_VALUE_BYTES = 1024 * 1024;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const LEVELS = new Set<LogLevel>(['trace', 'debug', 'info', 'warn', 'error']);

/** What the API needs from the host beyond the store. */
export interface ApiHost {
  readonly store: Store;
  readonly metrics: RuntimeMetrics;
  readonly hostVersion: string;
  readonly api: ApiMethods;
  saveConfig(pluginId: string, config: unknown): Promise<PluginConfig>;
  publish(topic: string, payload: unknown, sourcePluginId: string | null): Promise<void>;
  callPlugin(callerId: string, targetId: string, hook: string, payload: unknown): Promise<RunHookResponse>;
}

type Handler = (request: Record<string, unknown>, call: CallState) => Promise<object>;

/** PlughostError statuses as gRPC codes, so a plugin in any language can tell them apart. */
export function grpcCodeFor(err: unknown): grpc.status {
  if (err instanceof PlughostError) {
    switch (err.status) {
      case 400:
      case 413:
        return grpc.status.INVALID_ARGUMENT;
      case 401:
      case 403:
        return grpc.status.PERMISSION_DENIED;
      case 404:
        return grpc.status.NOT_FOUND;
      case 409:
        return grpc.status.ABORTED;
      case 412:
      case 502:
        return grpc.status.FAILED_PRECONDITION;
      case 503:
        return grpc.status.UNAVAILABLE;
      case 504:
        return grpc.status.DEADLINE_EXCEEDED;
      default:
        return grpc.status.INTERNAL;
    }
  }
  const code = (err as grpc.ServiceError)?.code;
  return typeof code === 'number' ? code : grpc.status.UNKNOWN;
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KV_KEY_BYTES) throw Errors.KV_BAD_KEY(String(key ?? ''));
  return key;
}

function pageToken(key: string | null): string {
  return key === null ? '' : Buffer.from(key).toString('base64url');
}

export interface ApiServiceOptions {
  /** The connection's message size limit: no batch of answers on a CallStream crosses it. */
  maxMessageBytes: number;
  /** Told of every call as it starts; the function it returns hears the outcome (the conformance double records calls with it). */
  observe?(method: string): (status: ApiStatus | null) => void;
}

/** The API served to one plugin: unary methods and CallStream, one code path per method. */
export interface ApiService {
  registration: ServiceRegistration;
  /** Ends the plugin's open CallStreams with UNAVAILABLE `why`, so calls in flight fail at once. */
  close(why: string): void;
}

/**
 * Every API method of one plugin, each called the same way whether it came
 * as a unary call or on CallStream: the same checks, permissions, metrics and
 * mapping of errors to gRPC codes.
 */
export function apiService(host: ApiHost, plugin: PluginSupervisor, options: ApiServiceOptions): ApiService {
  const id = plugin.id;
  const { store } = host;
  const handlers: Record<string, Handler> = {
    GetConfiguration: async () => ({ configuration: jsonBytes(plugin.record.config) }),
    SaveConfiguration: async (req) => {
      await host.saveConfig(id, parseJson(req.configuration, 'configuration'));
      return {};
    },
    GetManifest: async () => ({ manifest: jsonBytes(plugin.record.manifest) }),
    GetHostVersion: async () => ({ version: host.hostVersion }),
    Log: async (req) => {
      const level = LEVELS.has(req.level as LogLevel) ? (req.level as LogLevel) : 'info';
      const fields = safeFields(req.fields as Buffer);
      plugin.log(level, String(req.message ?? ''), fields, 'api');
      return {};
    },
    KVSet: async (req) => {
      const key = checkKey(req.key);
      const value = req.value as Buffer;
      if (value.length > MAX_KV_VALUE_BYTES) throw Errors.KV_VALUE_TOO_LARGE(key, value.length, MAX_KV_VALUE_BYTES);
      const ttlMs = checkKvTtl(key, req.ttl_ms);
      const compare = req.compare ? { expected: req.expected_absent ? null : (req.expected as Buffer) } : undefined;
      return { ok: await store.kvSet(id, key, value, { ttlMs, compare }) };
    },
    KVGet: async (req) => {
      const value = await store.kvGet(id, checkKey(req.key));
      return value === undefined ? { found: false } : { found: true, value };
    },
    KVDelete: async (req) => ({ deleted: await store.kvDelete(id, checkKey(req.key)) }),
    KVList: async (req) => {
      const size = Number(req.page_size) || DEFAULT_PAGE;
      if (size < 1 || size > MAX_PAGE) throw Errors.BAD_API_REQUEST('page_size', `1-${MAX_PAGE}, or 0 for ${DEFAULT_PAGE}`);
      const token = String(req.page_token ?? '');
      const after = token ? Buffer.from(token, 'base64url').toString('utf8') : undefined;
      const page = await store.kvList(id, String(req.prefix ?? ''), size, after);
      return { keys: page.keys, next_page_token: pageToken(page.next) };
    },
    KVDeleteAll: async () => ({ deleted: String(await store.kvDeleteAll(id)) }),
    PublishEvent: async (req) => {
      const topic = String(req.topic ?? '');
      if (topic.length < 1 || topic.length > 200) throw Errors.BAD_API_REQUEST('topic', '1-200 characters');
      if (isHostTopic(topic)) throw Errors.TOPIC_RESERVED(id, topic, HOST_TOPIC_PREFIX);
      // Answered once every node can see it: on a shared store, once the feed row is committed.
      await host.publish(topic, parseJson(req.payload, 'payload'), id);
      return {};
    },
    CallPlugin: async (req) => {
      const target = String(req.plugin_id ?? '');
      // Checked before anything about the target, so a refused plugin cannot learn which plugins are installed.
      if (!allowsCall(plugin.record.manifest.permissions, id, target)) throw Errors.CALL_NOT_PERMITTED(id, target, callPermission(target));
      return host.callPlugin(id, target, String(req.hook ?? ''), parseJson(req.payload, 'payload'));
    },
    Invoke: async (req) => {
      const method = String(req.method ?? '');
      if (!allowsInvoke(plugin.record.manifest.permissions, method)) throw Errors.PERMISSION_DENIED(id, method);
      const fn = Object.hasOwn(host.api, method) ? host.api[method] : undefined;
      if (typeof fn !== 'function') throw Errors.API_METHOD_UNKNOWN(method);
      const result = await (fn as (args: unknown, caller: { pluginId: string }) => unknown)(parseJson(req.payload, 'payload'), { pluginId: id });
      return { payload: jsonBytes(result) };
    },
    ...clusterHandlers(store, id),
  };

  const runs = new Map<string, ApiRun>();
  for (const [method, handler] of Object.entries(handlers)) {
    const series = host.metrics.apiSeries(id, method);
    runs.set(method, (request, call, done) => {
      const started = performance.now();
      const observed = options.observe?.(method);
      handler(request, call).then(
        (reply) => {
          series.ok.observe(secondsSince(started));
          observed?.(null);
          done(null, reply);
        },
        (err: unknown) => {
          series.error.observe(secondsSince(started));
          const status = { code: grpcCodeFor(err), details: errorMessage(err) };
          observed?.(status);
          done(status);
        },
      );
    });
  }

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [method, run] of runs) {
    implementation[method] = (call: grpc.ServerUnaryCall<Record<string, unknown>, object>, callback: grpc.sendUnaryData<object>) =>
      run(call.request, call, callback as ApiDone);
  }
  const streams = new ApiStreamServer(runs, {
    maxMessageBytes: options.maxMessageBytes,
    opened: host.metrics.apiStreamsOpened.labels({ plugin: id }),
    calls: host.metrics.apiStreamCalls.series({ plugin: id }),
    batch: (work) => store.batch(work),
  });
  implementation.CallStream = streams.serve;
  return { registration: { definition: apiServiceDefinition(), implementation }, close: (why) => streams.close(why) };
}

function parseJson(bytes: unknown, field: string): unknown {
  try {
    return parseJsonBytes(bytes as Buffer, null);
  } catch (err) {
    throw Errors.BAD_API_REQUEST(field, `JSON bytes (${(err as Error).message})`);
  }
}

function safeFields(bytes: Buffer | undefined): Record<string, unknown> {
  try {
    const parsed = parseJsonBytes<unknown>(bytes, {});
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
  } catch {
    return { fields: Buffer.from(bytes ?? []).toString('utf8').slice(0, 1000) };
  }
}
