/** Plugin bundles: safe extraction, reproducible packing and detached Ed25519 signatures. */
export { extractBundle } from './extract';
export type { ExtractResult } from './extract';
export { packBundle, PACK_MTIME } from './pack';
export type { PackResult } from './pack';
export { DEFAULT_LIMITS, resolveLimits } from './limits';
export type { BundleLimits } from './limits';
export {
  generateKeyPair, signBundle, verifyBundle, verifyBundleFile, decodeSignature, signaturePath,
  readPublicKey, readPrivateKey, fingerprint,
} from './signature';
export type { KeyPairPem, KeyInput, VerifiedSignature } from './signature';
export { missingFiles } from './plugin-dir';
