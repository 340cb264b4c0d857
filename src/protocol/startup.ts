/**
 * The window between launch and handshake: wait for the first stdout line under
 * the start timeout, and when the plugin exits or stalls instead, say so with
 * its exit status and the last lines it wrote to stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { Errors } from '../errors';
import { DEFAULT_HANDSHAKE, NOT_A_PLUGIN_MESSAGE, STDERR_TAIL_LINES } from './constants';
import { LineSplitter } from './log-lines';
import type { ExitInfo } from './process';

const REFUSAL_LINE = NOT_A_PLUGIN_MESSAGE.split('\n')[0];

/**
 * True when a plugin's output holds go-plugin's refusal ("This binary is a
 * plugin..."): what a plugin prints when the magic cookie is missing or does
 * not match, and only then. An exit code alone says nothing: a plugin that
 * crashes at start exits 1 too.
 */
export function saidNotAPlugin(output: string | readonly string[]): boolean {
  const lines = typeof output === 'string' ? output.split('\n') : output;
  return lines.some((line) => line.trim() === REFUSAL_LINE);
}

/** The error for a plugin gone before its handshake: a cookie refusal when it says so, else its exit status. */
export function exitedBeforeHandshake(info: ExitInfo, tail: StderrTail, cookieKey: string): Error {
  const lines = tail.lines();
  if (saidNotAPlugin(lines)) return Errors.HANDSHAKE_COOKIE_REFUSED(cookieKey, info.code, info.signal, lines);
  return Errors.HANDSHAKE_EXITED(info.code, info.signal, lines);
}

/** The last few stderr lines, for error messages. */
export class StderrTail {
  private readonly kept: string[] = [];
  private ended = false;
  private readonly endWaiters: Array<() => void> = [];

  constructor(private readonly max = STDERR_TAIL_LINES) {}

  push(line: string): void {
    this.kept.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.kept.length > this.max) this.kept.shift();
  }

  markEnded(): void {
    this.ended = true;
    for (const w of this.endWaiters.splice(0)) w();
  }

  /** Resolves when stderr has ended, or after `ms`: an exited plugin's last words may still be in the pipe. */
  settle(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  lines(): string[] {
    return [...this.kept];
  }
}

/**
 * Resolves with the plugin's first stdout line. Lines after it go to
 * `onLaterLine`, so stdout keeps draining and never blocks the plugin.
 */
export function waitForHandshakeLine(
  child: ChildProcess,
  exited: Promise<ExitInfo>,
  tail: StderrTail,
  timeoutMs: number,
  onLaterLine: (line: string, truncated: boolean) => void,
  maxLineBytes?: number,
  cookieKey = DEFAULT_HANDSHAKE.magicCookieKey,
): Promise<string> {
  child.stderr!.once('close', () => tail.markEnded());
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const stdout = new LineSplitter((line, truncated) => {
      if (settled) onLaterLine(line, truncated);
      else finish(() => resolve(line));
    }, maxLineBytes);
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stdout!.on('end', () => {
      stdout.end();
      if (!settled) {
        void Promise.race([exited, delay(200)]).then(async (info) => {
          await tail.settle(200);
          finish(() =>
            reject(info ? exitedBeforeHandshake(info, tail, cookieKey) : Errors.HANDSHAKE_STDOUT_CLOSED(tail.lines())),
          );
        });
      }
    });
    const timer = setTimeout(() => finish(() => reject(Errors.HANDSHAKE_TIMEOUT(timeoutMs, tail.lines()))), timeoutMs);
    void exited.then(async (info) => {
      if (settled) return;
      await tail.settle(500);
      finish(() => reject(exitedBeforeHandshake(info, tail, cookieKey)));
    });
  });
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}
