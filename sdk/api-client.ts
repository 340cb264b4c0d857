/**
 * ctx.api: the host's API service (dialled over the broker at activation)
 * wrapped in typed, promise-based helpers. JSON is encoded here so authors
 * never see bytes fields unless they ask for them (kv.getBytes/setBytes).
 */
import type * as grpc from '@grpc/grpc-js';
import type { APIClient } from '../src/gen/plughost/v1/API';
import type { PluginLogger } from '../src/protocol/plugin-log';
import { jsonBytes, parseJsonBytes } from '../src/protocol/contract';
import { ApiCallTooLarge, ApiStream, emptyApiResponse } from '../src/protocol/api-stream';
import { Errors } from '../src/errors';
import { checkKvTtl, messageTooLarge } from '../src/protocol/limits';
import { createCluster } from './cluster';
import type { ApiMap, HookOutcome, KVPage, KVSetOptions, KVStore, LogLevel, Logger, Manifest, PluginApi, SettingsMap } from './types';

/** How long one API call may take before it fails. */
const API_CALL_TIMEOUT_MS = 30_000;

/** An API call the host refused or failed; `code` is the gRPC status name (e.g. "PERMISSION_DENIED"). */
export class PluginApiError extends Error {
  constructor(readonly method: string, readonly code: string, message: string) {
    super(`${method}: ${message}`);
    this.name = 'PluginApiError';
  }
}

const STATUS_NAMES: Record<number, string> = {
  1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 12: 'UNIMPLEMENTED',
  13: 'INTERNAL', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED',
};

type Callback<Res> = (err: grpc.ServiceError | null, res?: Res) => void;

/** Tracks log calls in flight, so a hook can wait for its logs to reach the host before it answers. */
export class PendingLogs {
  private readonly inFlight = new Set<Promise<void>>();

  add(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }
}

/** ctx.api for one activation, and what ends it: `close` cancels the activation's scheduled jobs and leases. */
export interface ActiveApi<Api extends ApiMap, Config extends SettingsMap> {
  api: PluginApi<Api, Config>;
  close(why: string): void;
}

export function createApi<Api extends ApiMap, Config extends SettingsMap>(
  client: APIClient,
  fallbackLog: PluginLogger,
  pending: PendingLogs,
  maxMessageBytes: number,
  streamed = false,
): ActiveApi<Api, Config> {
  const failed = (method: string, err: grpc.ServiceError): PluginApiError =>
    new PluginApiError(method, STATUS_NAMES[err.code] ?? String(err.code), messageTooLarge(err, 'API call', maxMessageBytes)?.message ?? (err.details || err.message));
  const unary = <Res>(method: string, req: object): Promise<Res> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: object, o: grpc.CallOptions, cb: Callback<Res>) => void>)[method];
      fn.call(client, req, { deadline: Date.now() + API_CALL_TIMEOUT_MS }, (err, res) => {
        if (err) reject(failed(method, err));
        else resolve(res as Res);
      });
    });
  // Opened at the first call, and again at the next call after it broke; the connection's end ends it.
  let stream: ApiStream | undefined;
  const overStream = async <Res>(method: string, request: object): Promise<Res> => {
    if (!stream?.open) stream = new ApiStream(client, maxMessageBytes);
    try {
      return ((await stream.call({ method, request }, API_CALL_TIMEOUT_MS)) ?? emptyApiResponse(method)) as Res;
    } catch (err) {
      // The same words as a unary call refused for its size: the limit, and the option that raises it.
      if (err instanceof ApiCallTooLarge) throw new PluginApiError(method, 'RESOURCE_EXHAUSTED', Errors.MESSAGE_TOO_LARGE('API call', err.bytes, err.limit, maxMessageBytes, err.message).message);
      throw failed(method, err as grpc.ServiceError);
    }
  };
  /** One API call: over the host's CallStream when it offers one (OnActivateRequest.api_features), else unary. */
  const call = streamed ? overStream : unary;

  const log = (level: LogLevel) => (message: string, fields?: Record<string, unknown>): void => {
    const sent = call('Log', { level, message, fields: fields ? jsonBytes(fields) : Buffer.alloc(0) }).then(
      () => undefined,
      (err: Error) => fallbackLog[level](message, { ...fields, api_log_error: err.message }),
    );
    pending.add(sent);
  };
  const logger: Logger = { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };

  const setBytes = async (key: string, value: Uint8Array, options: KVSetOptions<Uint8Array> = {}): Promise<boolean> => {
    let ttlMs: number;
    try {
      // Checked here: the wire field is unsigned, so a negative ttl would reach the host as a huge one.
      ttlMs = checkKvTtl(key, options.ttlMs);
    } catch (err) {
      throw new PluginApiError('KVSet', 'INVALID_ARGUMENT', (err as Error).message);
    }
    const compare = options.expected !== undefined || options.expectAbsent === true;
    const res = await call<{ ok: boolean }>('KVSet', {
      key,
      value: Buffer.from(value),
      ttl_ms: ttlMs,
      compare,
      expected: options.expected !== undefined ? Buffer.from(options.expected) : Buffer.alloc(0),
      expected_absent: options.expectAbsent === true,
    });
    return res.ok;
  };
  const getBytes = async (key: string): Promise<Uint8Array | undefined> => {
    const res = await call<{ found: boolean; value: Buffer }>('KVGet', { key });
    return res.found ? res.value : undefined;
  };
  const listPage = async (prefix = '', options: { pageSize?: number; pageToken?: string } = {}): Promise<KVPage> => {
    const res = await call<{ keys: string[]; next_page_token: string }>('KVList', {
      prefix,
      page_size: options.pageSize ?? 0,
      page_token: options.pageToken ?? '',
    });
    return { keys: res.keys, nextPageToken: res.next_page_token };
  };

  const kv: KVStore = {
    async get<T>(key: string): Promise<T | undefined> {
      const bytes = await getBytes(key);
      return bytes === undefined ? undefined : parseJsonBytes<T>(bytes, undefined as T);
    },
    set<T>(key: string, value: T, options: KVSetOptions<T> = {}): Promise<boolean> {
      const { expected, ...rest } = options;
      return setBytes(key, jsonBytes(value), expected === undefined ? rest : { ...rest, expected: jsonBytes(expected) });
    },
    getBytes,
    setBytes,
    async delete(key: string): Promise<boolean> {
      return (await call<{ deleted: boolean }>('KVDelete', { key })).deleted;
    },
    async deleteAll(): Promise<number> {
      return Number((await call<{ deleted: string }>('KVDeleteAll', {})).deleted);
    },
    async *list(prefix = '', options: { pageSize?: number } = {}): AsyncIterableIterator<string> {
      let pageToken = '';
      do {
        const page = await listPage(prefix, { pageSize: options.pageSize, pageToken });
        yield* page.keys;
        pageToken = page.nextPageToken;
      } while (pageToken);
    },
    listPage,
  };

  const { cluster, close } = createCluster(call, logger);

  const api: PluginApi<Api, Config> = {
    async getConfiguration() {
      return parseJsonBytes<Config>((await call<{ configuration: Buffer }>('GetConfiguration', {})).configuration, {} as Config);
    },
    async saveConfiguration(config: Config) {
      await call('SaveConfiguration', { configuration: jsonBytes(config) });
    },
    async getManifest() {
      return parseJsonBytes<Manifest>((await call<{ manifest: Buffer }>('GetManifest', {})).manifest, {} as Manifest);
    },
    async getHostVersion() {
      return (await call<{ version: string }>('GetHostVersion', {})).version;
    },
    log: logger,
    kv,
    events: {
      async publish(topic: string, payload?: unknown) {
        await call('PublishEvent', { topic, payload: jsonBytes(payload) });
      },
    },
    plugins: {
      async call<T>(pluginId: string, hook: string, payload: T): Promise<HookOutcome<T>> {
        const res = await call<{ payload: Buffer; rejected: boolean; reason: string }>('CallPlugin', {
          plugin_id: pluginId,
          hook,
          payload: jsonBytes(payload),
        });
        if (res.rejected) return { rejected: true, reason: res.reason };
        return { rejected: false, payload: parseJsonBytes<T>(res.payload, payload) };
      },
    },
    async invoke<M extends keyof Api & string>(method: M, ...args: Parameters<Api[M]>): Promise<Awaited<ReturnType<Api[M]>>> {
      const res = await call<{ payload: Buffer }>('Invoke', { method, payload: jsonBytes(args[0]) });
      return parseJsonBytes<Awaited<ReturnType<Api[M]>>>(res.payload, undefined as Awaited<ReturnType<Api[M]>>);
    },
    cluster,
  };
  return { api, close };
}
