/**
 * Telling a plugin that hit its memory limit (manifest `limits.memory_mb`)
 * from one that crashed for another reason, so the operator reads the cause in
 * the plugin's status instead of a bare signal or exit code.
 */
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
