import * as cluster from './commands/cluster';
import * as conformance from './commands/conformance';
import * as dev from './commands/dev';
import * as event from './commands/event';
import * as hook from './commands/hook';
import * as init from './commands/init';
import * as keygen from './commands/keygen';
import * as manifest from './commands/manifest';
import * as migrate from './commands/migrate';
import * as pack from './commands/pack';
import * as plugin from './commands/plugin';
import * as serve from './commands/serve';
import * as sign from './commands/sign';
import * as types from './commands/types';
import * as verify from './commands/verify';
import { EXIT, UsageError, err, out } from './io';

interface Command {
  usage: string;
  /** What `plughost <command> --help` prints, when the usage line is not enough. */
  help?(): string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = { init, pack, types, dev, keygen, sign, verify, manifest, serve, migrate, plugin, hook, event, cluster, conformance };

function help(): string {
  const rows = [...Object.values(COMMANDS).map((c) => c.usage), 'plughost --help  this text'].map((u) => u.split(/\s{2,}/));
  const width = Math.max(...rows.map(([synopsis]) => synopsis.length));
  return ['usage: plughost <command> [options]', '', ...rows.map(([synopsis, what]) => `  ${synopsis.padEnd(width)}  ${what}`)].join('\n');
}

/**
 * The plughost command. Returns the exit status instead of exiting, so tests and embedders can
 * call it; bin/plughost.js sets process.exitCode from it.
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    err(`plughost: unknown command ${JSON.stringify(name)}\n${help()}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(command.help ? command.help() : `usage: ${command.usage}`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`plughost ${name}: ${(e as Error).message}\nusage: ${command.usage}`);
      return EXIT.usage;
    }
    err(`plughost ${name}: ${(e as Error).message}`);
    return EXIT.failed;
  }
}
