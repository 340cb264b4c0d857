/** The runtime's Prometheus metrics, in one registry the server exposes at /metrics. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { PluginState } from '../store/store';
import { type HistogramSeries, SeriesCounter, SeriesHistogram } from './metric-series';

const STATES: PluginState[] = ['not_running', 'starting', 'running', 'failed_to_start', 'failed_to_stay_running', 'stopping'];
/** How a hook call ended, as the hook histogram's `outcome` label says. */
export type HookOutcome = 'ok' | 'rejected' | 'timeout' | 'error';
/** How an API call ended, as the API histogram's `outcome` label says. */
export type ApiOutcome = 'ok' | 'error';
/** One histogram series: labels resolved once, observed per call. */
export type Series = HistogramSeries;
const HOOK_OUTCOMES: readonly HookOutcome[] = ['ok', 'rejected', 'timeout', 'error'];
const API_OUTCOMES: readonly ApiOutcome[] = ['ok', 'error'];

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class RuntimeMetrics {
  readonly registry = new Registry();
  // The per-call metrics hold their series (metric-series.ts); the rest change rarely and stay prom-client's own.
  readonly hookDuration = new SeriesHistogram({
    name: 'plughost_hook_duration_seconds',
    help: 'Duration of hook calls into plugins, by plugin, hook and outcome.',
    labelNames: ['plugin', 'hook', 'outcome'] as const,
    buckets: BUCKETS,
    registry: this.registry,
  });
  readonly apiDuration = new SeriesHistogram({
    name: 'plughost_api_call_duration_seconds',
    help: 'Duration of API calls from plugins into the host, by plugin, method and outcome.',
    labelNames: ['plugin', 'method', 'outcome'] as const,
    buckets: BUCKETS,
    registry: this.registry,
  });
  readonly hookStreamsOpened = new Counter({
    name: 'plughost_hook_streams_opened_total',
    help: 'RunHookStream streams the host opened to plugins: one per start of a plugin that offers it, more when streams broke and were reopened.',
    labelNames: ['plugin'] as const,
    registers: [this.registry],
  });
  readonly apiStreamsOpened = new Counter({
    name: 'plughost_api_streams_opened_total',
    help: 'API.CallStream streams plugins opened to the host: about one per activation of a plugin that uses it, more when streams broke and were reopened.',
    labelNames: ['plugin'] as const,
    registers: [this.registry],
  });
  readonly apiStreamCalls = new SeriesCounter({
    name: 'plughost_api_stream_calls_total',
    help: 'API calls plugins made over API.CallStream (unary calls are counted by plughost_api_call_duration_seconds alone).',
    labelNames: ['plugin'] as const,
    registry: this.registry,
  });
  readonly restarts = new Counter({
    name: 'plughost_plugin_restarts_total',
    help: 'Restarts of plugins after a crash or failed health check.',
    labelNames: ['plugin'] as const,
    registers: [this.registry],
  });
  readonly state = new Gauge({
    name: 'plughost_plugin_state',
    help: 'Current state of each plugin: 1 for the state it is in, 0 for the others.',
    labelNames: ['plugin', 'state'] as const,
    registers: [this.registry],
  });
  readonly droppedLogLines = new Counter({
    name: 'plughost_plugin_log_lines_dropped_total',
    help: 'Plugin output lines dropped or cut because they exceeded a bound.',
    labelNames: ['plugin'] as const,
    registers: [this.registry],
  });

  /** The hook and API histograms' series by plugin, then hook or method: a call finds its series with two Map lookups. */
  private readonly hookChildren = new Map<string, Map<string, Record<HookOutcome, Series>>>();
  private readonly apiChildren = new Map<string, Map<string, Record<ApiOutcome, Series>>>();

  /** The hook histogram's series of one plugin and hook, one per outcome. */
  hookSeries(plugin: string, hook: string): Record<HookOutcome, Series> {
    return children(this.hookChildren, this.hookDuration, 'hook', HOOK_OUTCOMES, plugin, hook);
  }

  /** The API histogram's series of one plugin and method, one per outcome. */
  apiSeries(plugin: string, method: string): Record<ApiOutcome, Series> {
    return children(this.apiChildren, this.apiDuration, 'method', API_OUTCOMES, plugin, method);
  }

  setState(plugin: string, current: PluginState): void {
    for (const s of STATES) this.state.set({ plugin, state: s }, s === current ? 1 : 0);
  }

  /** Removes every series labelled with `plugin` (a removed plugin must not linger in /metrics). */
  async forget(plugin: string): Promise<void> {
    this.hookChildren.delete(plugin);
    this.apiChildren.delete(plugin);
    for (const metric of [this.hookDuration, this.apiDuration, this.apiStreamCalls]) metric.removeWhere('plugin', plugin);
    for (const metric of [this.hookStreamsOpened, this.apiStreamsOpened, this.restarts, this.state, this.droppedLogLines] as const) {
      const { values } = await metric.get();
      const seen = new Set<string>();
      for (const { labels } of values) {
        if (labels.plugin !== plugin) continue;
        // Histogram buckets repeat a series' labels with an `le` of their own: remove each series once.
        const { le: _bucket, ...series } = labels as Record<string, string | number>;
        const key = JSON.stringify(series);
        if (seen.has(key)) continue;
        seen.add(key);
        (metric as { remove(labels: Record<string, string | number>): void }).remove(series);
      }
    }
  }
}

/** Seconds since `started`, a performance.now() reading: what a duration histogram observes. */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}

/** The cached series of `histogram` for (plugin, name), made on first use; a series adds no line to /metrics until it observes. */
function children<O extends string, N extends 'hook' | 'method'>(
  cache: Map<string, Map<string, Record<O, Series>>>,
  histogram: SeriesHistogram<'plugin' | N | 'outcome'>,
  nameLabel: N,
  outcomes: readonly O[],
  plugin: string,
  name: string,
): Record<O, Series> {
  let byName = cache.get(plugin);
  if (!byName) cache.set(plugin, (byName = new Map()));
  let series = byName.get(name);
  if (!series) {
    series = {} as Record<O, Series>;
    for (const outcome of outcomes) series[outcome] = histogram.series({ plugin, [nameLabel]: name, outcome } as Record<'plugin' | N | 'outcome', string>);
    byName.set(name, series);
  }
  return series;
}
