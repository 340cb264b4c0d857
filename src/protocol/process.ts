/**
 * The plugin as an operating-system process: checksum before launch, a process
 * group of its own so that killing it kills everything it started, and an exit
 * promise that does not wait for pipes a grandchild may still hold open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Errors } from '../errors';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Variables passed through from the host's environment by default; everything else stays out (e.g. an admin token). */
export const DEFAULT_INHERITED_ENV: readonly string[] = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SYSTEMROOT', 'NODE_OPTIONS'];

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Refuses to go on when the executable's SHA-256 is not the one expected. */
export async function verifyChecksum(file: string, expectedHex: string): Promise<void> {
  const actual = await sha256File(file);
  if (actual !== expectedHex.toLowerCase()) throw Errors.CHECKSUM_MISMATCH(file, expectedHex, actual);
}

export interface LaunchOptions {
  cmd: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
}

/** Starts the plugin as the leader of a new process group, with all three stdio pipes. */
export function launch(opts: LaunchOptions): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.cmd, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const onError = (err: Error) => reject(Errors.SPAWN_FAILED(opts.cmd, err.message));
    child.once('error', onError);
    child.once('spawn', () => {
      child.off('error', onError);
      // The host never writes to the plugin's stdin; errors on it (EPIPE) are meaningless.
      child.stdin?.on('error', () => undefined);
      resolve(child);
    });
  });
}

export function exitPromise(child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** SIGKILL to the whole process group led by `pid`; a group already gone is fine. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** For a process we did not start (reattach): resolves when it is gone, by polling. */
export function pollExit(pid: number, intervalMs = 100): { promise: Promise<ExitInfo>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let finish: (info: ExitInfo) => void = () => undefined;
  const promise = new Promise<ExitInfo>((resolve) => {
    finish = resolve;
    const tick = () => {
      if (!isAlive(pid)) resolve({ code: null, signal: null });
      else timer = setTimeout(tick, intervalMs);
    };
    tick();
  });
  return {
    promise,
    stop: () => {
      clearTimeout(timer);
      finish({ code: null, signal: null });
    },
  };
}
