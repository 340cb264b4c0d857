import { parseArgs } from 'node:util';
import { EXIT, out } from '../io';

export const usage = 'plughost serve [--config plughost.yaml]  run the plugin host (arrives in a later step)';

export async function run(args: string[]): Promise<number> {
  parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  out('plughost serve will run the plugin host: install, enable and supervise plugins, and serve the admin REST API.');
  out('The server arrives in a later step; for now this command starts nothing.');
  return EXIT.ok;
}
