import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Errors } from '../errors';

/*
 * Detached Ed25519 signatures over the bundle file's bytes, as `openssl pkeyutl -sign -rawin`
 * makes them. Three failures are kept apart, each with its own code:
 *   BUNDLE_UNSIGNED            no signature where one is required            (401)
 *   BUNDLE_SIGNATURE_MALFORMED the signature file is not 64 bytes or base64 of 64 bytes (400)
 *   BUNDLE_SIGNATURE_UNTRUSTED a well-formed signature that verifies under none of the
 *                              trusted keys, or no keys are configured        (403)
 * Ed25519 cannot tell "signed by another key" from "bundle changed after signing": either way
 * no trusted key vouches for these bytes, so both are UNTRUSTED.
 */

const SIGNATURE_BYTES = 64;

export interface KeyPairPem {
  /** PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it. */
  privateKey: string;
  /** SPKI PEM, as `openssl pkey -pubout` writes it. */
  publicKey: string;
}

export interface VerifiedSignature {
  /** Index into the trusted keys of the key that verified. */
  keyIndex: number;
  /** SHA-256 of that key's SPKI DER, hex: a stable name for the key in logs. */
  fingerprint: string;
}

export type KeyInput = string | Buffer | crypto.KeyObject;

export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKey, publicKey };
}

function asKey(input: KeyInput, kind: 'private' | 'public', source: string): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    if (input instanceof crypto.KeyObject) key = input;
    else key = kind === 'private' ? crypto.createPrivateKey(input) : crypto.createPublicKey(input);
  } catch (err) {
    throw Errors.BAD_KEY(source, `an Ed25519 ${kind} key in PEM`, (err as Error).message);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw Errors.BAD_KEY(source, `an Ed25519 ${kind} key in PEM`, `it is a ${key.asymmetricKeyType ?? key.type} key`);
  }
  if (kind === 'public' && key.type === 'private') return crypto.createPublicKey(key);
  return key;
}

/** Reads a PEM public key file, naming the file when it is not an Ed25519 key. */
export function readPublicKey(file: string): crypto.KeyObject {
  return asKey(fs.readFileSync(file), 'public', file);
}

export function readPrivateKey(file: string): crypto.KeyObject {
  return asKey(fs.readFileSync(file), 'private', file);
}

export function fingerprint(key: KeyInput): string {
  const der = asKey(key, 'public', 'key').export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('hex');
}

function bundleBytes(bundle: Buffer | string): Buffer {
  return typeof bundle === 'string' ? fs.readFileSync(bundle) : bundle;
}

/** Signs the bundle (a path or its bytes) and returns the raw 64-byte signature. */
export function signBundle(bundle: Buffer | string, privateKey: KeyInput): Buffer {
  return crypto.sign(null, bundleBytes(bundle), asKey(privateKey, 'private', 'private key'));
}

/**
 * The 64 signature bytes from a .sig file's contents: the raw bytes, or their base64 (with or
 * without a trailing newline, as `base64` and `openssl base64 -A` print it).
 */
export function decodeSignature(contents: Buffer, source = 'signature'): Buffer {
  if (contents.length === SIGNATURE_BYTES) return contents;
  const text = contents.toString('latin1').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw Errors.BUNDLE_SIGNATURE_MALFORMED(source, `${contents.length} bytes that are neither raw nor base64`);
  }
  const raw = Buffer.from(text, 'base64');
  if (raw.length !== SIGNATURE_BYTES) throw Errors.BUNDLE_SIGNATURE_MALFORMED(source, `base64 of ${raw.length} bytes`);
  return raw;
}

/**
 * Verifies a bundle (path or bytes) against its signature file contents and the trusted keys.
 * `signature` null or undefined means the bundle came unsigned.
 */
export function verifyBundle(
  bundle: Buffer | string,
  signature: Buffer | null | undefined,
  trustedKeys: readonly KeyInput[],
  names: { bundle?: string; signature?: string } = {},
): VerifiedSignature {
  const bundleName = names.bundle ?? (typeof bundle === 'string' ? bundle : 'bundle');
  if (!signature) throw Errors.BUNDLE_UNSIGNED(bundleName, names.signature ?? `${bundleName}.sig`);
  const sig = decodeSignature(signature, names.signature ?? `${bundleName}.sig`);
  const keys = trustedKeys.map((k, i) => asKey(k, 'public', `trusted key #${i + 1}`));
  const data = bundleBytes(bundle);
  const keyIndex = keys.findIndex((key) => crypto.verify(null, data, key, sig));
  if (keyIndex === -1) throw Errors.BUNDLE_SIGNATURE_UNTRUSTED(bundleName, keys.length);
  return { keyIndex, fingerprint: fingerprint(keys[keyIndex]) };
}

/** The conventional signature path: the bundle's path plus `.sig`. */
export function signaturePath(bundlePath: string): string {
  return `${bundlePath}.sig`;
}

/**
 * Checks a bundle file's detached signature from `<bundle>.sig` (or `sigPath`). When signatures
 * are not required and there is no signature file, returns null; a signature that is present
 * is always checked, since a bad one means something is wrong.
 */
export function verifyBundleFile(
  bundlePath: string,
  opts: { trustedKeys: readonly KeyInput[]; required?: boolean; sigPath?: string },
): VerifiedSignature | null {
  const sigPath = opts.sigPath ?? signaturePath(bundlePath);
  const contents = fs.existsSync(sigPath) ? fs.readFileSync(sigPath) : null;
  if (!contents && !opts.required) return null;
  return verifyBundle(bundlePath, contents, opts.trustedKeys, { bundle: bundlePath, signature: sigPath });
}
