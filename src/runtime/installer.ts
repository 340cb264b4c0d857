/**
 * Bundles on disk: unpack into a staging folder (signature checked first),
 * then move into plugins/<id> with renames on one filesystem, so a plugin
 * folder is either the old one or the new one, never half of each. Leftovers
 * of a host that died mid-install are cleared at open.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { extractBundle, verifyBundleFile, type ExtractResult, type KeyInput } from '../bundle';
import type { BundleLimits } from '../bundle/limits';

export interface TrustOptions {
  trustedKeys: KeyInput[];
  requireSignature: boolean;
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

  /** Creates the folders and removes whatever an interrupted install left in staging. */
  prepare(): void {
    fs.mkdirSync(this.pluginsDir, { recursive: true, mode: 0o700 });
    fs.rmSync(this.stagingDir, { recursive: true, force: true });
    fs.mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
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
    if (requireSignature || trustedKeys.length > 0 || signaturePath) {
      verifyBundleFile(bundlePath, { trustedKeys, required: requireSignature || Boolean(signaturePath), sigPath: signaturePath });
    }
    const dest = path.join(this.stagingDir, `in-${crypto.randomBytes(6).toString('hex')}`);
    return extractBundle(bundlePath, dest, this.limits);
  }

  /** Moves a staged folder into plugins/<id>, replacing what was there. */
  async place(id: string, stagedDir: string): Promise<void> {
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
    if (hadOld) await fsp.rm(trash, { recursive: true, force: true });
  }

  async discard(stagedDir: string): Promise<void> {
    await fsp.rm(stagedDir, { recursive: true, force: true });
  }

  async remove(id: string): Promise<void> {
    await fsp.rm(this.dirOf(id), { recursive: true, force: true });
  }
}
