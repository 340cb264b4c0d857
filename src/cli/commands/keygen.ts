import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { fingerprint, generateKeyPair } from '../../bundle';
import { EXIT, UsageError, out } from '../io';

export const usage = 'plughost keygen [--out name]          write an Ed25519 key pair: name.pem (private, 0600) and name.pub.pem';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string', short: 'o' } } });
  if (positionals.length) throw new UsageError(`keygen takes no arguments, got ${positionals.join(' ')}`);
  const name = values.out ?? 'plughost-signing';
  const keys = generateKeyPair();
  // 'wx' refuses to overwrite: replacing a signing key by accident cannot be undone.
  fs.writeFileSync(`${name}.pem`, keys.privateKey, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(`${name}.pub.pem`, keys.publicKey, { mode: 0o644, flag: 'wx' });
  out(`wrote ${name}.pem (private key, keep it secret) and ${name}.pub.pem (public key, give it to hosts)`);
  out(`fingerprint ${fingerprint(keys.publicKey)}`);
  return EXIT.ok;
}
