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

/**
 * Node's arguments to run a JavaScript entry: with `--enable-source-maps` when a source map
 * stands beside it (`plughost pack` writes `<entry>.map` for a TypeScript plugin), so stack
 * traces in the plugin's stderr name the author's sources. Without a map the flag has nothing
 * to map and only costs start time.
 */
export function nodeEntryArgs(entry: string): string[] {
  return fs.existsSync(`${entry}.map`) ? ['--enable-source-maps', entry] : [entry];
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

/**
 * Set in the plugin's environment to a value unique to one launch. Children
 * inherit it, so on Linux a descendant that left the process group and lost
 * its parent (double fork, setsid) is still recognisable as the plugin's.
 */
export const INSTANCE_ENV = 'PLUGHOST_INSTANCE';

/** Scans of /proc per kill: a process forking while we kill is caught by the next scan. */
const KILL_PASSES = 5;

/**
 * SIGKILL to everything the plugin started: its process group, and on Linux
 * every process that descends from `pid` or carries `marker` in its
 * environment (children that called setsid, and orphans of a double fork).
 */
export function killPluginTree(child: ChildProcess, marker: string | null): void {
  const pid = child.pid!;
  // Once Node has reaped the plugin its pid may belong to someone else: then only the marker counts.
  const root = child.exitCode === null && child.signalCode === null ? pid : null;
  for (let pass = 0; pass < KILL_PASSES; pass++) {
    killGroup(pid);
    const left = strays(root, marker);
    if (left.length === 0) return;
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Gone between the scan and the kill.
      }
    }
  }
}

/** Live (not zombie) processes below `root` by parent links, or marked with `marker`. Empty off Linux. */
export function strays(root: number | null, marker: string | null): number[] {
  return scanProc(root, marker ? Buffer.from(`${INSTANCE_ENV}=${marker}\0`) : null);
}

/**
 * SIGKILLs every process whose instance marker starts with `prefix-`, and
 * their descendants: what plugins launched by an earlier run of the same host
 * left behind when that host died without stopping them. Returns how many.
 */
export function killMarkedWithPrefix(prefix: string): number {
  const left = markedWithPrefix(prefix);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone between the scan and the kill.
    }
  }
  return left.length;
}

/** Live processes whose instance marker starts with `prefix-`, and their descendants. Empty off Linux. */
export function markedWithPrefix(prefix: string): number[] {
  return scanProc(null, Buffer.from(`${INSTANCE_ENV}=${prefix}-`));
}

function scanProc(root: number | null, needle: Buffer | null): number[] {
  if (process.platform !== 'linux') return [];
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  const found = new Set<number>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name may hold spaces and parentheses: the fields after it start past the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') continue;
    const siblings = children.get(Number(ppid)) ?? [];
    siblings.push(pid);
    children.set(Number(ppid), siblings);
    if (!needle) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/environ`).includes(needle)) found.add(pid);
    } catch {
      // Another user's process, or gone.
    }
  }
  const queue = root === null ? [...found] : [root, ...found];
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      if (!found.has(child)) {
        found.add(child);
        queue.push(child);
      }
    }
  }
  found.delete(process.pid);
  return [...found];
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

/** `promise`'s value, or undefined once `ms` have passed, whichever comes first; leaves no timer behind. */
export async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
