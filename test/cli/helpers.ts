/** Runs the built `plughost` command as a user would: a child process, against a server's URL and token. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { watchStdout } from '../helpers';

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

/**
 * Runs `plughost serve ...args` until it prints its URL, hands the URL to `probe`, then stops it
 * with SIGINT and expects exit 0. Answers what it printed, without pino's JSON log lines unless
 * `keepLogLines`.
 */
export async function serveOnce(
  args: string[],
  env: Record<string, string>,
  probe: (url: string) => Promise<void>,
  options: { cwd?: string; keepLogLines?: boolean } = {},
): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: options.cwd, env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const output = watchStdout(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    const url = (await output.waitFor(/listening on (\S+)/, 'serve did not start', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nstderr: ${stderr}`);
    }))[1];
    await probe(url);
  } finally {
    if (child.exitCode === null) child.kill('SIGINT');
  }
  const status = await exited;
  if (status !== 0) throw new Error(`serve exited ${status}: ${stderr}`);
  return options.keepLogLines ? output.text : output.text.split('\n').filter((line) => !line.startsWith('{')).join('\n');
}
