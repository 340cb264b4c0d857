/**
 * `plughost plugin <subcommand>`: the admin REST API from the command line, against a
 * running `plughost serve`. Failures exit 1 with the server's message and HTTP status.
 */
import { UsageError } from '../io';
import { reportingApiErrors } from './plugin/context';
import { config } from './plugin/config';
import { add, installUrl } from './plugin/install';
import { hook } from './plugin/hook';
import { logs } from './plugin/logs';
import { disable, enable, list, remove, show } from './plugin/manage';

export const usage = 'plughost plugin <add|install-url|list|show|enable|disable|remove|logs|config|hook> ... [--url] [--token] [--json]  manage plugins on a running server (plughost plugin alone lists the subcommands)';

const SUBCOMMANDS: Record<string, { synopsis: string; run(args: string[]): Promise<number> }> = {
  add: { synopsis: 'add <bundle.tar.gz> [--signature f] [--force] [--enable]', run: add },
  'install-url': { synopsis: 'install-url <url> [--signature-url u] [--force] [--enable]', run: installUrl },
  list: { synopsis: 'list', run: list },
  show: { synopsis: 'show <id>', run: show },
  enable: { synopsis: 'enable <id>', run: enable },
  disable: { synopsis: 'disable <id>', run: disable },
  remove: { synopsis: 'remove <id>', run: remove },
  logs: { synopsis: 'logs <id> [--limit N] [--level debug|info|warn|error] [--follow]', run: logs },
  config: { synopsis: 'config get <id> | config set <id> key=value ... | --file config.json  (a list: key=a key=b, or key=\'["a","b"]\')', run: config },
  hook: { synopsis: 'hook <id> <hook> [--payload JSON|@file|-] [--user-id U] [--request-id R] [--value k=v ...]', run: hook },
};

export function help(): string {
  return [
    'usage: plughost plugin <subcommand> [--url URL] [--token TOKEN] [--json]',
    '',
    ...Object.values(SUBCOMMANDS).map((s) => `  plughost plugin ${s.synopsis}`),
    '',
    `--url defaults to PLUGHOST_URL, else http://127.0.0.1:8065; --token to PLUGHOST_TOKEN.`,
    '--json prints what the server answered, for scripts.',
  ].join('\n');
}

export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const sub = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (!sub) throw new UsageError(name === undefined ? `missing subcommand\n${help()}` : `unknown subcommand ${JSON.stringify(name)}\n${help()}`);
  return reportingApiErrors(`plughost plugin ${name}`, () => sub.run(rest));
}
