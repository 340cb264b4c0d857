/**
 * Bundles on disk: unpack into a staging folder (signature checked first),
 * then move into plugins/<id> with renames on one filesystem, so a plugin
 * folder is either the old one or the new one, never half of each. The
 * replaced folder stays in staging until the new record is stored; each
 * folder carries the SHA-256 of its bundle, so after a crash at any point the
 * folder that matches the stored record is put back (see `reconcile`).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { extractBundle, fingerprint, signaturePath, verifyBundleFile, type ExtractResult, type KeyInput } from '../bundle';
import type { BundleLimits } from '../bundle/limits';
import { Errors } from '../errors';
import type { StoredBundle } from '../store/store';
import type { InstalledSignature, SignaturePolicy } from './types';

export interface TrustOptions {
  trustedKeys: KeyInput[];
  requireSignature: boolean;
}

/** File in each plugin folder holding the SHA-256 (hex) of the bundle it came from. */
export const BUNDLE_MARKER = '.plughost-bundle-sha256';
/**
 * File in each plugin folder saying which trusted key verified its bundle, or that none did.
 * Written over whatever the bundle held under that name, so a bundle cannot claim a signer.
 */
export const SIGNATURE_MARKER = '.plughost-signature.json';

/** Where a placed folder can still be undone until `commit` (the record is stored). */
export interface Placement {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export class BundleInstaller {
  readonly pluginsDir: string;
  private readonly stagingDir: string;

  constructor(
    dataDir: string,
    private readonly trust: TrustOptions,
    private readonly limits?: Partial<BundleLimits>,
  ) {
    this.pluginsDir = path.join(dataDir, 'plugins');
    this.stagingDir = path.join(dataDir, 'staging');
  }

  /** Creates the folders; `clearStaging` after `reconcile` removes what an interrupted install left. */
  prepare(): void {
    fs.mkdirSync(this.pluginsDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
  }

  clearStaging(): void {
    fs.rmSync(this.stagingDir, { recursive: true, force: true });
    fs.mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
  }

  /**
   * After a crash: makes plugins/<id> the folder of the bundle `sha256` (the
   * stored record) when a replace was interrupted, by putting the replaced
   * folder back from staging. Folders without a marker (older installs) are
   * taken as they are. Returns false when no matching folder exists.
   */
  reconcile(id: string, sha256: string): boolean {
    const target = this.dirOf(id);
    const current = readMarker(target);
    if (current === sha256 || current === 'unmarked') return true;
    const prefix = `old-${id}-`;
    for (const name of fs.readdirSync(this.stagingDir)) {
      const trash = path.join(this.stagingDir, name);
      if (!name.startsWith(prefix) || /[^0-9a-f]/.test(name.slice(prefix.length)) || readMarker(trash) !== sha256) continue;
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(trash, target);
      return true;
    }
    return false;
  }

  dirOf(id: string): string {
    return path.join(this.pluginsDir, id);
  }

  /** Plugin folders on disk, by id. */
  installedDirs(): string[] {
    return fs.readdirSync(this.pluginsDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  }

  /** Checks the signature, then extracts into staging. The caller places or discards the result. */
  async unpack(bundlePath: string, signaturePath?: string): Promise<ExtractResult> {
    const { trustedKeys, requireSignature } = this.trust;
    const verified = requireSignature || trustedKeys.length > 0 || signaturePath
      ? verifyBundleFile(bundlePath, { trustedKeys, required: requireSignature || Boolean(signaturePath), sigPath: signaturePath })
      : null;
    const dest = path.join(this.stagingDir, `in-${crypto.randomBytes(6).toString('hex')}`);
    const result = await extractBundle(bundlePath, dest, this.limits);
    const signature: InstalledSignature = verified ? { signed: true, ...verified } : { signed: false };
    await fsp.writeFile(path.join(result.path, SIGNATURE_MARKER), JSON.stringify(signature));
    return result;
  }

  /** The signature state recorded when the plugin's folder was unpacked; null for a folder from before it was recorded. */
  signatureOf(id: string): InstalledSignature | null {
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(this.dirOf(id), SIGNATURE_MARKER), 'utf8')) as InstalledSignature;
      return parsed.signed ? { signed: true, keyIndex: parsed.keyIndex, fingerprint: parsed.fingerprint } : { signed: false };
    } catch {
      return null;
    }
  }

  get policy(): SignaturePolicy {
    return { requireSignature: this.trust.requireSignature, trustedKeys: this.trust.trustedKeys.map((key) => fingerprint(key)) };
  }

  /**
   * Marks a staged folder with its bundle's SHA-256 and moves it into
   * plugins/<id>. The folder it replaces waits in staging until `commit`
   * (call it once the record is stored) or comes back on `rollback`.
   */
  async place(id: string, stagedDir: string, sha256: string): Promise<Placement> {
    await fsp.writeFile(path.join(stagedDir, BUNDLE_MARKER), `${sha256}\n`);
    const target = this.dirOf(id);
    const trash = path.join(this.stagingDir, `old-${id}-${crypto.randomBytes(4).toString('hex')}`);
    const hadOld = fs.existsSync(target);
    if (hadOld) await fsp.rename(target, trash);
    try {
      await fsp.rename(stagedDir, target);
    } catch (err) {
      if (hadOld) await fsp.rename(trash, target);
      throw err;
    }
    return {
      commit: async () => {
        if (hadOld) await fsp.rm(trash, { recursive: true, force: true });
      },
      rollback: async () => {
        await fsp.rm(target, { recursive: true, force: true });
        if (hadOld) await fsp.rename(trash, target);
      },
    };
  }

  /**
   * Places plugins/<id> from a bundle kept in the database, by the same path
   * as an upload: the bytes (hash checked while read) and the stored
   * signature are written to staging, unpacked under this host's signature
   * policy and limits, and checked to be the plugin the record names.
   */
  async restore(id: string, bundle: StoredBundle): Promise<void> {
    const file = path.join(this.stagingDir, `fetch-${crypto.randomBytes(6).toString('hex')}.tar.gz`);
    const sigPath = bundle.signature ? signaturePath(file) : undefined;
    try {
      await pipeline(bundle.stream, fs.createWriteStream(file, { mode: 0o600 }));
      if (sigPath && bundle.signature) await fsp.writeFile(sigPath, bundle.signature, { mode: 0o600 });
      const staged = await this.unpack(file, sigPath);
      try {
        if (staged.sha256 !== bundle.sha256) throw Errors.STORE_BUNDLE_CORRUPT(bundle.sha256, `the bytes written out hash to ${staged.sha256}`);
        if (staged.manifest.id !== id) throw Errors.STORE_BUNDLE_CORRUPT(bundle.sha256, `it holds plugin ${JSON.stringify(staged.manifest.id)}, not ${JSON.stringify(id)}`);
        const placement = await this.place(id, staged.path, bundle.sha256);
        await placement.commit();
      } finally {
        await this.discard(staged.path);
      }
    } finally {
      await fsp.rm(file, { force: true });
      if (sigPath) await fsp.rm(sigPath, { force: true });
    }
  }

  /** The detached signature an install was given (`signaturePath`, else `<bundle>.sig` when present), to store beside the bundle. */
  async readSignature(bundlePath: string, signatureFile?: string): Promise<Buffer | null> {
    return fsp.readFile(signatureFile ?? signaturePath(bundlePath)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && signatureFile === undefined) return null;
      throw err;
    });
  }

  async discard(stagedDir: string): Promise<void> {
    await fsp.rm(stagedDir, { recursive: true, force: true });
  }

  async remove(id: string): Promise<void> {
    await fsp.rm(this.dirOf(id), { recursive: true, force: true });
  }
}

/** The bundle SHA-256 a folder was placed with; 'unmarked' for a folder without a marker; null when there is no folder. */
function readMarker(dir: string): string | null {
  if (!fs.existsSync(dir)) return null;
  try {
    return fs.readFileSync(path.join(dir, BUNDLE_MARKER), 'utf8').trim();
  } catch {
    return 'unmarked';
  }
}
