/**
 * Telling a plugin that hit its memory limit (manifest `limits.memory_mb`)
 * from one that crashed for another reason, so the operator reads the cause in
 * the plugin's status instead of a bare signal or exit code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectExecutable, type Manifest } from '../manifest';
import type { ExitInfo } from '../protocol/process';

/** What runtimes print when an allocation fails: V8's heap limit, ENOMEM, C++, Python, Go. */
const OUT_OF_MEMORY = /heap out of memory|allocation failed|out of memory|ENOMEM|cannot allocate memory|std::bad_alloc|MemoryError/i;

/**
 * A sentence naming the limit when the exit looks like it was hit: a
 * message above in stderr, or death by SIGABRT (V8 aborts at its heap limit)
 * or SIGKILL (the kernel's OOM killer). Null without a limit, or when nothing
 * points at memory.
 */
export function memoryLimitNote(memoryMb: number | undefined, exit: ExitInfo | null, stderr: readonly string[]): string | null {
  if (!memoryMb) return null;
  const said = stderr.find((line) => OUT_OF_MEMORY.test(line));
  const signalled = exit?.signal === 'SIGABRT' || exit?.signal === 'SIGKILL';
  if (!said && !signalled) return null;
  const why = said ? `: ${said.trim()}` : ` (${exit?.signal})`;
  return `the memory limit was hit (limits.memory_mb = ${memoryMb})${why}`;
}

/**
 * The command that runs a plugin from its folder: the host's own node (with
 * V8's heap capped at limits.memory_mb) for `runtime: node`, else the
 * executable for this platform (with RLIMIT_AS set to the limit).
 */
export function launchCommand(manifest: Manifest, dir: string, warn: (message: string) => void = () => undefined): { cmd: string; args: string[] } {
  const target = selectExecutable(manifest);
  const memory = manifest.limits?.memory_mb;
  const extra = manifest.args ?? [];
  if (target.kind === 'node') {
    return { cmd: process.execPath, args: [...(memory ? [`--max-old-space-size=${memory}`] : []), path.join(dir, target.entry), ...extra] };
  }
  const [cmd, args] = withAddressSpaceLimit(path.join(dir, target.path), extra, memory, warn);
  return { cmd, args };
}

/**
 * RLIMIT_AS for an executable through util-linux's prlimit, which sets the
 * limit on itself and then execs the plugin (same pid, same process group).
 * Off Linux, or without prlimit, the limit cannot be enforced: said once in
 * the plugin's log, and the plugin runs unlimited.
 */
function withAddressSpaceLimit(exe: string, args: string[], memoryMb: number | undefined, warn: (m: string) => void): [string, string[]] {
  if (!memoryMb) return [exe, args];
  const prlimit = process.platform === 'linux' ? findOnPath('prlimit') : null;
  if (!prlimit) {
    warn(`limits.memory_mb (${memoryMb}) is not enforced for an executable here: it needs prlimit (util-linux) on Linux`);
    return [exe, args];
  }
  return [prlimit, [`--as=${memoryMb * 1024 * 1024}`, '--', exe, ...args]];
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return null;
}

