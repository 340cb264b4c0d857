/**
 * One plugin's life: launch through the protocol layer, Implemented, the API
 * on the broker, OnActivate; health checks; restart with backoff after a crash
 * or failed check; parking after too many failures in a window; stop with
 * OnDeactivate, then kill. Each launch has an attempt number so that the exit
 * of a process we already replaced or stopped is never mistaken for a crash.
 * Every change of state is a move of the table in plugin-states.ts; when to
 * restart and when to park is restart-policy.ts.
 */
import * as crypto from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import semver from 'semver';
import { Errors, PlughostError } from '../errors';
import type { BrokerServer } from '../protocol/broker';
import { API_STREAM_FEATURE } from '../protocol/api-stream';
import { PluginClient, type ExitInfo } from '../protocol/client';
import { callUnary, contract, jsonBytes, type HooksClient } from '../protocol/contract';
import type { PluginLogRecord } from '../protocol/log-lines';
import type { PluginRecord, PluginState } from '../store/store';
import type { ImplementedResponse__Output } from '../gen/plughost/v1/ImplementedResponse';
import { ServeHttpCallExchange, type ExchangeReceiver, type PluginHttpExchange } from '../protocol/http-exchange';
import { HttpExchangeStream, type SideChannelOptions } from '../protocol/http-exchange-stream';
import { SIDE_CHANNEL_CAPABILITY } from '../protocol/side-channel';
import { LogBuffer } from './log-buffer';
import { LogRateLimiter } from './log-limiter';
import { validateConfig } from '../manifest';
import { StderrTail } from '../protocol/startup';
import { MemoryGuard, launchCommand, memoryLimitOf } from './memory-limit';
import { PluginStates } from './plugin-states';
import { RestartPolicy } from './restart-policy';
import type { ApiService } from './api-service';
import { HookTransport } from '../protocol/hook-transport';
import { TransportWatch } from './transport-watch';
import type { PluginLogEntry, RuntimeDefaults, StateChange } from './types';

/** What a supervisor needs from its host. */
export interface SupervisorHost {
  readonly defaults: RuntimeDefaults;
  readonly hostVersion: string;
  /** Marks this host's plugin processes (see PluginClientOptions.instancePrefix). */
  readonly instancePrefix: string;
  /** The code-cache preload for node plugins (code-cache.ts), when the host uses one. */
  readonly codeCachePreload?: string;
  pluginDir(id: string): string;
  apiService(supervisor: PluginSupervisor): ApiService;
  onStateChange(change: StateChange): void;
  onLog(entry: PluginLogEntry): void;
  onRestart(id: string): void;
  /** A RunHookStream to the plugin was opened. */
  onHookStreamOpened(id: string): void;
  /** Plugin log lines dropped by the rate limit. */
  onLogsDropped(id: string, lines: number): void;
}

/** How often, at most, a "lines dropped" record is written while a plugin floods its logs. */
const DROP_REPORT_MS = 1_000;
/** Bound on the health check a connectivity change triggers: the point is to notice within seconds. */
const TRANSPORT_CHECK_TIMEOUT_MS = 2_000;

export interface Implemented {
  methods: Set<string>;
  hooks: Set<string>;
  topics: string[];
}

export class PluginSupervisor {
  /** State, last error and desire: changed only through its transition(). */
  readonly states: PluginStates;
  restarts = 0;
  implemented: Implemented = { methods: new Set(), hooks: new Set(), topics: [] };
  hooks: HooksClient | undefined;
  /** How hook calls reach the running launch; undefined while none runs. */
  hookTransport: HookTransport | undefined;
  readonly logs: LogBuffer<PluginLogEntry>;

  private client: PluginClient | undefined;
  /** The running launch's cgroup or watchdog; closed by teardown. */
  private guard: MemoryGuard | undefined;
  private transport: TransportWatch | undefined;
  private apiServer: BrokerServer | undefined;
  private apiService: ApiService | undefined;
  /** Bumped by every launch and by whatever ends one, so late news of an earlier launch is ignored. */
  private attempt = 0;
  private readonly restartPolicy: RestartPolicy;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private dropTimer: NodeJS.Timeout | undefined;
  private readonly limiter: LogRateLimiter;
  private stderrTail = new StderrTail();
  /** HTTP exchanges in progress: a stop lets them finish before the plugin is deactivated. */
  private readonly httpExchanges = new Set<PluginHttpExchange>();
  private onHttpDrained: (() => void) | undefined;
  /** The running launch's ServeHTTPStream exchanges, for a plugin that offers it; made on the first request. */
  private httpStream: HttpExchangeStream | undefined;
  private readonly httpExchangeClosed = (exchange: PluginHttpExchange): void => {
    this.httpExchanges.delete(exchange);
    if (this.httpExchanges.size === 0) this.onHttpDrained?.();
  };

  /** Set by enable({ inspect }): node runs this plugin under the inspector there until it is stopped. */
  inspect: string | undefined;

  constructor(
    private readonly host: SupervisorHost,
    public readonly record: PluginRecord,
  ) {
    this.states = new PluginStates(record, (change) => {
      this.noteMove(change);
      host.onStateChange(change);
    }, record.generation);
    this.restartPolicy = new RestartPolicy(host.defaults);
    this.logs = new LogBuffer(host.defaults.logBufferSize);
    this.limiter = new LogRateLimiter({ linesPerSecond: host.defaults.logLinesPerSecond, bytesPerSecond: host.defaults.logBytesPerSecond });
  }

  get pid(): number | undefined {
    return this.client?.pid;
  }

  get id(): string {
    return this.record.id;
  }

  get state(): PluginState {
    return this.states.state;
  }

  get lastError(): string | null {
    return this.states.lastError;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Deadline for one hook call to this plugin. */
  get hookTimeoutMs(): number {
    return this.record.manifest.limits?.hook_timeout_ms ?? this.host.defaults.hookTimeoutMs;
  }

  /** The gRPC message size limit of this plugin's connections. */
  get maxMessageBytes(): number {
    return this.host.defaults.maxMessageBytes;
  }

  /** Starts the plugin; throws (after recording failed_to_start) when activation fails. */
  async start(): Promise<void> {
    this.restartPolicy.reset();
    this.clearTimers();
    this.states.transition('starting', 'start', this.lastError);
    try {
      await this.launch();
    } catch (err) {
      // Unless a stop came in meanwhile: then not_running is what was asked for.
      if (this.state === 'starting') {
        this.clearTimers();
        this.states.transition('failed_to_start', 'activation_failed', errorMessage(err));
      }
      throw err;
    }
  }

  /** Whether the plugin serves HTTP at all (ServeHTTP, ServeHTTPStream or both). */
  get servesHttp(): boolean {
    return this.implemented.methods.has('ServeHTTP') || this.implemented.methods.has('ServeHTTPStream');
  }

  /**
   * Starts an HTTP exchange whose response goes to `receiver`: over the plugin's ServeHTTPStream
   * when it offers one (unless defaults.httpTransport is 'per-request' and it also offers
   * ServeHTTP), else over a ServeHTTP stream of its own. The caller has checked that the
   * plugin is running and serves HTTP.
   */
  openHttpExchange(receiver: ExchangeReceiver): PluginHttpExchange {
    const hooks = this.hooks!;
    const methods = this.implemented.methods;
    const streamed = methods.has('ServeHTTPStream') && (this.host.defaults.httpTransport === 'stream' || !methods.has('ServeHTTP'));
    let exchange: PluginHttpExchange;
    if (streamed) {
      this.httpStream ??= new HttpExchangeStream({
        open: () => hooks.ServeHTTPStream(),
        windowBytes: this.host.defaults.flowControlWindowBytes,
        maxMessageBytes: this.host.defaults.maxMessageBytes,
        onBroken: (message) => this.log('warn', `${message}; the next request opens a new stream`),
        sideChannel: this.sideChannel(),
      });
      exchange = this.httpStream.open(receiver, this.httpExchangeClosed);
    } else {
      exchange = new ServeHttpCallExchange(hooks.ServeHTTP(), receiver, this.httpExchangeClosed);
    }
    this.httpExchanges.add(exchange);
    return exchange;
  }

  /** Side channels for large bodies: when the plugin lists them, the host allows them and the plugin has a socket folder. */
  private sideChannel(): SideChannelOptions | undefined {
    const { httpSideChannel, httpSideChannelMinBytes } = this.host.defaults;
    const dir = this.client?.socketDir;
    if (!httpSideChannel || !dir || !this.implemented.methods.has(SIDE_CHANNEL_CAPABILITY)) return undefined;
    return { dir, minBytes: httpSideChannelMinBytes };
  }

  /**
   * Responses in progress finish with the plugin and its API still up (a handler
   * that reads its KV must not fail because a disable came in); past `httpDrainMs`
   * the rest are cut.
   */
  private async drainHttp(): Promise<void> {
    if (this.httpExchanges.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.host.defaults.httpDrainMs);
        this.onHttpDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onHttpDrained = undefined;
      for (const exchange of [...this.httpExchanges]) exchange.cancel();
    }
    // The plugin ends its side once it has seen the half-close.
    this.httpStream?.end();
  }

  /** Lets HTTP responses in progress finish, OnDeactivate under the hook deadline, then kill. Leaves the plugin not_running. */
  async stop(): Promise<void> {
    this.attempt++;
    this.clearTimers();
    const client = this.client;
    if (client) {
      this.states.transition('stopping', 'stop', this.lastError);
      await this.drainHttp();
      if (this.hooks && this.implemented.methods.has('OnDeactivate')) {
        await callUnary(this.hooks.OnDeactivate.bind(this.hooks), {}, this.hookTimeoutMs).catch((err) =>
          this.log('warn', `OnDeactivate failed: ${errorMessage(err)}`),
        );
      }
      const exit = await this.teardown('the plugin was stopped');
      if (exit) this.log('info', 'stopped', exit.signal ? { signal: exit.signal } : { exit_code: exit.code });
    }
    const failed = this.state === 'failed_to_start' || this.state === 'failed_to_stay_running';
    this.states.transition('not_running', 'stopped', failed ? this.lastError : null);
  }

  /** The host's line in the plugin's own log for the moves an author needs to see there; a restart and its reason are logged where it is scheduled. */
  private noteMove(change: StateChange): void {
    if (change.reason === 'activated') {
      const fields = { ...(this.pid ? { pid: this.pid } : {}), ...(this.restarts ? { restarts: this.restarts } : {}) };
      this.log('info', this.restarts ? 'restarted' : 'started', fields);
    } else if (change.reason === 'activation_failed') {
      this.log('error', `failed to start: ${change.lastError}`);
    } else if (change.reason === 'parked') {
      this.log('error', `parked as failed_to_stay_running: ${change.lastError}`);
    }
  }

  private async launch(): Promise<void> {
    const attempt = ++this.attempt;
    const { manifest } = this.record;
    this.implemented = { methods: new Set(), hooks: new Set(), topics: [] };
    // An install may carry over a configuration the new settings schema no longer accepts.
    const config = validateConfig(manifest.settings_schema, this.record.config);
    this.record.config = config;
    if (!manifest.server) {
      // A webapp-only plugin has no process: it is running as soon as it is enabled.
      this.states.transition('running', 'activated', null);
      return;
    }
    const wanted = manifest.min_host_version;
    if (wanted) {
      const range = semver.validRange(semver.valid(wanted) ? `>=${wanted}` : wanted);
      if (!range || !semver.satisfies(this.host.hostVersion, range, { includePrerelease: true })) {
        throw Errors.HOST_VERSION_UNSATISFIED(this.id, wanted, this.host.hostVersion);
      }
    }
    const dir = this.host.pluginDir(this.id);
    const { limitMb, option } = memoryLimitOf(manifest, this.host.defaults.memoryLimitMb);
    const guard = MemoryGuard.create({
      name: `${this.host.instancePrefix}-${crypto.randomBytes(6).toString('hex')}`,
      limitMb,
      option,
      enforcement: this.host.defaults.memoryEnforcement,
      pidsMax: this.host.defaults.pidsLimit,
      watchdogIntervalMs: this.host.defaults.memoryWatchdogIntervalMs,
    });
    if (guard.fallbackReason) this.log('warn', Errors.CGROUP_UNAVAILABLE(guard.fallbackReason).message);
    const plain = launchCommand(manifest, dir, limitMb, this.host.codeCachePreload, this.inspect);
    const { cmd, args } = guard.wrap(plain.cmd, plain.args, Object.keys(plain.env));
    this.stderrTail = new StderrTail();
    const client = await PluginClient.start({
      cmd,
      args,
      cwd: dir,
      env: plain.env,
      startTimeoutMs: manifest.limits?.start_timeout_ms ?? this.host.defaults.startTimeoutMs,
      killGraceMs: this.host.defaults.killGraceMs,
      autoMTLS: this.host.defaults.autoMTLS,
      maxMessageBytes: this.host.defaults.maxMessageBytes,
      flowControlWindowBytes: this.host.defaults.flowControlWindowBytes,
      instancePrefix: this.host.instancePrefix,
      onLog: (record) => this.pluginLog(record),
    }).catch(async (err) => {
      const why = errorMessage(err);
      const note = guard.reason([why]);
      await guard.close();
      throw Errors.ACTIVATION_FAILED(this.id, 'launch', note ? `${note}; ${why}` : why);
    });
    if (attempt !== this.attempt) {
      await client.kill();
      await guard.close();
      return;
    }
    guard.attach(client.pid);
    this.client = client;
    this.guard = guard;
    void client.exited.then((info) => this.onExit(attempt, info));
    const { Hooks } = contract();
    const hooks = client.client(Hooks);
    const startMs = manifest.limits?.start_timeout_ms ?? this.host.defaults.startTimeoutMs;
    try {
      const implemented = await callUnary<object, ImplementedResponse__Output>(hooks.Implemented.bind(hooks), {}, startMs).catch((err) => {
        throw Errors.ACTIVATION_FAILED(this.id, 'Implemented', errorMessage(err));
      });
      this.implemented = {
        methods: new Set(implemented.methods),
        hooks: new Set(implemented.hooks),
        topics: implemented.event_topics,
      };
      const apiId = client.broker.nextId();
      this.apiService = this.host.apiService(this);
      this.apiServer = await client.broker.acceptAndServe(apiId, [this.apiService.registration]);
      this.hooks = hooks;
      this.hookTransport = new HookTransport(hooks, {
        streamed: this.host.defaults.hookTransport === 'stream' && (this.implemented.methods.has('RunHookStream') || this.implemented.methods.has('RunHookBatchStream')),
        batched: this.host.defaults.hookBatching && this.implemented.methods.has('RunHookBatchStream'),
        maxMessageBytes: this.host.defaults.maxMessageBytes,
        openHttp2: this.host.defaults.hookHttp2 ? (timeoutMs) => client.openHttp2(timeoutMs) : undefined,
        onStreamOpened: () => this.host.onHookStreamOpened(this.id),
        onStreamEnded: (err) => {
          if (this.isLive(attempt)) this.log('warn', `${errorMessage(err)}; the next hook call opens a new stream`);
        },
      });
      // With hookHttp2, beside OnActivate: the direct connection is ready by the first hook call, or the stream uses grpc-js.
      const http2 = this.hookTransport.prepare(startMs).then((why) => {
        if (why && this.isLive(attempt)) this.log('warn', `hook calls go over the grpc-js channel: a direct HTTP/2 connection to the plugin failed (${why})`);
      });
      if (this.implemented.methods.has('OnActivate')) {
        await callUnary(
          hooks.OnActivate.bind(hooks),
          { api_broker_id: apiId, plugin_id: this.id, manifest: jsonBytes(manifest), configuration: jsonBytes(config), host_version: this.host.hostVersion, api_features: this.apiFeatures() },
          startMs,
        ).catch((err) => {
          throw Errors.ACTIVATION_FAILED(this.id, 'OnActivate', errorMessage(err));
        });
      }
      await http2;
    } catch (err) {
      this.attempt++;
      await this.teardown('the plugin failed to start');
      throw err;
    }
    if (attempt !== this.attempt) return;
    this.states.transition('running', 'activated', null);
    this.scheduleHealthCheck(attempt);
    this.watchTransport(attempt, client);
  }

  /** What OnActivateRequest.api_features offers: CallStream unless the host keeps plugins on unary API calls. */
  private apiFeatures(): string[] {
    return this.host.defaults.apiTransport === 'stream' ? [API_STREAM_FEATURE] : [];
  }

  /** A connection lost while the process lives is a failure now, not at the next health check. */
  private watchTransport(attempt: number, client: PluginClient): void {
    this.transport = new TransportWatch({
      channel: client.channel,
      check: () => client.ping(Math.min(this.host.defaults.healthTimeoutMs, TRANSPORT_CHECK_TIMEOUT_MS)),
      exited: client.exited,
      onLost: (why) => {
        if (this.isLive(attempt)) this.lost(Errors.CONNECTION_LOST(why).message);
      },
    });
  }

  private onExit(attempt: number, info: ExitInfo): void {
    if (!this.isLive(attempt)) return;
    const how = info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
    const lines = this.stderrTail.lines();
    const tail = lines.slice(-5).join(' | ');
    const note = this.guard?.reason(lines);
    this.lost(`plugin process exited unexpectedly (${how})${note ? `: ${note}` : ''}${tail ? `; last stderr: ${tail}` : ''}`);
  }

  /** True while launch `attempt` is the current one of a plugin that is meant to run. */
  private isLive(attempt: number): boolean {
    return attempt === this.attempt && (this.state === 'starting' || this.state === 'running');
  }

  /** The current launch failed (exit, lost connection, failed health check): said at once, then cleaned up, then restarted or parked. */
  private lost(reason: string): void {
    this.attempt++;
    this.states.transition('starting', 'lost', reason);
    void this.teardown(reason).then(() => this.failed(reason));
  }

  /** Counts a failure; restarts with backoff, or parks the plugin after too many in the window. */
  private failed(reason: string): void {
    // Stopped, or failed to start, meanwhile: nothing to restart.
    if (this.state !== 'starting') return;
    const next = this.restartPolicy.failed(reason);
    if ('park' in next) {
      this.states.transition('failed_to_stay_running', 'parked', next.park);
      return;
    }
    this.states.transition('starting', 'retry', reason);
    this.log('warn', `restarting in ${next.restartInMs} ms after: ${reason}`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state !== 'starting') return;
      this.restarts++;
      this.host.onRestart(this.id);
      this.launch().catch((err) => this.failed(errorMessage(err)));
    }, next.restartInMs);
  }

  private scheduleHealthCheck(attempt: number): void {
    const { healthIntervalMs, healthTimeoutMs } = this.host.defaults;
    this.healthTimer = setTimeout(async () => {
      this.healthTimer = undefined;
      const client = this.client;
      if (attempt !== this.attempt || !client) return;
      try {
        await client.ping(healthTimeoutMs);
        if (attempt === this.attempt) this.scheduleHealthCheck(attempt);
      } catch (err) {
        if (this.isLive(attempt)) this.lost(`health check failed: ${errorMessage(err)}`);
      }
    }, healthIntervalMs);
  }

  /** Ends the current launch (hook calls in flight fail at once with `why`); answers how its process exited, when there was one. */
  private async teardown(why: string): Promise<ExitInfo | undefined> {
    this.hookTransport?.close(why);
    this.hookTransport = undefined;
    this.apiService?.close(why);
    this.apiService = undefined;
    clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    this.transport?.close();
    this.transport = undefined;
    const client = this.client;
    const api = this.apiServer;
    const guard = this.guard;
    this.client = undefined;
    this.guard = undefined;
    this.apiServer = undefined;
    this.hooks = undefined;
    this.httpStream?.close('the plugin stopped');
    this.httpStream = undefined;
    await api?.close();
    const exit = await client?.kill();
    // After the plugin: what it left behind (daemons, whatever their group or environment) goes with its cgroup.
    await guard?.close();
    return exit;
  }

  private clearTimers(): void {
    clearTimeout(this.restartTimer);
    clearTimeout(this.healthTimer);
    this.restartTimer = undefined;
    this.healthTimer = undefined;
    this.reportDropped();
  }

  private pluginLog(record: PluginLogRecord): void {
    if (record.source === 'stderr' || record.source === 'stdio:stderr') {
      this.stderrTail.push(record.message);
    }
    if (record.source !== 'host' && !this.limiter.admit(record.message.length)) {
      this.dropTimer ??= setTimeout(() => this.reportDropped(), DROP_REPORT_MS);
      return;
    }
    const entry = { ...record, pluginId: this.id };
    this.logs.push(entry);
    this.host.onLog(entry);
  }

  /** Writes one "N lines dropped" record for what the rate limit dropped since the last one. */
  private reportDropped(): void {
    clearTimeout(this.dropTimer);
    this.dropTimer = undefined;
    const { lines, bytes } = this.limiter.takeDropped();
    if (lines === 0) return;
    this.host.onLogsDropped(this.id, lines);
    const { linesPerSecond, bytesPerSecond } = this.limiter.limits;
    this.log('warn', `${lines} log lines (${bytes} bytes) dropped: the plugin wrote faster than ${linesPerSecond} lines/s or ${bytesPerSecond} bytes/s`, {
      dropped_lines: lines,
      dropped_bytes: bytes,
    });
  }

  /** A record about this plugin (from the host, or sent by the plugin through the API's Log), kept with its own logs. */
  log(level: PluginLogRecord['level'], message: string, fields: Record<string, unknown> = {}, source: 'host' | 'api' = 'host'): void {
    this.pluginLog({ level, message, fields, time: Date.now(), source });
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof PlughostError) return err.message;
  const e = err as grpc.ServiceError;
  if (e && typeof e === 'object' && typeof e.details === 'string' && e.details) return e.details;
  return e instanceof Error ? e.message : String(err);
}
