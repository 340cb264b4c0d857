/**
 * `plughost types <dir>`: writes the `Settings` TypeScript type of the plugin's settings schema
 * into its sources (`src/settings.ts` unless `--out` says otherwise); `--check` changes
 * nothing and exits 1 when the file is missing or stale, for CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Errors } from '../../errors';
import { isGeneratedSettingsTypes, loadManifest, settingsTypeSource, type LoadedManifest } from '../../manifest';
import { EXIT, err, onePositional, out } from '../io';

export const usage = 'plughost types <dir> [--out src/settings.ts] [--check]   write the Settings TypeScript type from the manifest\'s settings_schema; --check exits 1 when the file is stale';

/** Where the type goes when no --out is given, relative to the plugin folder; `plughost pack` refreshes it there. */
export const DEFAULT_SETTINGS_TYPES_FILE = path.join('src', 'settings.ts');

export type TypesOutcome = 'written' | 'unchanged';

/** The file's text that `loaded` makes. */
function wantedSource(loaded: LoadedManifest): string {
  return settingsTypeSource(loaded.manifest.settings_schema, path.basename(loaded.file));
}

/** Writes the type into `file` unless it already says the same; a hand-written file there is refused. */
export function writeSettingsTypes(loaded: LoadedManifest, file: string): TypesOutcome {
  const wanted = wantedSource(loaded);
  const current = readIfPresent(file);
  if (current === wanted) return 'unchanged';
  if (current !== undefined && !isGeneratedSettingsTypes(current)) throw Errors.SETTINGS_TYPES_HAND_WRITTEN(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, wanted);
  return 'written';
}

/**
 * For `plughost pack`: refreshes the default types file of a TypeScript plugin when it is one
 * `plughost types` wrote; a folder without it, or with a hand-written one, is left alone.
 */
export function refreshSettingsTypes(dir: string, loaded: LoadedManifest): string | undefined {
  const file = path.join(dir, DEFAULT_SETTINGS_TYPES_FILE);
  const current = readIfPresent(file);
  if (current === undefined || !isGeneratedSettingsTypes(current)) return undefined;
  return writeSettingsTypes(loaded, file) === 'written' ? file : undefined;
}

/**
 * For `plughost dev`: whether `file` is the generated type exactly as the manifest in `dir`
 * makes it now, i.e. what pack has just written. A stale or hand-written file, or a manifest
 * that does not load, is not.
 */
export function settingsTypesInStep(dir: string, file: string): boolean {
  try {
    const current = readIfPresent(file);
    return current !== undefined && isGeneratedSettingsTypes(current) && current === wantedSource(loadManifest(dir));
  } catch {
    return false;
  }
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string', short: 'o' }, check: { type: 'boolean' } } });
  const dir = onePositional(positionals, 'plugin folder');
  const loaded = loadManifest(dir);
  const file = path.resolve(dir, values.out ?? DEFAULT_SETTINGS_TYPES_FILE);
  const shown = path.relative(process.cwd(), file) || file;
  if (values.check) {
    const current = readIfPresent(file);
    if (current !== wantedSource(loaded)) {
      const how = `plughost types ${dir}${values.out ? ` --out ${values.out}` : ''}`;
      err(Errors.SETTINGS_TYPES_STALE(shown, path.relative(process.cwd(), loaded.file), how, current === undefined).message);
      return EXIT.failed;
    }
    out(`${shown} is up to date`);
    return EXIT.ok;
  }
  const outcome = writeSettingsTypes(loaded, file);
  const count = loaded.manifest.settings_schema?.settings.length ?? 0;
  out(outcome === 'written' ? `wrote ${shown} (${count} setting${count === 1 ? '' : 's'})` : `${shown} is up to date`);
  return EXIT.ok;
}

function readIfPresent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
