import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { readPrivateKey, signBundle, signaturePath } from '../../bundle';
import { EXIT, UsageError, onePositional, out } from '../io';

export const usage = 'plughost sign <bundle> --key key.pem  write <bundle>.sig (base64 Ed25519 signature)';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, options: { key: { type: 'string', short: 'k' }, out: { type: 'string', short: 'o' } },
  });
  const bundle = onePositional(positionals, 'bundle');
  if (!values.key) throw new UsageError('sign needs --key <private key PEM>');
  const sig = signBundle(bundle, readPrivateKey(values.key));
  const target = values.out ?? signaturePath(bundle);
  fs.writeFileSync(target, `${sig.toString('base64')}\n`);
  out(`wrote ${target}`);
  return EXIT.ok;
}
