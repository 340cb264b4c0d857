/** The runtime's Prometheus metrics, in one registry the server exposes at /metrics. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PluginState } from '../store/store';

const STATES: PluginState[] = ['not_running', 'starting', 'running', 'failed_to_start', 'failed_to_stay_running', 'stopping'];
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly hookDuration = new Histogram({
    name: 'plughost_hook_duration_seconds',
    help: 'Duration of hook calls into plugins, by plugin, hook and outcome.',
    labelNames: ['plugin', 'hook', 'outcome'] as const,
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly apiDuration = new Histogram({
    name: 'plughost_api_call_duration_seconds',
    help: 'Duration of API calls from plugins into the host, by plugin, method and outcome.',
    labelNames: ['plugin', 'method', 'outcome'] as const,
    buckets: BUCKETS,
    registers: [this.registry],
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

  setState(plugin: string, current: PluginState): void {
    for (const s of STATES) this.state.set({ plugin, state: s }, s === current ? 1 : 0);
  }

  /** Removes every series labelled with `plugin` (a removed plugin must not linger in /metrics). */
  async forget(plugin: string): Promise<void> {
    for (const metric of [this.hookDuration, this.apiDuration, this.restarts, this.state, this.droppedLogLines] as const) {
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
