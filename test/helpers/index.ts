/** Shared test helpers: temp dirs, fixture paths, log collection and promisified unary calls. */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/protocol/proto';
import type { PluginLogRecord } from '../../src/protocol/log-lines';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const NODE = process.execPath;

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** A fresh temp dir, short (unix socket paths are limited), removed by the returned cleanup. */
export function tempDir(prefix = 'pht-'): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface EchoClient extends grpc.Client {
  Say(req: { text?: string; id?: number }, cb: (err: grpc.ServiceError | null, res: { text: string; id: number }) => void): void;
  CallBack(req: { text?: string; id?: number }, cb: (err: grpc.ServiceError | null, res: { text: string; id: number }) => void): void;
  Offer(req: { text?: string; id?: number }, cb: (err: grpc.ServiceError | null, res: { text: string; id: number }) => void): void;
  Print(req: { text?: string; id?: number }, cb: (err: grpc.ServiceError | null, res: { text: string; id: number }) => void): void;
}

export type EchoCtor = grpc.ServiceClientConstructor & (new (...args: ConstructorParameters<grpc.ServiceClientConstructor>) => EchoClient);

export function echoService(): EchoCtor {
  const loaded = loadProtos(['echo.proto'], [path.join(FIXTURES, 'proto')]) as unknown as { echo: { Echo: EchoCtor } };
  return loaded.echo.Echo;
}

/** Calls a unary method and returns its reply as a promise. */
export function unary<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Collects plugin log records and waits for one that matches. */
export class LogCollector {
  readonly records: PluginLogRecord[] = [];
  private waiters: Array<{ match: (r: PluginLogRecord) => boolean; resolve: (r: PluginLogRecord) => void }> = [];

  readonly onLog = (r: PluginLogRecord): void => {
    this.records.push(r);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(r)) return true;
      w.resolve(r);
      return false;
    });
  };

  waitFor(match: (r: PluginLogRecord) => boolean, timeoutMs = 10_000): Promise<PluginLogRecord> {
    const found = this.records.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log record within ${timeoutMs} ms; got ${JSON.stringify(this.records.slice(-5))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone or the bound passes; returns whether it is gone. */
export async function waitGone(pid: number, boundMs = 5_000): Promise<boolean> {
  const until = Date.now() + boundMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/**
 * Records where each pending, referenced timer was created, so a test can
 * assert that close() left none of ours behind.
 */
export function trackTimers(): { pendingFrom(pathPart: string): string[] } {
  const pending = new Map<NodeJS.Timeout, string>();
  const realSet = global.setTimeout;
  const realClear = global.clearTimeout;
  const patchedSet = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer: NodeJS.Timeout = realSet(() => {
      pending.delete(timer);
      fn(...args);
    }, ms);
    pending.set(timer, new Error().stack?.split('\n').slice(2, 4).join(' | ') ?? '');
    return timer;
  }) as unknown as typeof setTimeout;
  global.setTimeout = Object.assign(patchedSet, { __promisify__: realSet.__promisify__ });
  global.clearTimeout = ((timer?: NodeJS.Timeout) => {
    if (timer) pending.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  return {
    pendingFrom: (pathPart) => [...pending.entries()].filter(([t, where]) => t.hasRef() && where.includes(pathPart)).map(([, where]) => where),
  };
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after the bound. */
export async function until(check: () => Promise<boolean> | boolean, what: string, boundMs = 15_000): Promise<void> {
  await waitFor(check, { timeoutMs: boundMs, what });
}

/**
 * Polls `fn` until it returns a value that is not false, undefined or null, and
 * returns that value. A throw counts as "not yet" (a node restarting refuses
 * connections for a while). After `timeoutMs` it throws, naming `what` and
 * quoting the last value or error seen, so a failure says how far it got.
 */
export async function waitFor<T>(
  fn: () => Promise<T | false | undefined | null> | T | false | undefined | null,
  options: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<T> {
  const end = Date.now() + options.timeoutMs;
  let last = 'nothing yet';
  for (;;) {
    try {
      const value = await fn();
      if (value !== false && value !== undefined && value !== null) return value;
      last = `returned ${String(value)}`;
    } catch (err) {
      last = `threw ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() >= end) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}; the last try ${last}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

/**
 * Collects what a child process writes to stdout. `waitFor` resolves with the
 * first match of `pattern`, and fails, quoting the output so far, when the
 * child exits first or the bound passes.
 */
export function watchStdout(child: ChildProcess): { readonly text: string; waitFor(pattern: RegExp, what: string, boundMs?: number): Promise<RegExpExecArray> } {
  let text = '';
  child.stdout!.on('data', (c: Buffer) => { text += c.toString(); });
  return {
    get text() {
      return text;
    },
    async waitFor(pattern, what, boundMs = 60_000) {
      const deadline = Date.now() + boundMs;
      for (;;) {
        const match = pattern.exec(text);
        if (match) return match;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what}:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/**
 * The one rule for tests that need something from outside: true when `missing` is null;
 * otherwise says why and skips (false), or throws under PLUGHOST_REQUIRE_INTEROP=1 (CI),
 * where a test that silently skipped would hide a broken setup.
 */
export function availableOrSkip(what: string, missing: string | null): boolean {
  if (missing === null) return true;
  if (process.env.PLUGHOST_REQUIRE_INTEROP === '1') throw new Error(`PLUGHOST_REQUIRE_INTEROP=1: ${missing}`);
  process.stderr.write(`SKIP ${what}: ${missing}\n`);
  return false;
}

/** A loopback port nobody listens on (the kernel's pick, released again). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
