/**
 * What a conformance run launches: a bare executable, a plugin folder, or a
 * bundle (unpacked into a temporary folder, removed by cleanup()). With a
 * manifest the plugin runs as the host would run it: its executable for this
 * platform or its node entry, its args and env, from its own folder.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractBundle } from '../bundle';
import { findManifestFile, loadManifest, type Manifest } from '../manifest';
import { launchCommand } from '../runtime/memory-limit';

export interface LaunchPlan {
  cmd: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  manifest: Manifest;
  /** True when the manifest came from the plugin; false when the run made one up for a bare executable. */
  hasManifest: boolean;
  cleanup(): void;
}

/** The id a bare executable is given in OnActivate. */
export const BARE_PLUGIN_ID = 'conformance.plugin';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

export async function planLaunch(target: string, args: string[] = []): Promise<LaunchPlan> {
  const abs = path.resolve(target);
  const st = fs.statSync(abs);
  if (st.isDirectory()) {
    if (!findManifestFile(abs)) throw new Error(`${target} is a folder without plugin.json, plugin.yaml or plugin.yml`);
    return fromFolder(abs, () => undefined);
  }
  if (isGzip(abs)) {
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'phc-'));
    const remove = () => fs.rmSync(temp, { recursive: true, force: true });
    try {
      const extracted = await extractBundle(abs, path.join(temp, 'plugin'));
      return fromFolder(extracted.path, remove);
    } catch (err) {
      remove();
      throw err;
    }
  }
  const manifest: Manifest = { id: BARE_PLUGIN_ID, name: path.basename(abs), version: '0.0.0', server: { executable: path.basename(abs) } };
  return { cmd: abs, args, env: {}, manifest, hasManifest: false, cleanup: () => undefined };
}

function fromFolder(dir: string, cleanup: () => void): LaunchPlan {
  try {
    const { manifest } = loadManifest(dir);
    if (!manifest.server) throw new Error(`plugin ${manifest.id} has no server part (webapp only): there is no process to check`);
    const { cmd, args } = launchCommand(manifest, dir, manifest.limits?.memory_mb ?? 0);
    return { cmd, args, cwd: dir, env: manifest.env ?? {}, manifest, hasManifest: true, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return fs.readSync(fd, head, 0, 2, 0) === 2 && head.equals(GZIP_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}
