/**
 * The checks made over a live connection to the plugin, after the handshake:
 * health, Implemented, OnActivate with the API on the broker, a sample call of
 * each hook, ServeHTTP, and Shutdown (the hook streams: hook-stream-checks.ts).
 * Each returns a CheckResult whose failure says what the protocol expects and
 * what came.
 */
import * as grpc from '@grpc/grpc-js';
import type { ImplementedResponse__Output } from '../gen/plughost/v1/ImplementedResponse';
import type { HTTPRequestPart } from '../gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponsePart__Output } from '../gen/plughost/v1/HTTPResponsePart';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import type { PluginClient } from '../protocol/client';
import { HEALTH_SERVICE_NAME } from '../protocol/constants';
import { API_STREAM_FEATURE } from '../protocol/api-stream';
import { LIFECYCLE_METHODS, callUnary, jsonBytes, type HooksClient } from '../protocol/contract';
import { standardServices } from '../protocol/proto';
import { raceTimeout } from '../protocol/process';
import type { ApiDouble } from './api-double';
import type { LaunchPlan } from './target';
import type { CheckResult } from './types';

export interface Session {
  client: PluginClient;
  hooks: HooksClient;
  plan: LaunchPlan;
  api: ApiDouble;
  hostVersion: string;
  startTimeoutMs: number;
  callTimeoutMs: number;
  graceMs: number;
  /** The plugin's last stderr lines, for failures that may be explained there. */
  stderrTail(): string[];
}

const ALWAYS = ['Implemented', 'RunHook'];

export async function checkHealth(s: Session): Promise<CheckResult> {
  const base = { id: 'health' as const, title: `grpc.health.v1.Health/Check("${HEALTH_SERVICE_NAME}")` };
  try {
    await s.client.ping(s.callTimeoutMs);
    return { ...base, status: 'pass', detail: 'SERVING' };
  } catch (err) {
    return { ...base, status: 'fail', detail: 'the health check did not pass', expected: `status SERVING for service "${HEALTH_SERVICE_NAME}"`, got: describe(err, s) };
  }
}

export async function checkImplemented(s: Session): Promise<{ result: CheckResult; implemented?: ImplementedResponse__Output }> {
  const base = { id: 'implemented' as const, title: 'plughost.v1.Hooks/Implemented' };
  let res: ImplementedResponse__Output;
  try {
    res = await callUnary<object, ImplementedResponse__Output>(s.hooks.Implemented.bind(s.hooks), {}, s.callTimeoutMs);
  } catch (err) {
    return { result: { ...base, status: 'fail', detail: 'Implemented did not answer', expected: 'an ImplementedResponse (the Hooks service is served beside the standard ones)', got: describe(err, s) } };
  }
  const known = [...LIFECYCLE_METHODS, ...ALWAYS] as string[];
  const unknown = res.methods.filter((m) => !known.includes(m));
  const problems: string[] = [];
  if (unknown.length) problems.push(`unknown method names ${unknown.map((m) => JSON.stringify(m)).join(', ')}`);
  const badHooks = res.hooks.filter((h) => h.trim() === '');
  if (badHooks.length) problems.push('an empty hook name');
  if (new Set(res.hooks).size !== res.hooks.length) problems.push('a hook listed twice');
  if (res.event_topics.some((t) => t.trim() === '')) problems.push('an empty event topic');
  if (res.event_topics.length && !res.methods.includes('OnEvent')) problems.push('event_topics without "OnEvent" in methods (no event would be delivered)');
  if (problems.length) {
    return {
      result: {
        ...base,
        status: 'fail',
        detail: 'the lists are not usable as they are',
        expected: `methods from ${LIFECYCLE_METHODS.join(', ')}; non-empty, distinct hook names; event topics only with OnEvent`,
        got: `${problems.join('; ')} in ${summary(res)}`,
      },
      implemented: res,
    };
  }
  return { result: { ...base, status: 'pass', detail: summary(res) }, implemented: res };
}

export async function checkActivate(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  const base = { id: 'activate' as const, title: 'OnActivate, with the API served on the broker' };
  s.api.setPhase('activate');
  let brokerId: number;
  try {
    brokerId = s.client.broker.nextId();
    await s.client.broker.acceptAndServe(brokerId, [s.api.registration]);
  } catch (err) {
    return { ...base, status: 'fail', detail: 'the API could not be offered on the broker', expected: 'the GRPCBroker.StartStream stream open, to announce the API there', got: describe(err, s) };
  }
  if (!implemented.methods.includes('OnActivate')) {
    return { ...base, status: 'skip', detail: `the plugin does not list OnActivate, so a host never calls it (the API stays offered on broker id ${brokerId})` };
  }
  const { manifest } = s.plan;
  try {
    await callUnary(
      s.hooks.OnActivate.bind(s.hooks),
      { api_broker_id: brokerId, plugin_id: manifest.id, manifest: jsonBytes(manifest), configuration: jsonBytes(s.api.config), host_version: s.hostVersion, api_features: [API_STREAM_FEATURE] },
      s.startTimeoutMs,
    );
  } catch (err) {
    return { ...base, status: 'fail', detail: 'OnActivate failed, so a host would not start this plugin', expected: `OnActivate to return OK (the API is served on broker id ${brokerId})`, got: describe(err, s), notes: apiNotes(s, 'activate') };
  }
  const calls = s.api.calls.filter((c) => c.during === 'activate');
  const detail = calls.length
    ? `OK; the plugin dialed the API on broker id ${brokerId} and called ${calls.map((c) => `${c.method} (${c.outcome})`).join(', ')}`
    : `OK; the plugin made no API call during OnActivate (plugins that use the API dial broker id ${brokerId} here)`;
  return { ...base, status: 'pass', detail, notes: apiNotes(s, 'activate') };
}

export async function checkHook(s: Session, hook: string): Promise<CheckResult> {
  const base = { id: 'hook' as const, title: `RunHook ${JSON.stringify(hook)} with payload {}` };
  s.api.setPhase('hook');
  let res: RunHookResponse__Output;
  try {
    res = await callUnary<object, RunHookResponse__Output>(
      s.hooks.RunHook.bind(s.hooks),
      { hook, payload: jsonBytes({}), context: { request_id: 'conformance', user_id: '', values: {} } },
      s.callTimeoutMs,
    );
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    const message = (err as grpc.ServiceError).details ?? '';
    const transport = [grpc.status.UNIMPLEMENTED, grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE, grpc.status.CANCELLED];
    if (typeof code === 'number' && !transport.includes(code) && message.trim() !== '') {
      return { ...base, status: 'pass', detail: `answered with error ${grpc.status[code]}: ${message}`, notes: ['an error is a fine answer when the hook needs real data; hosts show its message to operators'] };
    }
    const expected =
      code === grpc.status.UNIMPLEMENTED
        ? 'RunHook to handle every hook listed in ImplementedResponse.hooks'
        : `a RunHookResponse, or an error status with a message, within ${s.callTimeoutMs} ms`;
    return { ...base, status: 'fail', detail: 'the sample call did not get a usable answer', expected, got: describe(err, s) };
  }
  if (res.payload.length > 0) {
    try {
      JSON.parse(res.payload.toString('utf8'));
    } catch (err) {
      return { ...base, status: 'fail', detail: 'the reply payload is not JSON', expected: 'payload: JSON bytes, or empty for "unchanged"', got: `${JSON.stringify(res.payload.toString('utf8').slice(0, 200))} (${(err as Error).message})` };
    }
  }
  if (res.rejected) {
    const notes = res.reason ? undefined : ['rejected without a reason; hosts then show only "rejected by <plugin id>"'];
    return { ...base, status: 'pass', detail: `rejected${res.reason ? `: ${res.reason}` : ''}`, notes };
  }
  const detail = res.payload.length ? `returned payload ${res.payload.toString('utf8').slice(0, 200)}` : 'returned no payload (unchanged)';
  return { ...base, status: 'pass', detail, notes: apiNotes(s, 'hook') };
}

export async function checkHttp(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  const base = { id: 'http' as const, title: 'ServeHTTP GET /' };
  if (!implemented.methods.includes('ServeHTTP')) return { ...base, status: 'skip', detail: 'the plugin does not list ServeHTTP' };
  s.api.setPhase('http');
  const expected = `a first HTTPResponsePart with head.status 100-599, then body parts, then the end of the stream, within ${s.callTimeoutMs} ms`;
  try {
    const parts = await serveHttpGet(s);
    const first = parts[0];
    if (!first) return { ...base, status: 'fail', detail: 'no response', expected, got: 'the stream ended with no HTTPResponsePart' };
    if (!first.head) return { ...base, status: 'fail', detail: 'the response has no head', expected, got: 'a first HTTPResponsePart without head' };
    const status = first.head.status;
    if (status < 100 || status > 599) return { ...base, status: 'fail', detail: 'bad status', expected, got: `head.status ${status}` };
    const bytes = parts.reduce((n, p) => n + p.body.length, 0);
    const type = first.head.headers.find((h) => h.name.toLowerCase() === 'content-type')?.values[0];
    return { ...base, status: 'pass', detail: `${status}, ${bytes} body bytes${type ? ` (${type})` : ''}`, notes: apiNotes(s, 'http') };
  } catch (err) {
    return { ...base, status: 'fail', detail: 'the ServeHTTP stream failed', expected, got: describe(err, s) };
  }
}

/** Sends GET / as the host does (head, no body, half-close) and collects the reply. */
function serveHttpGet(s: Session): Promise<HTTPResponsePart__Output[]> {
  return new Promise((resolve, reject) => {
    const call = s.hooks.ServeHTTP({ deadline: Date.now() + s.callTimeoutMs });
    const parts: HTTPResponsePart__Output[] = [];
    call.on('data', (p: HTTPResponsePart__Output) => parts.push(p));
    call.on('error', reject);
    call.on('end', () => resolve(parts));
    const head: HTTPRequestPart = {
      head: { method: 'GET', path: '/', query: '', headers: [{ name: 'Accept', values: ['*/*'] }], remote_addr: '127.0.0.1', user_id: '' },
      body: Buffer.alloc(0),
    };
    call.write(head);
    call.end();
  });
}

export async function checkShutdown(s: Session, implemented: ImplementedResponse__Output | undefined): Promise<CheckResult> {
  const base = { id: 'shutdown' as const, title: `Controller.Shutdown, then exit within ${s.graceMs} ms` };
  s.api.setPhase('shutdown');
  const expected = `after GRPCController/Shutdown, the process exits with code 0 within the grace period (${s.graceMs} ms); a host then kills its process group`;
  const before = s.client.exitStatus;
  if (before) {
    return { ...base, status: 'fail', detail: 'the plugin was gone before Shutdown', expected, got: `it had already exited (${exitText(before)})${tail(s)}` };
  }
  const notes: string[] = [];
  if (implemented?.methods.includes('OnDeactivate')) {
    try {
      await callUnary(s.hooks.OnDeactivate.bind(s.hooks), {}, s.callTimeoutMs);
    } catch (err) {
      notes.push(`OnDeactivate failed (a host logs it and goes on): ${describe(err, s)}`);
    }
  }
  const controller = s.client.client(standardServices().controller);
  const started = Date.now();
  // An UNAVAILABLE or CANCELLED reply is a plugin that exited before answering: that is fine.
  await new Promise<void>((resolve) => controller.Shutdown({}, { deadline: started + s.graceMs }, () => resolve()));
  const exited = await raceTimeout(s.client.exited, Math.max(0, started + s.graceMs - Date.now()));
  if (!exited) {
    return { ...base, status: 'fail', detail: 'the plugin did not exit', expected, got: `still running ${s.graceMs} ms after Shutdown`, notes };
  }
  const ms = Date.now() - started;
  if (exited.code !== 0) return { ...base, status: 'fail', detail: 'the plugin did not exit cleanly', expected, got: `${exitText(exited)} after ${ms} ms${tail(s)}`, notes };
  return { ...base, status: 'pass', detail: `exited with code 0 ${ms} ms after Shutdown`, notes: notes.length ? notes : undefined };
}

function summary(res: ImplementedResponse__Output): string {
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : '(none)');
  return `methods: ${list(res.methods)}; hooks: ${list(res.hooks)}; event topics: ${list(res.event_topics)}`;
}

/** Failed API calls made during a phase, as notes. */
function apiNotes(s: Session, phase: CheckResult['id']): string[] | undefined {
  const failed = s.api.calls.filter((c) => c.during === phase && c.outcome !== 'OK' && c.outcome !== 'pending');
  return failed.length ? failed.map((c) => `API ${c.method} answered ${c.outcome}: ${c.error ?? ''}`) : undefined;
}

/** A failed call as "CODE: message", with the exit status and stderr tail when the plugin is gone. */
export function describe(err: unknown, s: Session): string {
  const e = err as grpc.ServiceError;
  const text = typeof e?.code === 'number' && grpc.status[e.code] ? `${grpc.status[e.code]}: ${e.details || e.message}` : (e as Error)?.message ?? String(err);
  const exit = s.client.exitStatus;
  return exit ? `${text} (the plugin process has exited: ${exitText(exit)})${tail(s)}` : text;
}

function tail(s: Session): string {
  const lines = s.stderrTail();
  return lines.length ? `; last stderr lines: ${lines.slice(-5).join(' | ')}` : '';
}

function exitText(info: { code: number | null; signal: string | null }): string {
  return info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
}

