import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { packBundle } from '../../bundle';
import { loadManifest, referencedFiles, type Manifest } from '../../manifest';
// The SDK's build step is the one piece of the SDK the CLI uses: packing a TypeScript plugin is an author's tool.
import { TS_ENTRY, bundledEntryName, bundlePlugin } from '../../../sdk/build';
import { EXIT, onePositional, out } from '../io';
import { formatBytes } from '../progress';
import { refreshSettingsTypes } from './types';

export const usage = 'plughost pack <dir> [-o out.tar.gz] [--verbose]   validate the manifest and write a reproducible bundle (TypeScript entries are bundled with a source map, and a generated src/settings.ts is refreshed); --verbose lists what went in and what was left out';

/** Files and folders besides the built entry that a TypeScript plugin's bundle keeps, when present. */
const KEPT_EXTRAS = /^(README|LICENSE|LICENCE|NOTICE|CHANGELOG)(\.[A-Za-z]+)?$|^assets$/;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, options: { out: { type: 'string', short: 'o' }, verbose: { type: 'boolean', short: 'v' } },
  });
  const dir = onePositional(positionals, 'plugin folder');
  const loaded = loadManifest(dir);
  const { manifest } = loaded;
  const target = path.resolve(values.out ?? path.join(process.cwd(), `${manifest.id}-${manifest.version}.tar.gz`));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const entry = manifest.server?.runtime === 'node' ? manifest.server.entry : undefined;
  const typeScript = entry !== undefined && TS_ENTRY.test(entry);
  const refreshed = typeScript ? refreshSettingsTypes(dir, loaded) : undefined;
  if (refreshed) out(`updated ${path.relative(process.cwd(), refreshed)} from ${path.basename(loaded.file)}`);
  const staging = typeScript ? stageTypeScriptPlugin(path.resolve(dir), manifest, entry) : undefined;
  try {
    const result = await packBundle(staging ?? dir, target);
    out(`packed ${result.manifest.id} ${result.manifest.version}: ${result.files} files, ${formatBytes(result.contentBytes)} (${formatBytes(result.size)} compressed)`);
    if (values.verbose) {
      for (const name of result.entries) if (!name.endsWith('/')) out(`  ${name}`);
      for (const s of result.skipped) out(`  left out ${s.path} (${s.source === 'pack.ignore' ? 'pack.ignore' : 'never bundled'}: ${s.pattern})`);
    } else if (result.skipped.length > 0) {
      out(`left out ${result.skipped.length} path${result.skipped.length === 1 ? '' : 's'} (${[...new Set(result.skipped.map((s) => s.pattern))].join(', ')}); --verbose lists them`);
    }
    out(`wrote ${result.path}`);
    out(`sha256 ${result.sha256}`);
  } finally {
    if (staging) fs.rmSync(staging, { recursive: true, force: true });
  }
  return EXIT.ok;
}

/**
 * A TypeScript plugin (`server.runtime: node` with a .ts entry) is packed from
 * a staging folder holding what runs with only the host's node: the entry
 * bundled by esbuild to the same path with `.js` and its source map (`.js.map`,
 * source paths relative to the plugin folder), the .proto files in `proto/` beside it, plugin.json with `server.entry` pointing at the bundle, the files
 * the manifest names, and README/LICENSE/NOTICE/CHANGELOG files and `assets/`.
 * Sources, tests and node_modules stay out.
 */
function stageTypeScriptPlugin(dir: string, manifest: Manifest, entry: string): string {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-pack-'));
  try {
    const built = bundledEntryName(entry);
    const bundle = bundlePlugin(path.join(dir, entry), path.join(staging, built), { mapAs: path.join(dir, built), authorDir: dir });
    out(`bundled ${entry} → ${built} (${bundle.bytes} bytes, esbuild ${bundle.esbuildVersion}) with its source map ${built}.map`);
    const packed: Manifest = { ...manifest, server: { runtime: 'node', entry: built } };
    fs.writeFileSync(path.join(staging, 'plugin.json'), `${JSON.stringify(packed, null, 2)}\n`);
    for (const { field, file } of referencedFiles(packed)) {
      if (field === 'server.entry') continue;
      fs.mkdirSync(path.dirname(path.join(staging, file)), { recursive: true });
      fs.copyFileSync(path.join(dir, file), path.join(staging, file));
    }
    for (const name of fs.readdirSync(dir)) {
      if (KEPT_EXTRAS.test(name)) fs.cpSync(path.join(dir, name), path.join(staging, name), { recursive: true, dereference: false });
    }
    return staging;
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
