/**
 * What every `plughost plugin` subcommand shares: the server's URL and admin token (flags,
 * else PLUGHOST_URL / PLUGHOST_TOKEN), `--json`, and printing results either way.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AdminClient, ApiError } from '../../client';
import { EXIT, UsageError, err, out } from '../../io';

export const DEFAULT_URL = 'http://127.0.0.1:8065';

const COMMON = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Invocation<V> {
  client: AdminClient;
  json: boolean;
  values: V;
  positionals: string[];
}

/** Parses the subcommand's own options plus the common ones, and builds the client. */
export function invocation<O extends Options>(args: string[], own: O): Invocation<ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof COMMON; allowPositionals: true }>>['values']> {
  const parsed = parseArgs({ args, options: { ...own, ...COMMON } as O & typeof COMMON, allowPositionals: true });
  const values = parsed.values as Record<string, unknown>;
  const url = (values.url as string | undefined) ?? process.env.PLUGHOST_URL ?? DEFAULT_URL;
  const token = (values.token as string | undefined) ?? process.env.PLUGHOST_TOKEN;
  if (!token) throw new UsageError('no admin token: pass --token or set PLUGHOST_TOKEN (plughost serve prints it on first start and keeps it in <data-dir>/admin-token)');
  return { client: new AdminClient({ url, token }), json: values.json === true, values: parsed.values, positionals: parsed.positionals };
}

/** Prints `data` as JSON with --json, else the human text. */
export function print(json: boolean, data: unknown, human: () => string): void {
  out(json ? JSON.stringify(data, null, 2) : human());
}

export function positional(positionals: string[], index: number, what: string): string {
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

export function noMore(positionals: string[], count: number): void {
  if (positionals.length > count) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[count])}`);
}

/** Runs a command against the server; an error answer (or no answer) is printed as `<command>: message (HTTP status CODE)`, exit 1. */
export async function reportingApiErrors(command: string, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    err(e.status ? `${command}: ${e.message} (HTTP ${e.status} ${e.code})` : `${command}: ${e.message}`);
    return EXIT.failed;
  }
}
