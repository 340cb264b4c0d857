/**
 * The first check: a plugin started without the magic cookie must refuse to
 * run, as go-plugin's do (a message on stderr, exit 1), and must not print a
 * handshake line. It is given everything else a host would give it, so a
 * plugin that ignores the cookie really does start serving, and is then killed.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { DEFAULT_HANDSHAKE, DEFAULT_MAX_PORT, DEFAULT_MIN_PORT, ENV, NOT_A_PLUGIN_MESSAGE, STDERR_TAIL_LINES } from '../protocol/constants';
import { DEFAULT_INHERITED_ENV, killGroup, raceTimeout } from '../protocol/process';
import { saidNotAPlugin } from '../protocol/startup';
import type { LaunchPlan } from './target';
import type { CheckResult } from './types';

const COOKIE = `${DEFAULT_HANDSHAKE.magicCookieKey}=${DEFAULT_HANDSHAKE.magicCookieValue}`;
const GO_PLUGIN_LINE = NOT_A_PLUGIN_MESSAGE.split('\n')[0];
const EXPECTED = `without ${COOKIE} in its environment, print go-plugin's refusal ("${GO_PLUGIN_LINE}") and exit 1 without serving: no handshake line`;
const OUTPUT_SETTLE_MS = 500;

/** The environment a host gives a plugin, minus the cookie. */
export function hostEnv(plan: LaunchPlan, socketDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of DEFAULT_INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  return {
    ...env,
    ...plan.env,
    [ENV.protocolVersions]: '1',
    [ENV.minPort]: String(DEFAULT_MIN_PORT),
    [ENV.maxPort]: String(DEFAULT_MAX_PORT),
    [ENV.unixSocketDir]: socketDir,
  };
}

export async function checkCookie(plan: LaunchPlan, waitMs: number): Promise<CheckResult> {
  const base = { id: 'cookie' as const, title: `refuses to run without ${COOKIE}` };
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'phk-'));
  const env = hostEnv(plan, socketDir);
  delete env[DEFAULT_HANDSHAKE.magicCookieKey];
  try {
    const child = spawn(plan.cmd, plan.args, { cwd: plan.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const outcome = await new Promise<{ kind: 'exit'; code: number | null; signal: string | null } | { kind: 'line' | 'timeout' } | { kind: 'error'; message: string }>(
      (resolve) => {
        const timer = setTimeout(() => resolve({ kind: 'timeout' }), waitMs);
        const done = (v: Parameters<typeof resolve>[0]) => {
          clearTimeout(timer);
          resolve(v);
        };
        child.once('error', (err) => done({ kind: 'error', message: err.message }));
        child.once('exit', (code, signal) => done({ kind: 'exit', code, signal }));
        child.stdout.on('data', () => {
          if (stdout.includes('\n')) done({ kind: 'line' });
        });
      },
    );
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid);
      await new Promise((resolve) => child.once('exit', resolve));
    }
    // 'exit' can come before the last output has been read from the pipes; the refusal is in that output.
    if (outcome.kind === 'exit') await outputEnded(child, OUTPUT_SETTLE_MS);
    const said = firstLine(stderr);
    switch (outcome.kind) {
      case 'error':
        return { ...base, status: 'fail', detail: 'the plugin could not be launched', expected: EXPECTED, got: `launch failed: ${outcome.message}` };
      case 'line':
        return { ...base, status: 'fail', detail: 'the plugin ignored the missing cookie', expected: EXPECTED, got: `it printed ${JSON.stringify(firstLine(stdout))} and kept running` };
      case 'timeout':
        return { ...base, status: 'fail', detail: 'the plugin ignored the missing cookie', expected: EXPECTED, got: `still running after ${waitMs} ms${said ? `; stderr: ${JSON.stringify(said)}` : ''}` };
      case 'exit': {
        const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
        // An exit alone proves nothing: a plugin that crashes at start exits 1 as well.
        if (!saidNotAPlugin(stderr) && !saidNotAPlugin(stdout)) {
          const last = lastLines(stderr);
          return {
            ...base,
            status: 'fail',
            detail: "the plugin exited without go-plugin's refusal, so it did not show that it checks the cookie",
            expected: EXPECTED,
            got: `it ${how} without printing the refusal; ${last.length ? `last stderr lines: ${last.map((l) => JSON.stringify(l)).join(' | ')}` : 'it wrote nothing to stderr'}`,
          };
        }
        const notes = outcome.code === 0 ? ['it exited with status 0; go-plugin plugins exit 1 here, so scripts can tell a refusal from a run'] : undefined;
        return { ...base, status: 'pass', detail: `${how} without serving${said ? `, saying ${JSON.stringify(said)}` : ''}`, notes };
      }
    }
  } finally {
    fs.rmSync(socketDir, { recursive: true, force: true });
  }
}

/** Resolves when both pipes have closed, or after `ms` (a grandchild may hold them open). */
async function outputEnded(child: ChildProcessByStdio<null, Readable, Readable>, ms: number): Promise<void> {
  const closed = (s: Readable) => (s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r())));
  await raceTimeout(Promise.all([closed(child.stdout), closed(child.stderr)]), ms);
}

function lastLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-STDERR_TAIL_LINES).map((l) => l.slice(0, 300));
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').slice(0, 300);
}
