/**
 * runConformance: runs one plugin through the protocol the way a plughost host
 * would, check by check, and reports each as pass, fail or skip. A check that
 * cannot run because an earlier one failed is skipped with the reason. The
 * plugin process never outlives the run.
 */
import { PluginClient } from '../protocol/client';
import { contract } from '../protocol/contract';
import type { PluginLogRecord } from '../protocol/log-lines';
import { LogBuffer } from '../runtime/log-buffer';
import { createApiDouble } from './api-double';
import { checkCookie } from './cookie-check';
import { checkHttpSideChannel } from './http-side-channel-check';
import { checkHttpStream } from './http-stream-check';
import { checkApiStream } from './api-stream-check';
import { checkHookBatchStream, checkHookStream } from './hook-stream-checks';
import { checkActivate, checkHealth, checkHook, checkHttp, checkImplemented, checkShutdown, type Session } from './session-checks';
import { planLaunch } from './target';
import type { CheckId, CheckResult, ConformanceOptions, ConformanceReport } from './types';

export const CONFORMANCE_DEFAULTS = {
  startTimeoutMs: 20_000,
  callTimeoutMs: 5_000,
  graceMs: 2_000,
  cookieWaitMs: 3_000,
} as const;

/** The version plugins see in OnActivate and GetHostVersion during a run. */
const HOST_VERSION = packageVersion();
const KEPT_LOGS = 200;

export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const started = Date.now();
  const plan = await planLaunch(options.target, options.args);
  const limits = plan.manifest.limits;
  const startTimeoutMs = options.startTimeoutMs ?? limits?.start_timeout_ms ?? CONFORMANCE_DEFAULTS.startTimeoutMs;
  const callTimeoutMs = options.callTimeoutMs ?? limits?.hook_timeout_ms ?? CONFORMANCE_DEFAULTS.callTimeoutMs;
  const graceMs = options.graceMs ?? CONFORMANCE_DEFAULTS.graceMs;
  const checks: CheckResult[] = [];
  const add = (r: CheckResult) => {
    checks.push(r);
    options.onCheck?.(r);
  };
  const skip = (id: CheckId, title: string, why: string) => add({ id, title, status: 'skip', detail: why });
  const logs = new LogBuffer<PluginLogRecord>(KEPT_LOGS);
  const api = createApiDouble(plan.manifest, HOST_VERSION);
  let client: PluginClient | undefined;
  try {
    add(await checkCookie(plan, options.cookieWaitMs ?? CONFORMANCE_DEFAULTS.cookieWaitMs));

    const title = `handshake line and connection (${options.autoMTLS ? 'AutoMTLS' : 'plaintext'})`;
    try {
      client = await PluginClient.start({
        cmd: plan.cmd,
        args: plan.args,
        cwd: plan.cwd,
        env: plan.env,
        startTimeoutMs,
        killGraceMs: graceMs,
        autoMTLS: options.autoMTLS ?? false,
        onLog: (r) => logs.push(r),
      });
      const line = `1|${client.protocolVersion}|${client.network}|${client.address}|grpc|${options.autoMTLS ? '<cert>' : ''}`;
      add({ id: 'handshake', title, status: 'pass', detail: `${line} (connected)` });
    } catch (err) {
      add({
        id: 'handshake',
        title,
        status: 'fail',
        detail: 'no usable handshake',
        expected: `a first stdout line CORE|APP|NETWORK|ADDRESS|grpc|CERT (core 1, app version 1, network unix or tcp, CERT ${options.autoMTLS ? 'the server certificate as unpadded base64 DER' : 'empty'}) within ${startTimeoutMs} ms, then a gRPC server at ADDRESS`,
        got: (err as Error).message,
      });
    }
    if (!client) {
      for (const [id, t] of [['health', 'health'], ['implemented', 'Implemented'], ['activate', 'OnActivate'], ['hook', 'hooks'], ['hook-stream', 'RunHookStream'], ['hook-batch-stream', 'RunHookBatchStream'], ['http', 'ServeHTTP'], ['http-stream', 'ServeHTTPStream'], ['http-side-channel', 'HTTP side channels'], ['api-stream', 'API.CallStream'], ['shutdown', 'Shutdown']] as const) {
        skip(id, t, 'needs a successful handshake');
      }
      return report();
    }

    const s: Session = {
      client,
      hooks: client.client(contract().Hooks),
      plan,
      api,
      hostVersion: HOST_VERSION,
      startTimeoutMs,
      callTimeoutMs,
      graceMs,
      stderrTail: () => logs.toArray().filter((r) => r.source === 'stderr').map((r) => r.message),
    };
    add(await checkHealth(s));
    const { result, implemented } = await checkImplemented(s);
    add(result);
    if (!implemented) {
      skip('activate', 'OnActivate', 'needs the answer of Implemented');
      skip('hook', 'hooks', 'needs the answer of Implemented');
      skip('hook-stream', 'RunHookStream', 'needs the answer of Implemented');
      skip('hook-batch-stream', 'RunHookBatchStream', 'needs the answer of Implemented');
      skip('http', 'ServeHTTP', 'needs the answer of Implemented');
      skip('http-stream', 'ServeHTTPStream', 'needs the answer of Implemented');
      skip('http-side-channel', 'HTTP side channels', 'needs the answer of Implemented');
      skip('api-stream', 'API.CallStream', 'needs the answer of Implemented');
    } else {
      const activate = await checkActivate(s, implemented);
      add(activate);
      if (activate.status === 'fail') {
        skip('hook', 'hooks', 'a host calls hooks only after a successful OnActivate');
        skip('hook-stream', 'RunHookStream', 'a host calls hooks only after a successful OnActivate');
        skip('hook-batch-stream', 'RunHookBatchStream', 'a host calls hooks only after a successful OnActivate');
        skip('http', 'ServeHTTP', 'a host calls ServeHTTP only after a successful OnActivate');
        skip('http-stream', 'ServeHTTPStream', 'a host calls ServeHTTPStream only after a successful OnActivate');
        skip('http-side-channel', 'HTTP side channels', 'a host calls ServeHTTPStream only after a successful OnActivate');
        skip('api-stream', 'API.CallStream', 'the API is used only after a successful OnActivate');
      } else {
        if (!implemented.hooks.length) skip('hook', 'hooks', 'the plugin lists no hooks');
        for (const hook of implemented.hooks) add(await checkHook(s, hook));
        add(await checkHookStream(s, implemented));
        add(await checkHookBatchStream(s, implemented));
        add(await checkHttp(s, implemented));
        add(await checkHttpStream(s, implemented));
        add(await checkHttpSideChannel(s, implemented));
        add(checkApiStream(s));
      }
    }
    add(await checkShutdown(s, implemented));
    return report();
  } finally {
    await client?.kill();
    await api.close();
    plan.cleanup();
  }

  function report(): ConformanceReport {
    return {
      target: options.target,
      command: [plan.cmd, ...plan.args],
      pluginId: plan.manifest.id,
      version: plan.hasManifest ? plan.manifest.version : undefined,
      ok: checks.every((c) => c.status !== 'fail'),
      checks,
      apiCalls: api.calls,
      logs: logs.toArray(),
      durationMs: Date.now() - started,
    };
  }
}

function packageVersion(): string {
  // Resolved from this file in src/ (tests) or dist/src/ (the CLI).
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      return (require(rel) as { version: string }).version;
    } catch {
      // Try the next location.
    }
  }
  return '0.0.0';
}
