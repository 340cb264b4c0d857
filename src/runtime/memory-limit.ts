/**
 * The memory limit of one plugin launch, and telling a plugin that hit it (or
 * ran out of memory some other way) from one that crashed for another reason,
 * so the operator reads the cause in the plugin's status instead of a bare
 * signal or exit code.
 *
 * The limit is `limits.memory_mb` from the manifest, else the host-wide
 * `defaults.memoryLimitMb`. Where a cgroup can be made (see cgroup.ts) the
 * kernel enforces it on the plugin and everything it starts, and stopping the
 * plugin kills the whole cgroup; elsewhere the RSS watchdog enforces it. Node
 * plugins also get V8's heap capped at the same size, so that a heap-bound
 * plugin dies with V8's own, clearer, message.
 */
import * as path from 'node:path';
import { Errors } from '../errors';
import { selectExecutable, type Manifest } from '../manifest';
import { killGroup, nodeEntryArgs, strays } from '../protocol/process';
import { PluginCgroup } from './cgroup';
import { MemoryWatchdog } from './memory-watchdog';
import type { MemoryEnforcement } from './types';
import { CODE_CACHE_ENV, codeCacheFile } from './code-cache';

/** V8 at its heap limit: "FATAL ERROR: ... Allocation failed - JavaScript heap out of memory" and its variants. */
const V8_OUT_OF_MEMORY = /JavaScript heap out of memory|FATAL ERROR:.*Allocation failed/i;
/** What other runtimes print when an allocation fails: ENOMEM, C++, Python, Go. */
const OUT_OF_MEMORY = /out of memory|ENOMEM|cannot allocate memory|std::bad_alloc|MemoryError/i;

const MIB = 1024 * 1024;

export interface MemoryGuardOptions {
  /** Unique per launch: the cgroup's folder name. */
  name: string;
  /** The limit in MiB, and the option it comes from (named in the reason); 0 for none. */
  limitMb: number;
  option: string;
  enforcement: MemoryEnforcement;
  /** Tasks allowed in the plugin's cgroup; 0 for no limit. */
  pidsMax: number;
  watchdogIntervalMs: number;
}

/** The effective limit of a plugin and the option that sets it. */
export function memoryLimitOf(manifest: Manifest, hostDefaultMb: number): { limitMb: number; option: string } {
  const own = manifest.limits?.memory_mb;
  if (own) return { limitMb: own, option: 'the manifest\'s limits.memory_mb' };
  return { limitMb: hostDefaultMb, option: 'the host\'s defaults.memoryLimitMb / plughost serve --memory-limit-mb' };
}

/**
 * One launch's containment: a cgroup (memory and pids limits, whole-group
 * kill) where possible, else a watchdog over the process tree. `close()`
 * kills what is left in the cgroup, removes it and stops the watchdog.
 */
export class MemoryGuard {
  private watchdog: MemoryWatchdog | undefined;

  private constructor(
    private readonly options: MemoryGuardOptions,
    readonly cgroup: PluginCgroup | null,
    /** Why there is no cgroup, when there is none. */
    readonly fallbackReason: string | null,
  ) {}

  static create(options: MemoryGuardOptions): MemoryGuard {
    if (options.enforcement === 'watchdog') return new MemoryGuard(options, null, 'the host was told to use the watchdog (defaults.memoryEnforcement)');
    const made = PluginCgroup.create(options.name, { memoryBytes: options.limitMb * MIB, pidsMax: options.pidsMax });
    return typeof made === 'string' ? new MemoryGuard(options, null, made) : new MemoryGuard(options, made, null);
  }

  /** The command to spawn: inside the cgroup when there is one. */
  wrap(cmd: string, args: string[], keep: readonly string[] = []): { cmd: string; args: string[] } {
    return this.cgroup ? this.cgroup.wrap(cmd, args, keep) : { cmd, args };
  }

  /** Starts the watchdog on the launched plugin, when there is a limit and no cgroup to hold it. */
  attach(pid: number): void {
    if (this.cgroup || !this.options.limitMb) return;
    this.watchdog = new MemoryWatchdog({
      pid,
      limitBytes: this.options.limitMb * MIB,
      intervalMs: this.options.watchdogIntervalMs,
      onExceeded: () => {
        killGroup(pid);
        for (const p of strays(pid, null)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // Gone between the scan and the kill.
          }
        }
      },
    });
  }

  /**
   * Why the plugin died, when memory explains it: the cgroup's OOM kill, the
   * watchdog's decision, V8's heap limit, or another runtime's allocation
   * failure in stderr. Null when nothing points at memory.
   */
  reason(stderr: readonly string[]): string | null {
    const { limitMb, option } = this.options;
    if (this.cgroup && limitMb && this.cgroup.oomKilled()) {
      return Errors.MEMORY_LIMIT_EXCEEDED(limitMb, option, 'the kernel\'s OOM killer ended it inside its cgroup').message;
    }
    const seen = this.watchdog?.exceededAt;
    if (seen && limitMb) {
      return Errors.MEMORY_LIMIT_EXCEEDED(limitMb, option, `the watchdog saw ${Math.round(seen / MIB)} MiB resident in its process tree and killed it`).message;
    }
    const v8 = stderr.find((line) => V8_OUT_OF_MEMORY.test(line));
    if (v8) return Errors.HEAP_OUT_OF_MEMORY(v8.trim(), limitMb || null, limitMb ? option : null).message;
    const other = stderr.find((line) => OUT_OF_MEMORY.test(line));
    if (other) return Errors.OUT_OF_MEMORY(other.trim()).message;
    return null;
  }

  /** Stops the watchdog; kills everything left in the cgroup and removes it. Safe to call more than once. */
  async close(): Promise<void> {
    this.watchdog?.close();
    await this.cgroup?.destroy();
  }
}

/**
 * The command that runs a plugin from its folder, and the environment it adds: the host's own
 * node (with V8's heap capped at the memory limit, and the code-cache preload when given) for
 * `runtime: node`, else the executable for this platform. An entry with a source map beside it
 * has its stack traces mapped by that preload, or without it by `--enable-source-maps`.
 */
export function launchCommand(manifest: Manifest, dir: string, limitMb: number, codeCachePreload?: string, inspect?: string): { cmd: string; args: string[]; env: Record<string, string> } {
  const target = selectExecutable(manifest);
  const extra = manifest.args ?? [];
  const env = { ...manifest.env };
  if (target.kind === 'node') {
    const preload = [...(inspect ? [`--inspect=${inspect}`] : []), ...(codeCachePreload ? ['--require', codeCachePreload] : [])];
    if (codeCachePreload) env[CODE_CACHE_ENV] = codeCacheFile(dir);
    const entry = path.join(dir, target.entry);
    return { cmd: process.execPath, args: [...(limitMb ? [`--max-old-space-size=${limitMb}`] : []), ...preload, ...(codeCachePreload ? [entry] : nodeEntryArgs(entry)), ...extra], env };
  }
  return { cmd: path.join(dir, target.path), args: extra, env };
}
