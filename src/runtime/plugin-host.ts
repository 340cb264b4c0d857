/**
 * PluginHost: the composition root of the runtime. It owns the store, the
 * bundle installer, one supervisor per installed plugin, hook dispatch, the
 * event bus and the metrics, and converges each plugin toward what the
 * operator asked for (enabled or not).
 */
import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import semver from 'semver';
import type { ExchangeReceiver, PluginHttpExchange } from '../protocol/http-exchange';
import { Errors, isError, type PlughostError } from '../errors';
import { validateConfig, maskSecrets } from '../manifest';
import { callUnary, jsonBytes, parseJsonBytes } from '../protocol/contract';
import { killMarkedWithPrefix } from '../protocol/process';
import { DEFAULT_SIDE_CHANNEL_MIN_BYTES } from '../protocol/side-channel';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES, DEFAULT_MAX_MESSAGE_BYTES, checkFlowControlWindow, checkMaxMessageBytes } from '../protocol/limits';
import { PostgresStore } from '../store/postgres-store';
import { SqliteStore } from '../store/sqlite-store';
import type { FeedRow, PluginRecord, PluginState, Store } from '../store/store';
import { apiService, type ApiHost } from './api-service';
import { HookDispatcher, topicMatches } from './hook-dispatch';
import { carryConfig, carryWarnings } from './config-carry';
import { BundleInstaller } from './installer';
import { RuntimeMetrics } from './metrics';
import { PluginLocks } from './plugin-locks';
import { packageVersion } from './package-version';
import { destroyLeftoverCgroups } from './cgroup';
import { resolveNodeId } from './node-id';
import { PluginSupervisor, errorMessage, type SupervisorHost } from './supervisor';
import { Reconciler } from './reconciler';
import { writeCodeCachePreload } from './code-cache';
import type {
  ApiMethods,
  ClusterInfo,
  FilterResult,
  HookCallContext,
  HookMap,
  InstalledSignature,
  InstallOptions,
  InstallResult,
  NotifyOutcome,
  PluginConfig,
  PluginDetail,
  PluginHostOptions,
  PluginInfo,
  PluginLogEntry,
  PublishedEvent,
  RuntimeDefaults,
  SignaturePolicy,
  StateChange,
} from './types';

export const DEFAULTS: RuntimeDefaults = {
  allowInspect: false,
  codeCache: true,
  startTimeoutMs: 30_000,
  hookTimeoutMs: 5_000,
  killGraceMs: 2_000,
  healthIntervalMs: 30_000,
  healthTimeoutMs: 5_000,
  maxFailures: 3,
  failureWindowMs: 60 * 60_000,
  restartBackoffMs: 1_000,
  restartBackoffMaxMs: 60_000,
  autoMTLS: false,
  logBufferSize: 1_000,
  logLinesPerSecond: 1_000,
  logBytesPerSecond: 1024 * 1024,
  httpDrainMs: 5_000,
  httpTransport: 'stream',
  httpSideChannel: true,
  httpSideChannelMinBytes: DEFAULT_SIDE_CHANNEL_MIN_BYTES,
  flowControlWindowBytes: DEFAULT_FLOW_CONTROL_WINDOW_BYTES,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  memoryLimitMb: 0,
  memoryEnforcement: 'auto',
  memoryWatchdogIntervalMs: 500,
  pidsLimit: 1024,
  hookTransport: 'stream',
  hookBatching: true,
  hookHttp2: false,
  apiTransport: 'stream',
};

/** How often a host tells the store it is alive, unless `heartbeatIntervalMs` says otherwise. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;

/** How often a host on a shared store reads the cluster feed besides NOTIFY's wake-ups, unless `reconcileIntervalMs` says otherwise. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 5_000;

/** The scope of the host's own cluster locks and tickets: not a plugin id (those never start with '@'), so no plugin can reach them. */
const HOST_LOCK_SCOPE = '@plughost';

/** Every how many polls a host on a shared store rereads every plugin (covers anything a pass missed). */
const FULL_RECONCILE_EVERY = 12;

/**
 * On a shared store, a stored bundle no record references is kept this long
 * after it was stored: another host's install may be between storing the
 * bundle and committing the record.
 */
const SHARED_BUNDLE_GRACE_MS = 10 * 60_000;

/**
 * The marker prefix of every plugin process a host on `dataDir` (an absolute path) launches:
 * the same on every run, so a restarted host finds what an earlier run left behind.
 */
export function instancePrefixOf(dataDir: string): string {
  return `ph${crypto.createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`;
}

/**
 * Events: 'state' (StateChange, of this node's plugins and, on a shared store, of every node's),
 * 'installed' (PluginInfo), 'removed' (id), 'config' (id), 'event' (PublishedEvent, from any node),
 * 'log' (PluginLogEntry).
 */
export class PluginHost<H extends HookMap = HookMap, A extends ApiMethods = ApiMethods> extends EventEmitter {
  readonly metrics = new RuntimeMetrics();
  readonly hostVersion: string;
  readonly dataDir: string;
  readonly logger: pino.Logger;
  /** Derived from the data dir: every plugin process of a host on this data dir carries it. */
  readonly instancePrefix: string;
  /** This host's name in the store's nodes and observed states; stable across restarts. */
  readonly nodeId: string;
  /** When this host opened, ms since the epoch. */
  readonly startedAt = Date.now();

  private readonly supervisors = new Map<string, PluginSupervisor>();
  private readonly locks = new PluginLocks();
  private readonly dispatcher = new HookDispatcher(this.metrics);
  private readonly defaults: RuntimeDefaults;
  private readonly api: A;
  private writes: Promise<unknown> = Promise.resolve();
  /** SHA-256 of bundles stored by installs whose record is not committed yet (one entry per install): GC keeps them. */
  private readonly bundlesInFlight: string[] = [];
  private closed = false;
  private readonly heartbeatIntervalMs: number;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  /** The preload that gives node plugins their code cache; undefined when `defaults.codeCache` is off. */
  private readonly codeCachePreload: string | undefined;
  /** Set on a shared store: converges this host on what the other hosts write. */
  private reconciler: Reconciler | undefined;
  /** Plugins with a convergence queued and not started yet (one is enough: it reads the store when it runs). */
  private readonly convergeQueued = new Set<string>();
  /** Convergences queued or running; close() waits for them. */
  private readonly converging = new Set<Promise<void>>();

  private constructor(
    private readonly options: PluginHostOptions<A>,
    private readonly store: Store,
    private readonly installer: BundleInstaller,
    nodeId: string,
  ) {
    super();
    this.nodeId = nodeId;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.dataDir = options.dataDir;
    this.instancePrefix = instancePrefixOf(options.dataDir);
    this.hostVersion = options.hostVersion ?? packageVersion();
    this.logger = options.logger ?? pino({ name: 'plughost' });
    this.defaults = { ...DEFAULTS, ...options.defaults };
    checkMaxMessageBytes(this.defaults.maxMessageBytes, 'defaults.maxMessageBytes');
    this.codeCachePreload = this.defaults.codeCache ? writeCodeCachePreload(path.join(options.dataDir, 'runtime')) : undefined;
    checkFlowControlWindow(this.defaults.flowControlWindowBytes, 'defaults.flowControlWindowBytes');
    const minBytes = this.defaults.httpSideChannelMinBytes;
    // The plugin is told it per exchange in a uint32 field.
    if (!Number.isInteger(minBytes) || minBytes < 1 || minBytes > 0xffff_ffff) throw Errors.HOST_BAD_OPTION('defaults.httpSideChannelMinBytes', minBytes, 'a whole number of bytes from 1 to 4294967295');
    for (const name of ['hookBatching', 'hookHttp2'] as const) {
      if (typeof this.defaults[name] !== 'boolean') throw Errors.HOST_BAD_OPTION(`defaults.${name}`, this.defaults[name], 'true or false');
    }
    this.api = options.api ?? ({} as A);
  }

  /** Opens the data dir, clears leftovers of an interrupted run, and brings enabled plugins back up. */
  static async open<H extends HookMap = HookMap, A extends ApiMethods = ApiMethods>(given: PluginHostOptions<A>): Promise<PluginHost<H, A>> {
    // Plugins run with their own folder as cwd: every path handed to them must be absolute.
    const options = { ...given, dataDir: path.resolve(given.dataDir) };
    fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    for (const name of ['heartbeatIntervalMs', 'reconcileIntervalMs'] as const) {
      const interval = options[name];
      if (interval !== undefined && !(Number.isFinite(interval) && interval >= 1)) {
        throw Errors.HOST_BAD_OPTION(name, interval, 'a number of milliseconds, 1 or more');
      }
    }
    const nodeId = resolveNodeId(options.dataDir, options.nodeId);
    const installer = new BundleInstaller(options.dataDir, { trustedKeys: options.trustedKeys ?? [], requireSignature: options.requireSignature ?? false }, options.bundleLimits);
    installer.prepare();
    const store: Store = options.store
      ?? (options.database ? await PostgresStore.open({ url: options.database }) : SqliteStore.open({ file: path.join(options.dataDir, 'plughost.db'), durability: options.durability }));
    const host = new PluginHost<H, A>(options, store, installer, nodeId);
    await host.heartbeat();
    // A host that died without stopping its plugins may have left their children running.
    const killed = killMarkedWithPrefix(host.instancePrefix);
    if (killed > 0) host.logger.warn({ processes: killed }, 'killed processes left by plugins of an earlier run of this host');
    const cgroups = await destroyLeftoverCgroups(host.instancePrefix);
    if (cgroups > 0) host.logger.warn({ cgroups }, 'removed cgroups left by plugins of an earlier run of this host');
    // Read before the records: a change committed after this is in the feed, and converged once the host listens.
    const startSeq = store.feed ? await store.feed.head() : 0;
    const unplaced = await host.recover();
    if (options.startPlugins !== false) {
      await Promise.all([...host.supervisors.values()].filter((s) => s.record.enabled && !unplaced.has(s.id)).map((s) => host.startQuietly(s)));
    }
    host.scheduleHeartbeat();
    if (store.feed) {
      host.reconciler = new Reconciler(store.feed, host.reconcileTarget(), {
        intervalMs: options.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS,
        fullEvery: FULL_RECONCILE_EVERY,
      }, startSeq);
      host.reconciler.start();
    }
    return host;
  }

  /** Returns the ids of plugins left without a folder (failed_to_start, with the reason): they are not started. */
  private async recover(): Promise<Set<string>> {
    const records = await this.store.listPlugins();
    const known = new Set(records.map((r) => r.id));
    const unplaced = new Set<string>();
    // A folder without a record is an install the host did not finish: it was never acknowledged.
    for (const dir of this.installer.installedDirs()) if (!known.has(dir)) await this.installer.remove(dir);
    for (const record of records) {
      const sup = this.addSupervisor({ ...record, state: 'not_running' });
      // A replace cut short leaves the stored record's folder in staging: put it back before staging is cleared.
      // Failing that (a folder lost, another bundle's folder, a fresh data dir), the database has the bundle.
      if (!this.installer.reconcile(record.id, record.bundleSha256)) {
        const why = await this.placeFromStore(record);
        if (why !== null) {
          unplaced.add(record.id);
          sup.states.restored(why, 'failed_to_start');
          this.metrics.setState(record.id, sup.state);
        }
      }
      if (!this.store.feed) this.persistInBackground(record.id, { state: sup.state, lastError: sup.lastError });
    }
    this.installer.clearStaging();
    return unplaced;
  }

  /** Places a record's folder from the bundle stored in the database; returns why it could not, or null. */
  private async placeFromStore(record: PluginRecord): Promise<string | null> {
    const { id, bundleSha256 } = record;
    try {
      const bundle = await this.store.getBundle(bundleSha256);
      if (!bundle) throw Errors.PLUGIN_BUNDLE_UNAVAILABLE(id, bundleSha256, 'the database has no bundle with this sha256');
      await this.installer.restore(id, bundle);
      this.logger.info({ plugin_id: id, bundle_sha256: bundleSha256 }, 'placed the plugin folder from the bundle stored in the database');
      return null;
    } catch (err) {
      const reason = isError(err, Errors.PLUGIN_BUNDLE_UNAVAILABLE) ? err : Errors.PLUGIN_BUNDLE_UNAVAILABLE(id, bundleSha256, errorMessage(err));
      this.logger.error({ plugin_id: id, bundle_sha256: bundleSha256, err: reason.message }, 'plugin folder could not be placed');
      return reason.message;
    }
  }

  // ---- operator actions ----

  /**
   * Installs a bundle; with `force`, replaces the installed version, keeping each setting that
   * still fits the new settings schema (`warnings` names the ones dropped).
   */
  async install(bundlePath: string, options: InstallOptions = {}): Promise<InstallResult> {
    this.assertOpen();
    const staged = await this.installer.unpack(bundlePath, options.signature);
    const { manifest } = staged;
    this.bundlesInFlight.push(staged.sha256);
    try {
      return await this.locks.exclusive(manifest.id, 'install', async () => {
        const existing = this.supervisors.get(manifest.id);
        if (existing && !options.force) throw Errors.PLUGIN_EXISTS(manifest.id, existing.record.version, manifest.version, versionChange(existing.record.version, manifest.version));
        const enabled = existing?.record.enabled ?? false;
        // Stored before the record is committed, so a committed record always has its bundle in the database.
        await this.store.putBundle(staged.sha256, fs.createReadStream(bundlePath), await this.installer.readSignature(bundlePath, options.signature));
        if (existing) await existing.stop();
        // Carried from the configuration as it is once the old process is gone and its writes are done.
        await this.writes;
        const carried = carryConfig(existing?.record.manifest.settings_schema, manifest.settings_schema, existing?.record.config ?? {});
        const placement = await this.installer.place(manifest.id, staged.path, staged.sha256);
        const now = Date.now();
        const record: PluginRecord = {
          generation: 0,
          id: manifest.id,
          manifest,
          version: manifest.version,
          enabled,
          state: 'not_running',
          lastError: null,
          config: carried.config,
          bundleSha256: staged.sha256,
          installedAt: existing?.record.installedAt ?? now,
          updatedAt: now,
        };
        try {
          record.generation = await this.store.putPlugin(record);
        } catch (err) {
          await placement.rollback();
          throw err;
        }
        await placement.commit();
        if (existing && existing.record.bundleSha256 !== staged.sha256) await this.collectBundles();
        const warnings = existing ? carryWarnings(carried, manifest.settings_schema) : [];
        for (const { key, reason } of carried.dropped) {
          this.logger.warn({ plugin_id: manifest.id, setting: key, reason, from_version: existing?.record.version, to_version: manifest.version }, 'install dropped a setting');
        }
        if (existing && carried.missing.length) this.logger.warn({ plugin_id: manifest.id, settings: carried.missing }, 'required settings have no value');
        const sup = this.addSupervisor(record);
        this.emit('installed', this.info(sup));
        if (enabled) await this.startQuietly(sup);
        return { ...this.info(sup), warnings };
      });
    } finally {
      this.bundlesInFlight.splice(this.bundlesInFlight.indexOf(staged.sha256), 1);
      await this.installer.discard(staged.path);
    }
  }

  /**
   * Starts the plugin; throws ACTIVATION_FAILED (the reason is also kept in `lastError`).
   * With `inspect` (a loopback `host:port`, or a port; `defaults.allowInspect` must be on), a
   * node plugin (re)starts under the Node inspector there, until it is next stopped.
   */
  async enable(id: string, options: { inspect?: string } = {}): Promise<PluginInfo> {
    return this.locks.queued(id, async () => {
      const sup = this.supervisor(id);
      if (options.inspect !== undefined) {
        sup.inspect = inspectAddress(id, options.inspect, this.defaults.allowInspect, sup.record.manifest);
        // Running without the inspector: start again under it.
        if (sup.state !== 'not_running') await sup.stop();
      }
      if (!sup.record.enabled) await this.persist(id, { enabled: true });
      // The persist took the store's generation for it; enabling an enabled plugin bumps nothing.
      sup.states.changeDesired({ enabled: true }, sup.states.desired.generation);
      if (sup.state !== 'running') await sup.start();
      return this.info(sup);
    });
  }

  async disable(id: string): Promise<PluginInfo> {
    return this.locks.queued(id, async () => {
      const sup = this.supervisor(id);
      sup.states.changeDesired({ enabled: false });
      await this.persist(id, { enabled: false });
      await sup.stop();
      return this.info(sup);
    });
  }

  async remove(id: string): Promise<void> {
    await this.locks.exclusive(id, 'remove', async () => {
      const sup = this.supervisor(id);
      await sup.stop();
      // The stop's observed-state writes land first, so none recreates a row after the delete.
      await this.writes;
      await this.store.deletePlugin(id);
      await this.installer.remove(id);
      await this.collectBundles();
      this.supervisors.delete(id);
      await this.metrics.forget(id);
      this.emit('removed', id);
    });
  }

  async list(): Promise<PluginInfo[]> {
    return [...this.supervisors.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((s) => this.info(s));
  }

  async get(id: string): Promise<PluginInfo> {
    return this.info(this.supervisor(id));
  }

  /**
   * The plugin with every node's observed state. `state` and `lastError` are this node's
   * observed row (the supervisor's own view until the row is written).
   */
  async describe(id: string): Promise<PluginDetail> {
    const sup = this.supervisor(id);
    // This node's own state writes first, so an answer never lags what this host just did.
    await this.writes;
    const [observed, known] = await Promise.all([this.store.listObserved(id), this.store.listNodes()]);
    const ages = new Map(known.map((n) => [n.nodeId, n.heartbeatAgeMs]));
    const staleAfterMs = 3 * this.heartbeatIntervalMs;
    const nodes = observed.map(({ nodeId, state, lastError, updatedAt, generation }) =>
      ({ nodeId, state, lastError, updatedAt, generation, live: (ages.get(nodeId) ?? Infinity) <= staleAfterMs }));
    const own = nodes.find((n) => n.nodeId === this.nodeId);
    const info = this.info(sup);
    const live = nodes.filter((n) => n.live);
    const summary = {
      nodes: live.length,
      running: live.filter((n) => n.state === 'running').length,
      converged: live.filter((n) => n.generation >= info.generation).length,
      state: live.length === 0 ? info.state : live.every((n) => n.state === live[0].state) ? live[0].state : 'mixed' as const,
    };
    return { ...info, state: own?.state ?? info.state, lastError: own ? own.lastError : info.lastError, nodes, summary };
  }

  /** This node and every node that has heartbeated into the store, with how long ago (the store's clock). */
  async cluster(): Promise<ClusterInfo> {
    this.assertOpen();
    const nodes = await this.store.listNodes();
    return { nodeId: this.nodeId, nodes: nodes.map(({ nodeId, version, startedAt, heartbeatAgeMs }) => ({ nodeId, version, startedAt, heartbeatAgeMs })) };
  }

  /** The configuration; secrets masked unless `reveal` is set. */
  async getConfig(id: string, options: { reveal?: boolean } = {}): Promise<PluginConfig> {
    const sup = this.supervisor(id);
    return options.reveal ? { ...sup.record.config } : maskSecrets(sup.record.manifest.settings_schema, sup.record.config);
  }

  /**
   * Validates against the settings schema (a masked secret keeps its stored
   * value), offers it to a running plugin (which may reject it), then stores it.
   * Queued with install, enable and the rest, so it is validated against the
   * schema of the version that is installed when it runs.
   */
  async setConfig(id: string, config: unknown): Promise<PluginConfig> {
    return this.locks.queued(id, () => this.applyConfig(this.supervisor(id), config));
  }

  /** Recent log records of one plugin, oldest first. */
  logs(id: string, limit?: number): PluginLogEntry[] {
    return this.supervisor(id).logs.toArray(limit);
  }

  /**
   * At most `limit` of the newest records with a sequence number below `before` (all when
   * absent), oldest first, each with its `seq`: pass the oldest one's as `before` for the page
   * before it.
   */
  logPage(id: string, limit?: number, before?: number): Array<PluginLogEntry & { seq: number }> {
    const { first, items } = this.supervisor(id).logs.page(limit, before);
    return items.map((entry, i) => ({ ...entry, seq: first + i }));
  }

  /** Who signed the installed bundle (the trusted key), 'unsigned', or null for a folder placed before this was recorded. */
  signatureOf(id: string): InstalledSignature | null {
    this.supervisor(id);
    return this.installer.signatureOf(id);
  }

  /** The signature policy this host installs under: read-only, set by its options. */
  get signaturePolicy(): SignaturePolicy {
    return this.installer.policy;
  }

  /** The folder a plugin's bundle lives in (for static files). */
  pluginDir(id: string): string {
    return this.installer.dirOf(id);
  }

  // ---- dispatch ----

  notify<K extends keyof H & string>(hook: K, payload: H[K], context?: HookCallContext): Promise<NotifyOutcome[]> {
    return this.dispatcher.notify([...this.supervisors.values()], hook, payload, context);
  }

  filter<K extends keyof H & string>(hook: K, payload: H[K], context?: HookCallContext): Promise<FilterResult<H[K]>> {
    return this.dispatcher.filter([...this.supervisors.values()], hook, payload, this.options.hooks?.[hook], context);
  }

  /** Calls one plugin's hook directly. */
  async callHook(id: string, hook: string, payload: unknown, context?: HookCallContext): Promise<{ payload: unknown; rejected: boolean; reason: string }> {
    const res = await this.dispatcher.run(this.supervisor(id), hook, payload, context);
    return { payload: parseJsonBytes(res.payload, payload), rejected: res.rejected, reason: res.reason };
  }

  /**
   * Starts an HTTP exchange with the plugin (for the server's plugin routes); its response goes
   * to `receiver`. Throws what `httpUnavailable` answers, or HOOK_NOT_IMPLEMENTED when it serves
   * no HTTP. A stop (disable, upgrade, removal) lets the exchanges it started finish first, up
   * to `httpDrainMs`.
   */
  openHttpExchange(id: string, receiver: ExchangeReceiver): PluginHttpExchange {
    const unavailable = this.httpUnavailable(id);
    if (unavailable) throw unavailable;
    const sup = this.supervisor(id);
    if (!sup.servesHttp) throw Errors.HOOK_NOT_IMPLEMENTED(id, 'ServeHTTP');
    return sup.openHttpExchange(receiver);
  }

  /**
   * Why plugin `id` cannot serve a request now, or null when it can: not installed (404),
   * disabled (503, saying how to enable it), or in a state other than running (502, naming it).
   * The plugin routes also ask when a stream ends early, to say why.
   */
  httpUnavailable(id: string): PlughostError | null {
    if (this.closed) return Errors.HOST_CLOSED();
    const sup = this.supervisors.get(id);
    if (!sup) return Errors.PLUGIN_NOT_FOUND(id);
    if (!sup.record.enabled) return Errors.PLUGIN_DISABLED(id, sup.state);
    if (!sup.running || !sup.hooks) return Errors.PLUGIN_NOT_RUNNING(id, sup.state);
    return null;
  }

  /**
   * Publishes an event to subscribed plugins (OnEvent) and to 'event' listeners, on this
   * node at once and, on a shared store, on every other node (each subscriber once; a plugin
   * never gets its own events). Resolves once the other nodes can see it; rejects with
   * STORE_UNAVAILABLE when the store cannot take it (this node has delivered it already).
   */
  publish(topic: string, payload: unknown, sourcePluginId: string | null = null): Promise<void> {
    this.deliver({ topic, payload, source: sourcePluginId, nodeId: this.nodeId });
    if (!this.store.feed) return Promise.resolve();
    const row = Buffer.from(JSON.stringify({ topic, payload, source: sourcePluginId }));
    return this.store.feed.append('event', sourcePluginId ?? '', this.nodeId, row).then(() => undefined);
  }

  /** Hands an event to this node's subscribers and 'event' listeners. */
  private deliver(event: PublishedEvent): void {
    const { topic, payload, source: sourcePluginId } = event;
    this.emit('event', event);
    for (const sup of this.supervisors.values()) {
      const hooks = sup.hooks;
      if (sup.id === sourcePluginId || !sup.running || !hooks || !sup.implemented.methods.has('OnEvent')) continue;
      if (!sup.implemented.topics.some((t) => topicMatches(t, topic))) continue;
      void callUnary(hooks.OnEvent.bind(hooks), { topic, payload: jsonBytes(payload), source_plugin_id: sourcePluginId ?? '' }, sup.hookTimeoutMs).catch(
        (err) => sup.log('warn', `OnEvent(${topic}) failed: ${errorMessage(err)}`),
      );
    }
  }

  /** Stops every plugin (OnDeactivate, then kill) and closes the store. Leaves nothing running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.heartbeatTimer);
    // Nothing new starts once closed; what is converging finishes (or gives up) first.
    await this.reconciler?.stop();
    await Promise.all([...this.converging]);
    await Promise.all([...this.supervisors.values()].map((s) => s.stop().catch(() => undefined)));
    await this.beating;
    await this.writes;
    await this.store.close();
    this.removeAllListeners();
  }

  // ---- cluster convergence (shared stores) ----

  private reconcileTarget() {
    return {
      nodeId: this.nodeId,
      logger: this.logger,
      allIds: async () => [...new Set([...(await this.store.listPlugins()).map((r) => r.id), ...this.supervisors.keys()])],
      converge: (id: string) => this.requestConverge(id),
      remote: (row: FeedRow) => this.onRemote(row),
      resync: () => this.resync(),
      afterFull: () => void this.collectBundles(),
    };
  }

  /** Queues a convergence of plugin `id` behind its other operations, unless one is queued and not started yet. */
  private requestConverge(id: string): void {
    if (this.closed || this.convergeQueued.has(id)) return;
    this.convergeQueued.add(id);
    const run = this.locks.queued(id, async () => {
      this.convergeQueued.delete(id);
      if (!this.closed) await this.convergeNow(id);
    }).catch((err) => {
      this.logger.warn({ plugin_id: id, err: errorMessage(err) }, 'could not converge the plugin on the shared state; retrying at the next poll');
      this.reconciler?.retryAtNextPoll();
    });
    this.converging.add(run);
    void run.finally(() => this.converging.delete(run));
  }

  /**
   * Makes this node match the store's record of `id`: places the bundle and
   * (re)creates the supervisor when the record is new or names another bundle,
   * pushes a changed configuration to the running plugin, starts or stops it
   * to match `enabled`, removes it when the record is gone. Changes this node
   * made itself find nothing to do.
   */
  private async convergeNow(id: string): Promise<void> {
    const record = await this.store.getPlugin(id);
    if (this.closed) return;
    const sup = this.supervisors.get(id);
    if (!record) {
      if (!sup) return;
      // Out of the map first: the stop's state changes write no observed row for a plugin that is gone.
      this.supervisors.delete(id);
      await sup.stop();
      await this.installer.remove(id);
      await this.metrics.forget(id);
      this.logger.info({ plugin_id: id }, 'plugin removed (the change came from the shared store)');
      this.emit('removed', id);
      return;
    }
    if (!sup || sup.record.bundleSha256 !== record.bundleSha256) {
      if (sup) await sup.stop();
      if (this.closed) return;
      const why = this.installer.reconcile(id, record.bundleSha256) ? null : await this.placeFromStore(record);
      if (this.closed) return;
      const next = this.addSupervisor({ ...record, state: 'not_running', lastError: null });
      if (why !== null) {
        next.states.restored(why, 'failed_to_start');
        this.metrics.setState(id, next.state);
        this.observe(next, next.state, next.lastError);
      }
      this.logger.info({ plugin_id: id, version: record.version, bundle_sha256: record.bundleSha256 }, `plugin ${sup ? 'replaced' : 'installed'} (the change came from the shared store)`);
      this.emit('installed', this.info(next));
      if (why === null && record.enabled) await this.startQuietly(next);
      return;
    }
    sup.record.updatedAt = record.updatedAt;
    const observed = sup.states.observedGeneration;
    if (canonicalJson(record.config) !== canonicalJson(sup.record.config)) {
      sup.states.changeDesired({ config: record.config }, record.generation);
      const hooks = sup.hooks;
      if (sup.running && hooks && sup.implemented.methods.has('OnConfigurationChange')) {
        // Validated and stored by the node that took it; a plugin here that rejects it can only be told in its log.
        await callUnary(hooks.OnConfigurationChange.bind(hooks), { configuration: jsonBytes(record.config) }, sup.hookTimeoutMs).catch((err) => {
          sup.log('warn', `OnConfigurationChange rejected the configuration stored by another node: ${errorMessage(err)}`);
        });
      }
      this.emit('config', id);
    }
    if (record.enabled !== sup.record.enabled) {
      sup.states.changeDesired({ enabled: record.enabled }, record.generation);
      if (!record.enabled) await sup.stop();
      else if (sup.state !== 'running') await this.startQuietly(sup);
    }
    sup.states.catchUp(record.generation);
    // The row says which generation this node answers now (a start or stop wrote one already).
    if (sup.states.observedGeneration !== observed) this.observe(sup, sup.state, sup.lastError);
  }

  /** Whether other hosts may share this host's store (PostgreSQL): the cluster's nodes. */
  get clustered(): boolean {
    return Boolean(this.store.feed);
  }

  /**
   * A random single-use ticket of `kind`, valid `ttlMs` by the store's clock, that any node
   * sharing the store can redeem once (only its SHA-256 is stored). For event-stream tickets.
   */
  async issueTicket(kind: string, ttlMs: number): Promise<{ ticket: string; expiresAt: number }> {
    this.assertOpen();
    const ticket = crypto.randomBytes(24).toString('base64url');
    await this.store.kvSet(`${HOST_LOCK_SCOPE}/${kind}`, sha256Hex(ticket), Buffer.alloc(0), { ttlMs });
    return { ticket, expiresAt: Date.now() + ttlMs };
  }

  /** True once for a live ticket of `kind` issued by any node; spent either way. */
  async redeemTicket(kind: string, ticket: string): Promise<boolean> {
    this.assertOpen();
    return this.store.kvDelete(`${HOST_LOCK_SCOPE}/${kind}`, sha256Hex(ticket));
  }

  /**
   * Converges every plugin of the store and of this host now, and resolves once
   * they are done: after it, this host shows what the other hosts wrote.
   * Resolves at once on a store no other host shares.
   */
  async syncNow(): Promise<void> {
    this.assertOpen();
    if (!this.store.feed) return;
    for (const id of await this.reconcileTarget().allIds()) this.requestConverge(id);
    await Promise.all([...this.converging]);
    await this.collectBundles();
  }

  /**
   * Runs `fn` on one host of the cluster at a time: on a shared store under a
   * cluster lock (a lease refreshed while `fn` runs, freed after it or, if
   * this host dies, after `ttlMs`), once this host has converged on the shared
   * state, so `fn` sees what the others wrote. Elsewhere it simply runs `fn`.
   * Provisioning uses it, so a cluster of nodes started with one provisioning
   * file applies it once, not once per node.
   */
  async clusterExclusive<T>(name: string, fn: () => Promise<T>, options: { ttlMs?: number; waitMs?: number } = {}): Promise<T> {
    this.assertOpen();
    if (!this.store.feed) return fn();
    const ttlMs = options.ttlMs ?? 30_000;
    const until = Date.now() + (options.waitMs ?? 5 * 60_000);
    let grant = await this.store.lockAcquire(HOST_LOCK_SCOPE, name, ttlMs);
    while (!grant.acquired) {
      if (Date.now() > until) throw Errors.CLUSTER_LOCK_TIMEOUT(name, options.waitMs ?? 5 * 60_000);
      await new Promise((r) => setTimeout(r, Math.min(1_000, Math.max(50, grant.expiresAt - grant.nowMs))));
      grant = await this.store.lockAcquire(HOST_LOCK_SCOPE, name, ttlMs);
    }
    const { token } = grant;
    const refresh = setInterval(() => {
      this.store.lockRefresh(HOST_LOCK_SCOPE, name, token, ttlMs).catch((err) =>
        this.logger.error({ lock: name, err: errorMessage(err) }, 'could not refresh the cluster lock; another node may take it'));
    }, Math.max(100, Math.floor(ttlMs / 3)));
    refresh.unref();
    try {
      await this.syncNow();
      return await fn();
    } finally {
      clearInterval(refresh);
      await this.store.lockRelease(HOST_LOCK_SCOPE, name, token).catch((err) =>
        this.logger.warn({ lock: name, err: errorMessage(err) }, 'could not release the cluster lock; it frees itself after its TTL'));
    }
  }

  /** A feed row another node wrote: an event for this node's subscribers, or that node's state change for 'state' listeners. */
  private onRemote(row: FeedRow): void {
    let body: unknown;
    try {
      body = JSON.parse(String(row.payload ?? 'null'));
    } catch {
      this.logger.warn({ seq: row.seq, kind: row.kind, origin: row.origin }, 'skipped a cluster feed row whose payload is not JSON');
      return;
    }
    if (row.kind === 'event') {
      const { topic, payload, source } = body as { topic: string; payload: unknown; source: string | null };
      this.deliver({ topic, payload, source, nodeId: row.origin });
    } else if (row.kind === 'state') {
      this.emit('state', { ...(body as StateChange), nodeId: row.origin });
    }
  }

  /** After the store came back: this node's heartbeat and observed rows as they are now (writes made while it was away failed). */
  private async resync(): Promise<void> {
    for (const sup of this.supervisors.values()) this.observe(sup, sup.state, sup.lastError);
    await this.heartbeat();
  }

  // ---- internals ----

  private addSupervisor(record: PluginRecord): PluginSupervisor {
    const host: SupervisorHost & ApiHost = {
      defaults: this.defaults,
      hostVersion: this.hostVersion,
      instancePrefix: this.instancePrefix,
      codeCachePreload: this.codeCachePreload,
      store: this.store,
      metrics: this.metrics,
      api: this.api,
      pluginDir: (id) => this.installer.dirOf(id),
      apiService: (s) => apiService(host, s, { maxMessageBytes: this.defaults.maxMessageBytes }),
      onStateChange: (change) => this.onStateChange(change),
      onLog: (entry) => this.onLog(entry),
      onRestart: (id) => this.metrics.restarts.inc({ plugin: id }),
      onHookStreamOpened: (id) => this.metrics.hookStreamsOpened.inc({ plugin: id }),
      onLogsDropped: (id, lines) => this.metrics.droppedLogLines.inc({ plugin: id }, lines),
      // Not queued: a plugin may save its configuration from OnActivate, which runs inside enable's turn.
      saveConfig: (_id, config) => this.applyConfig(sup, config),
      publish: (topic, payload, source) => this.publish(topic, payload, source),
      callPlugin: async (caller, target, hook, payload) => this.dispatcher.run(this.supervisor(target), hook, payload, {}, caller),
    };
    const sup = new PluginSupervisor(host, record);
    this.supervisors.set(record.id, sup);
    this.metrics.setState(record.id, record.state);
    this.observe(sup, record.state, record.lastError);
    return sup;
  }

  private async applyConfig(sup: PluginSupervisor, config: unknown): Promise<PluginConfig> {
    const { id } = sup;
    const validated = validateConfig(sup.record.manifest.settings_schema, config, sup.record.config);
    const hooks = sup.hooks;
    if (sup.running && hooks && sup.implemented.methods.has('OnConfigurationChange')) {
      await callUnary(hooks.OnConfigurationChange.bind(hooks), { configuration: jsonBytes(validated) }, sup.hookTimeoutMs).catch((err) => {
        throw Errors.CONFIG_REJECTED(id, errorMessage(err));
      });
    }
    // Removed or replaced while the plugin was asked: what was validated belongs to a version that is gone.
    if (this.supervisors.get(id) !== sup) throw this.supervisors.has(id) ? Errors.PLUGIN_REPLACED(id, this.supervisors.get(id)!.record.version) : Errors.PLUGIN_NOT_FOUND(id);
    sup.states.changeDesired({ config: validated });
    await this.persist(id, { config: validated });
    // No state moves for a configuration: the row says which generation this node answers now.
    this.observe(sup, sup.state, sup.lastError);
    this.emit('config', id);
    return maskSecrets(sup.record.manifest.settings_schema, validated);
  }

  private onStateChange(local: StateChange): void {
    const change = { ...local, nodeId: this.nodeId };
    this.metrics.setState(change.pluginId, change.state);
    const sup = this.supervisors.get(change.pluginId);
    if (sup) {
      // On a shared store the record is the operator's alone: each node's state is its observed row.
      if (!this.store.feed) this.persistInBackground(change.pluginId, { state: change.state, lastError: change.lastError });
      this.observe(sup, change.state, change.lastError);
    }
    const { pluginId, from, state, reason, lastError, generation } = change;
    this.logger.info({ plugin_id: pluginId, from, to: state, reason, last_error: lastError ?? undefined, generation }, `plugin ${state}`);
    // For the other nodes' event feeds; lost (and only logged at debug) while the store is away.
    this.store.feed?.append('state', pluginId, this.nodeId, Buffer.from(JSON.stringify(change))).catch((err) => {
      this.logger.debug({ plugin_id: pluginId, err: errorMessage(err) }, 'state change not sent to the cluster feed');
    });
    this.emit('state', change);
  }

  private onLog(entry: PluginLogEntry): void {
    if (entry.truncated) this.metrics.droppedLogLines.inc({ plugin: entry.pluginId });
    this.logger[entry.level]({ ...entry.fields, plugin_id: entry.pluginId, source: entry.source }, entry.message);
    if (this.listenerCount('log')) this.emit('log', entry);
  }

  /**
   * Store writes in order, one after another; close() waits for them. The
   * returned promise fails when the write does, so an operator's change is
   * never acknowledged unless it was stored.
   */
  private persist(id: string, patch: Parameters<Store['updatePlugin']>[1]): Promise<void> {
    // The store bumps the generation of a desired change; the supervisor takes it (with a change of its own, it has it already).
    const write = this.writes.then(() => this.store.updatePlugin(id, patch));
    this.writes = write.then(
      () => undefined,
      () => undefined,
    );
    return write.then(
      (stored) => {
        const sup = this.supervisors.get(id);
        if (sup) {
          sup.record.updatedAt = stored.updatedAt;
          sup.states.catchUp(stored.generation);
        }
      },
      (err) => {
        // The store's own code must not reach an operator: to them the plugin is simply gone.
        throw isError(err, Errors.STORE_UNKNOWN_PLUGIN) ? Errors.PLUGIN_NOT_FOUND(id) : err;
      },
    );
  }

  /** For writes nobody waits on (state changes): a failure is logged. */
  private persistInBackground(id: string, patch: Parameters<Store['updatePlugin']>[1]): void {
    this.persist(id, patch).catch((err) => {
      if (this.supervisors.has(id)) this.logger.error({ plugin_id: id, err: errorMessage(err) }, 'could not persist plugin state');
    });
  }

  /**
   * Deletes stored bundles no record references any more (after a remove or
   * an upgrade), keeping those of installs in progress. The change it follows
   * is committed already, so a failure is only logged: the next one retries.
   */
  private async collectBundles(): Promise<void> {
    await this.store.deleteUnreferencedBundles(this.bundlesInFlight, this.store.feed ? SHARED_BUNDLE_GRACE_MS : 0).then(
      (deleted) => { if (deleted > 0) this.logger.info({ bundles: deleted }, 'deleted stored bundles no plugin uses'); },
      (err) => this.logger.warn({ err: errorMessage(err) }, 'could not delete unused stored bundles'),
    );
  }

  /**
   * Queues this node's observed row of the plugin, as of now (pid and restarts included),
   * behind the other writes; skipped once the supervisor is gone (removed or replaced).
   */
  private observe(sup: PluginSupervisor, state: PluginState, lastError: string | null): void {
    const row = { pluginId: sup.id, nodeId: this.nodeId, state, lastError, pid: sup.pid ?? null, restarts: sup.restarts, generation: sup.states.observedGeneration };
    const write = this.writes.then(() => (this.supervisors.get(sup.id) === sup ? this.store.putObserved(row) : undefined));
    this.writes = write.catch((err) => this.logger.error({ plugin_id: sup.id, err: errorMessage(err) }, 'could not write observed plugin state'));
  }

  /** One heartbeat; a failure is logged and the next one tries again. */
  private heartbeat(): Promise<void> {
    this.beating = this.store.heartbeat({ nodeId: this.nodeId, version: this.hostVersion, startedAt: this.startedAt }).catch((err) => {
      if (!this.closed) this.logger.warn({ node_id: this.nodeId, err: errorMessage(err) }, 'heartbeat failed');
    });
    return this.beating;
  }

  /** The next heartbeat after the last one finished, so a slow store never piles them up. */
  private scheduleHeartbeat(): void {
    if (this.closed) return;
    this.heartbeatTimer = setTimeout(() => {
      void this.heartbeat().then(() => this.scheduleHeartbeat());
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async startQuietly(sup: PluginSupervisor): Promise<void> {
    await sup.start().catch((err) => this.logger.warn({ plugin_id: sup.id, err: errorMessage(err) }, 'plugin failed to start'));
  }

  private supervisor(id: string): PluginSupervisor {
    this.assertOpen();
    const sup = this.supervisors.get(id);
    if (!sup) throw Errors.PLUGIN_NOT_FOUND(id);
    return sup;
  }

  private info(sup: PluginSupervisor): PluginInfo {
    const { record } = sup;
    const m = record.manifest;
    return {
      id: record.id,
      name: m.name,
      version: record.version,
      description: m.description,
      enabled: record.enabled,
      state: sup.state,
      lastError: sup.lastError,
      permissions: m.permissions ?? [],
      hooks: [...sup.implemented.hooks],
      hasServer: Boolean(m.server),
      hasWebapp: Boolean(m.webapp),
      bundleSha256: record.bundleSha256,
      installedAt: record.installedAt,
      updatedAt: record.updatedAt,
      restarts: sup.restarts,
      pid: sup.pid,
      manifest: m,
      generation: sup.states.desired.generation,
    };
  }

  private assertOpen(): void {
    if (this.closed) throw Errors.HOST_CLOSED();
  }
}

/** The `--inspect=` address for a plugin, checked: allowed by the host, a node plugin, loopback only. */
function inspectAddress(id: string, given: string, allowed: boolean, manifest: PluginRecord['manifest']): string {
  if (!allowed) throw Errors.INSPECT_NOT_ALLOWED(id);
  if (manifest.server?.runtime !== 'node') throw Errors.INSPECT_BAD(id, given, 'only a plugin with server.runtime "node" runs under the Node inspector');
  const match = /^(?:(127\.0\.0\.1|localhost|\[::1\]):)?(\d{1,5})$/.exec(given);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw Errors.INSPECT_BAD(id, given, 'expected a port, or 127.0.0.1:<port>, localhost:<port> or [::1]:<port> (0 picks a free port)');
  return `${match[1] ?? '127.0.0.1'}:${port}`;
}

function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so two equal configurations compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v);
}

function versionChange(installed: string, bundle: string): 'upgrade' | 'downgrade' | 'same' {
  const order = semver.compare(installed, bundle);
  return order < 0 ? 'upgrade' : order > 0 ? 'downgrade' : 'same';
}
