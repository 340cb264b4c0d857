import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { packBundle } from '../../bundle';
import { loadManifest } from '../../manifest';
import { EXIT, onePositional, out } from '../io';

export const usage = 'plughost pack <dir> [-o out.tar.gz]   validate the manifest and write a reproducible bundle';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string', short: 'o' } } });
  const dir = onePositional(positionals, 'plugin folder');
  const { manifest } = loadManifest(dir);
  const target = values.out ?? path.join(process.cwd(), `${manifest.id}-${manifest.version}.tar.gz`);
  const result = await packBundle(dir, target);
  out(`packed ${result.manifest.id} ${result.manifest.version}: ${result.entries.length} entries, ${result.size} bytes`);
  out(`wrote ${result.path}`);
  out(`sha256 ${result.sha256}`);
  return EXIT.ok;
}
