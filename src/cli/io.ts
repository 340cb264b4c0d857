/** Where command output goes; commands write through these so errors and results stay apart. */
export const out = (line: string): void => void process.stdout.write(`${line}\n`);
export const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** A command's exit status: 0 success, 1 the work failed, 2 the command line was wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Thrown for a wrong command line; main prints it with the usage hint and exits 2. */
export class UsageError extends Error {}

export function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected one ${what}, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  return positionals[0];
}
