/**
 * plughost/sdk/testing: runs a plugin as a real child process over real gRPC
 * against an in-memory host, so an author can test hooks, HTTP routes, KV and
 * events, and inspect what the plugin logged, published and invoked. A `.ts`
 * entry is bundled first exactly as `plughost pack` bundles it. Hook calls and
 * API calls take the streams a real host uses by default, so a plugin's tests
 * run its production data path; options force the unary calls.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { HooksClient } from '../src/gen/plughost/v1/Hooks';
import type { BrokerServer } from '../src/protocol/broker';
import { PluginClient } from '../src/protocol/client';
import { contract, parseJsonBytes } from '../src/protocol/contract';
import { API_STREAM_FEATURE, apiServiceDefinition } from '../src/protocol/api-stream';
import { HookTransport } from '../src/protocol/hook-transport';
import type { PluginLogRecord } from '../src/protocol/log-lines';
import { callPermission } from '../src/manifest/permissions';
import { ServeHttpCallExchange, type ExchangeReceiver, type PluginHttpExchange } from '../src/protocol/http-exchange';
import { HttpExchangeStream } from '../src/protocol/http-exchange-stream';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES, messageTooLarge, resolveMaxMessageBytes } from '../src/protocol/limits';
import { nodeEntryArgs } from '../src/protocol/process';
import { TS_ENTRY, bundlePlugin } from './build';
import { MemoryHost, type ApiImplementation, type Invocation, type LogRecord, type MemoryHostOptions, type PublishedEvent } from './test-host/memory-api';
import { fetchThroughPlugin, type TestRequestInit } from './test-host/http-client';
import { matchesTopic } from './topics';
import type { ApiMap, HookMap, HookOutcome, JsonValue, Manifest, SettingsMap } from './types';

export type { Invocation, LogRecord, PublishedEvent, TestRequestInit };
/** In-memory locks and job tickets; share one between test hosts to run several instances of a plugin against each other. */
export { MemoryCluster } from '../src/protocol/cluster-contract';

export interface TestHostOptions<Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> {
  /** Configuration over the settings schema's defaults. */
  config?: Partial<Config>;
  /** The integrator's API methods the plugin may invoke (the manifest's permissions still apply). */
  api?: { [M in keyof Api]?: (args: Parameters<Api[M]>[0]) => ReturnType<Api[M]> | Promise<Awaited<ReturnType<Api[M]>>> };
  /** Default: the plugin.json found from the entry's folder upward, else a minimal manifest allowing every `api` method (and every plugin call when `callPlugin` is given). */
  manifest?: Manifest;
  hostVersion?: string;
  /** Answers the plugin's `api.plugins.call`; the manifest's "plugins.call:" permissions still apply. */
  callPlugin?: MemoryHostOptions['callPlugin'];
  /** Locks and job tickets behind `api.cluster`; default a fresh one per test host. */
  cluster?: MemoryHostOptions['cluster'];
  startTimeoutMs?: number;
  /** Deadline of each hook call. Default 10 s. */
  hookTimeoutMs?: number;
  /** The gRPC message size limit, as PluginHost's `defaults.maxMessageBytes`. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * How `fetch` reaches a plugin that offers ServeHTTPStream, as PluginHost's
   * `defaults.httpTransport`: 'stream' (default, as a host sends it) or 'per-request'.
   */
  httpTransport?: 'stream' | 'per-request';
  /**
   * How hook calls reach the plugin, as PluginHost's `defaults.hookTransport`:
   * 'stream' (default: over RunHookBatchStream or RunHookStream when the plugin
   * lists one, as a host sends them) or 'unary' (RunHook for every call).
   */
  hookTransport?: 'stream' | 'unary';
  /**
   * Whether the plugin is offered API.CallStream, as PluginHost's
   * `defaults.apiTransport`: 'stream' (default: the SDK then makes its API
   * calls over it, as under a host) or 'unary'.
   */
  apiTransport?: 'stream' | 'unary';
}

export interface HookCallOptions {
  requestId?: string;
  userId?: string;
  values?: Record<string, string>;
  /** Runs the hook as if this plugin had called it through `api.plugins.call` (the handler's `ctx.caller`). */
  caller?: string;
  /** Overrides the host's `hookTransport` for this call: "stream" over the stream the plugin lists, "unary" as RunHook. */
  via?: 'unary' | 'stream';
}

export interface TestHost<Hooks extends HookMap = HookMap> {
  readonly pluginId: string;
  /** The plugin's process id. */
  readonly pid: number;
  readonly implemented: { methods: string[]; hooks: string[]; eventTopics: string[] };
  /** Runs a hook as a filter would; an unchanged payload comes back as sent. */
  runHook<K extends keyof Hooks & string>(hook: K, payload: Hooks[K], options?: HookCallOptions): Promise<HookOutcome<Hooks[K]>>;
  /** Runs a hook as a notification: the result is dropped, a failure still throws. */
  notify<K extends keyof Hooks & string>(hook: K, payload: Hooks[K], options?: HookCallOptions): Promise<void>;
  /** An HTTP request through ServeHTTP; `path` is below the plugin's prefix ("/hello?x=1"). */
  fetch(path: string, init?: TestRequestInit): Promise<Response>;
  /** Delivers an event through OnEvent; resolves false (sending nothing) when no subscription matches. */
  publish(topic: string, payload?: JsonValue, sourcePluginId?: string): Promise<boolean>;
  /** A new configuration through OnConfigurationChange; it is kept only if the plugin accepts it. */
  configure(config: Partial<SettingsMap>): Promise<void>;
  deactivate(): Promise<void>;
  /**
   * Ends the hook stream and the API stream as a broken connection would: the
   * calls in flight on them fail at once with UNAVAILABLE `reason`, and the
   * next call on either side opens a new stream. For testing that a plugin
   * rides out a break.
   */
  breakStreams(reason?: string): void;
  /** Streams opened so far: hook streams by the host, API.CallStream streams by the plugin. */
  readonly streamsOpened: { hooks: number; api: number };
  readonly config: SettingsMap;
  /** The plugin's KV as stored, read directly. */
  readonly kv: {
    get<T = JsonValue>(key: string): T | undefined;
    getBytes(key: string): Buffer | undefined;
    set(key: string, value: unknown, ttlMs?: number): void;
    keys(prefix?: string): string[];
  };
  /** Records sent through the API's Log call. */
  readonly logs: readonly LogRecord[];
  /** The process's own stderr/stdout lines, parsed. */
  readonly output: readonly PluginLogRecord[];
  readonly published: readonly PublishedEvent[];
  readonly invocations: readonly Invocation[];
  /** Stops the plugin (Shutdown, then SIGKILL of its group) and removes every temp file. */
  close(): Promise<void>;
}

export async function createTestHost<Hooks extends HookMap = HookMap, Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap>(
  pluginEntry: string,
  options: TestHostOptions<Api, Config> = {},
): Promise<TestHost<Hooks>> {
  const entry = path.resolve(pluginEntry);
  const api = (options.api ?? {}) as ApiImplementation;
  const manifest = options.manifest ?? findManifest(entry) ?? defaultManifest(entry, [...Object.keys(api), ...(options.callPlugin ? [callPermission('*')] : [])]);
  const hookTimeoutMs = options.hookTimeoutMs ?? 10_000;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phsdk-'));
  const output: PluginLogRecord[] = [];
  let plugin: PluginClient | undefined;
  let apiServer: BrokerServer | undefined;
  let transports: Record<'stream' | 'unary', HookTransport> | undefined;
  let httpStream: HttpExchangeStream | undefined;
  let host: MemoryHost | undefined;
  const cleanup = async () => {
    transports?.stream.close('the test host closed');
    host?.apiStreams?.close('the test host closed');
    httpStream?.close('the test host closed');
    await apiServer?.close();
    await plugin?.kill();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const script = TS_ENTRY.test(entry) ? bundlePlugin(entry, path.join(tmp, 'plugin.js')).outFile : entry;
    plugin = await PluginClient.start({
      cmd: process.execPath,
      args: nodeEntryArgs(script),
      onLog: (r) => output.push(r),
      startTimeoutMs: options.startTimeoutMs,
      maxMessageBytes: options.maxMessageBytes,
    });
    const maxMessageBytes = resolveMaxMessageBytes(options.maxMessageBytes);
    const hooks = plugin.client(contract().Hooks) as unknown as HooksClient;
    const unary = <Req, Res>(method: string, req: Req): Promise<Res> =>
      new Promise((resolve, reject) => {
        const fn = (hooks as unknown as Record<string, (r: Req, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>)[method];
        fn.call(hooks, req, { deadline: Date.now() + hookTimeoutMs }, (err, res) =>
          err ? reject(messageTooLarge(err, `hook call ${method}`, maxMessageBytes) ?? err) : resolve(res as Res),
        );
      });

    const config = { ...defaults(manifest), ...options.config } as SettingsMap;
    host = new MemoryHost({
      manifest,
      config,
      hostVersion: options.hostVersion ?? '0.1.0',
      api,
      callPlugin: options.callPlugin,
      cluster: options.cluster,
      deliverConfiguration: (c) => configure(c),
      maxMessageBytes,
    });
    const memory = host;
    const configure = async (next: Partial<SettingsMap>) => {
      const merged = { ...defaults(manifest), ...next } as SettingsMap;
      await unary('OnConfigurationChange', { configuration: Buffer.from(JSON.stringify(merged)) });
      memory.config = merged;
    };
    const implementedRaw = await unary<object, { methods: string[]; hooks: string[]; event_topics: string[] }>('Implemented', {});
    const implemented = { methods: implementedRaw.methods, hooks: implementedRaw.hooks, eventTopics: implementedRaw.event_topics };
    const apiId = plugin.broker.nextId();
    apiServer = await plugin.broker.acceptAndServe(apiId, [{ definition: apiServiceDefinition(), implementation: memory.implementation() }]);
    await unary('OnActivate', {
      api_broker_id: apiId,
      plugin_id: manifest.id,
      manifest: Buffer.from(JSON.stringify(manifest)),
      configuration: Buffer.from(JSON.stringify(memory.config)),
      host_version: options.hostVersion ?? '0.1.0',
      api_features: options.apiTransport === 'unary' ? [] : [API_STREAM_FEATURE],
    });

    let hookStreamsOpened = 0;
    const transport = (streamed: boolean) =>
      new HookTransport(hooks, {
        streamed: streamed && (implemented.methods.includes('RunHookBatchStream') || implemented.methods.includes('RunHookStream')),
        batched: implemented.methods.includes('RunHookBatchStream'),
        maxMessageBytes,
        onStreamOpened: () => void hookStreamsOpened++,
        onStreamEnded: () => undefined,
      });
    transports = { stream: transport(true), unary: transport(false) };
    const hookTransport = options.hookTransport ?? 'stream';

    const outcome = <T>(sent: T, res: { payload: Buffer; rejected: boolean; reason: string }): HookOutcome<T> =>
      res.rejected
        ? { rejected: true, reason: res.reason }
        : { rejected: false, payload: parseJsonBytes<T>(res.payload, sent) };
    const runHook = async <T>(hook: string, payload: T, o: HookCallOptions = {}): Promise<HookOutcome<T>> => {
      const request = {
        hook,
        payload: Buffer.from(JSON.stringify(payload ?? null)),
        context: { request_id: o.requestId ?? '', user_id: o.userId ?? '', values: o.values ?? {}, caller_plugin_id: o.caller ?? '' },
      };
      const res = await transports![o.via ?? hookTransport]
        .call(request, hookTimeoutMs)
        .catch((err: unknown) => Promise.reject(messageTooLarge(err, 'hook call RunHook', maxMessageBytes) ?? err));
      return outcome(payload, res);
    };

    const streamed = implemented.methods.includes('ServeHTTPStream') && (options.httpTransport !== 'per-request' || !implemented.methods.includes('ServeHTTP'));
    const openExchange = (receiver: ExchangeReceiver): PluginHttpExchange => {
      if (!streamed) return new ServeHttpCallExchange(hooks.ServeHTTP(), receiver, () => undefined);
      httpStream ??= new HttpExchangeStream({ open: () => hooks.ServeHTTPStream(), windowBytes: DEFAULT_FLOW_CONTROL_WINDOW_BYTES, maxMessageBytes });
      return httpStream.open(receiver, () => undefined);
    };

    const running = plugin;
    return {
      pluginId: manifest.id,
      pid: running.pid,
      implemented,
      runHook,
      notify: async (hook, payload, o) => void (await runHook(hook, payload, o)),
      fetch: (p, init) => fetchThroughPlugin(openExchange, p, init),
      publish: async (topic, payload = null, source = '') => {
        if (!implemented.eventTopics.some((pattern) => matchesTopic(pattern, topic))) return false;
        await unary('OnEvent', { topic, payload: Buffer.from(JSON.stringify(payload)), source_plugin_id: source });
        return true;
      },
      configure,
      deactivate: async () => void (await unary('OnDeactivate', {})),
      breakStreams: (reason = 'the test host broke the streams') => {
        transports!.stream.interrupt(reason);
        memory.apiStreams?.interrupt(reason);
      },
      get streamsOpened() {
        return { hooks: hookStreamsOpened, api: memory.apiStreamsOpened };
      },
      get config() {
        return memory.config;
      },
      kv: {
        get: <T>(key: string) => {
          const v = memory.kv.get(key);
          return v === undefined ? undefined : (JSON.parse(v.toString('utf8')) as T);
        },
        getBytes: (key) => memory.kv.get(key),
        set: (key, value, ttlMs) => void memory.kv.set(key, Buffer.from(JSON.stringify(value)), ttlMs),
        keys: (prefix) => memory.kv.keys(prefix),
      },
      logs: memory.logs,
      output,
      published: memory.published,
      invocations: memory.invocations,
      close: async () => {
        if (running) await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function defaults(manifest: Manifest): SettingsMap {
  const out: SettingsMap = {};
  for (const s of manifest.settings_schema?.settings ?? []) if (s.default !== undefined) out[s.key] = s.default;
  return out;
}

/** The nearest plugin.json from the entry's folder up to the project root (the first folder with package.json). */
function findManifest(entry: string): Manifest | undefined {
  let dir = path.dirname(entry);
  for (;;) {
    const file = path.join(dir, 'plugin.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    const parent = path.dirname(dir);
    if (parent === dir || fs.existsSync(path.join(dir, 'package.json'))) return undefined;
    dir = parent;
  }
}

function defaultManifest(entry: string, methods: string[]): Manifest {
  return { id: 'test.plugin', name: 'test plugin', version: '0.0.0', server: { runtime: 'node', entry: path.basename(entry) }, permissions: methods };
}
