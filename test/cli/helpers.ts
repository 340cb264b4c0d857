/** Runs the built `plughost` command as a user would: a child process, against a server's URL and token. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'plughost.js');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  /** Runs `plughost ...args` to its end; `input` is written to its stdin. */
  cli(args: string[], env?: Record<string, string | undefined>, input?: string): Promise<Run>;
  /** Its stdout, after checking it exited 0. */
  ok(...args: string[]): Promise<string>;
  /** `--json` added, stdout parsed. */
  json<T>(...args: string[]): Promise<T>;
}

/** `target` is read at each run, so a suite can start its server after making the runner. */
export function cliRunner(target: () => { url: string; token: string; cwd?: string }): Cli {
  const cli: Cli['cli'] = (args, env = {}, input) =>
    new Promise((resolve) => {
      const { url, token, cwd } = target();
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, PLUGHOST_URL: url, PLUGHOST_TOKEN: token, ...env } as NodeJS.ProcessEnv });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      child.stdin.end(input);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  const ok: Cli['ok'] = async (...args) => {
    const r = await cli(args);
    if (r.status !== 0) throw new Error(`plughost ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  return { cli, ok, json: async <T>(...args: string[]) => JSON.parse(await ok(...args, '--json')) as T };
}
