import * as fs from 'node:fs';
import * as path from 'node:path';
import { Errors, FieldProblem } from '../errors';
import { MANIFEST_FILES, Manifest, referencedFiles } from '../manifest';

function isRegularFile(p: string): boolean {
  try {
    return fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/** The files the manifest names that are not regular files inside `dir`, as field problems. */
export function missingFiles(manifest: Manifest, dir: string): FieldProblem[] {
  return referencedFiles(manifest)
    .filter(({ file }) => !isRegularFile(path.join(dir, file)))
    .map(({ field, file }) => ({ path: field, message: `expected a regular file at ${JSON.stringify(file)} in the plugin folder` }));
}

/**
 * Every file the manifest names must be a regular file inside `dir`: checked when packing and
 * when installing, so a bundle missing its executable is refused up front.
 */
export function checkReferencedFiles(manifest: Manifest, dir: string): void {
  const missing = referencedFiles(manifest).find(({ file }) => !isRegularFile(path.join(dir, file)));
  if (missing) throw Errors.BUNDLE_MISSING_FILE(missing.field, missing.file);
}

function hasManifest(dir: string): boolean {
  return MANIFEST_FILES.some((name) => fs.existsSync(path.join(dir, name)));
}

/**
 * Where the plugin sits in an unpacked bundle: the root when a manifest is there, else the one
 * and only top-level folder. Returns that folder and its name inside the bundle ('' for the root).
 */
export function locatePluginDir(root: string, bundleLabel: string): { dir: string; prefix: string } {
  if (hasManifest(root)) return { dir: root, prefix: '' };
  const entries = fs.readdirSync(root, { withFileTypes: true });
  const holders = entries.filter((e) => e.isDirectory() && hasManifest(path.join(root, e.name)));
  if (entries.length === 1 && holders.length === 1) return { dir: path.join(root, holders[0].name), prefix: holders[0].name };
  const found = holders.flatMap((e) => MANIFEST_FILES.filter((m) => fs.existsSync(path.join(root, e.name, m))).map((m) => `${e.name}/${m}`));
  throw Errors.BUNDLE_NO_MANIFEST(bundleLabel, found);
}
