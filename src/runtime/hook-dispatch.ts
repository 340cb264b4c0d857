/**
 * Running the integrator's hooks across plugins. Notify: every running plugin
 * that implements the hook, in parallel, each under its own deadline, errors
 * isolated. Filter: a chain in ascending plugin-id order (stable, and the same
 * on every host), each plugin seeing the previous one's payload; a plugin that
 * fails or passes its deadline is skipped (fail-open) unless the hook is
 * configured fail-closed.
 */
import * as grpc from '@grpc/grpc-js';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import { Errors } from '../errors';
import { jsonBytes, parseJsonBytes } from '../protocol/contract';
import { messageTooLarge } from '../protocol/limits';
import { secondsSince, type RuntimeMetrics } from './metrics';
import { errorMessage, type PluginSupervisor } from './supervisor';
import type { FilterResult, FilterStep, HookCallContext, HookPolicy, NotifyOutcome } from './types';

export class HookDispatcher {
  constructor(private readonly metrics: RuntimeMetrics) {}

  /** Calls one plugin's hook, timed and under its deadline. `callerId` is the calling plugin's id, '' when the host calls. */
  async run(plugin: PluginSupervisor, hook: string, payload: unknown, context: HookCallContext = {}, callerId = ''): Promise<RunHookResponse__Output> {
    return this.runBytes(plugin, hook, jsonBytes(payload), context, callerId);
  }

  /** run() with the payload already encoded: a filter chain hands each plugin's answer to the next as the bytes it got. */
  private async runBytes(plugin: PluginSupervisor, hook: string, payload: Buffer, context: HookCallContext, callerId: string): Promise<RunHookResponse__Output> {
    const transport = plugin.hookTransport;
    if (!plugin.running || !transport) throw Errors.PLUGIN_NOT_RUNNING(plugin.id, plugin.state);
    if (!plugin.implemented.hooks.has(hook)) throw Errors.HOOK_NOT_IMPLEMENTED(plugin.id, hook);
    const series = this.metrics.hookSeries(plugin.id, hook);
    const started = performance.now();
    try {
      const res = await transport.call(
        { hook, payload, context: { request_id: context.requestId ?? '', user_id: context.userId ?? '', values: context.values ?? {}, caller_plugin_id: callerId } },
        plugin.hookTimeoutMs,
      );
      (res.rejected ? series.rejected : series.ok).observe(secondsSince(started));
      return res;
    } catch (err) {
      const timedOut = (err as grpc.ServiceError).code === grpc.status.DEADLINE_EXCEEDED;
      (timedOut ? series.timeout : series.error).observe(secondsSince(started));
      if (timedOut) throw Errors.HOOK_TIMEOUT(plugin.id, hook, plugin.hookTimeoutMs);
      throw messageTooLarge(err, `hook ${hook} of plugin ${JSON.stringify(plugin.id)}`, plugin.maxMessageBytes) ?? Errors.HOOK_FAILED(plugin.id, hook, errorMessage(err));
    }
  }

  async notify(plugins: PluginSupervisor[], hook: string, payload: unknown, context?: HookCallContext): Promise<NotifyOutcome[]> {
    const targets = plugins.filter((p) => p.running && p.implemented.hooks.has(hook));
    return Promise.all(
      targets.map(async (p) => {
        const started = Date.now();
        try {
          await this.run(p, hook, payload, context);
          return { pluginId: p.id, ok: true, durationMs: Date.now() - started };
        } catch (err) {
          return { pluginId: p.id, ok: false, error: errorMessage(err), durationMs: Date.now() - started };
        }
      }),
    );
  }

  async filter<P>(plugins: PluginSupervisor[], hook: string, payload: P, policy: HookPolicy = {}, context?: HookCallContext): Promise<FilterResult<P>> {
    const chain = plugins.filter((p) => p.running && p.implemented.hooks.has(hook)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const steps: FilterStep[] = [];
    let current = payload;
    let bytes: Buffer | undefined;
    for (const p of chain) {
      const started = Date.now();
      try {
        bytes ??= jsonBytes(payload);
        const res = await this.runBytes(p, hook, bytes, context ?? {}, '');
        const durationMs = Date.now() - started;
        if (res.rejected) {
          steps.push({ pluginId: p.id, outcome: 'rejected', durationMs });
          return { rejected: true, reason: res.reason || `rejected by ${p.id}`, by: p.id, payload: current, steps };
        }
        if (res.payload.length > 0) {
          // Parsed here so that an answer that is not JSON fails its own step (and is skipped); the next plugin gets the bytes as they came.
          current = parseJsonBytes<P>(res.payload, current);
          bytes = res.payload;
          steps.push({ pluginId: p.id, outcome: 'changed', durationMs });
        } else {
          steps.push({ pluginId: p.id, outcome: 'unchanged', durationMs });
        }
      } catch (err) {
        const error = errorMessage(err);
        steps.push({ pluginId: p.id, outcome: 'failed', error, durationMs: Date.now() - started });
        if (policy.failClosed) return { rejected: true, reason: error, by: p.id, payload: current, steps };
      }
    }
    return { rejected: false, payload: current, steps };
  }
}

/** Event topic patterns: exact, a prefix ending in "*", or "*" for everything. */
export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === '*' || pattern === topic) return true;
  return pattern.endsWith('*') && topic.startsWith(pattern.slice(0, -1));
}
