import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { readPublicKey, signaturePath, verifyBundle } from '../../bundle';
import { EXIT, UsageError, onePositional, out } from '../io';

export const usage = 'plughost verify <bundle> --pubkey pub.pem [--sig file]  check the detached signature';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, options: { pubkey: { type: 'string', short: 'p', multiple: true }, sig: { type: 'string', short: 's' } },
  });
  const bundle = onePositional(positionals, 'bundle');
  const pubkeys = values.pubkey ?? [];
  if (!pubkeys.length) throw new UsageError('verify needs at least one --pubkey <public key PEM>');
  const sigPath = values.sig ?? signaturePath(bundle);
  const contents = fs.existsSync(sigPath) ? fs.readFileSync(sigPath) : null;
  const keys = pubkeys.map((file) => readPublicKey(file));
  const result = verifyBundle(bundle, contents, keys, { bundle, signature: sigPath });
  out(`signature ok: ${bundle} is signed by ${pubkeys[result.keyIndex]} (fingerprint ${result.fingerprint})`);
  return EXIT.ok;
}
