import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { Errors } from '../errors';
import { MANIFEST_FILES, Manifest, ManifestFormat } from './types';
import { validateManifest } from './validate';

/** A manifest is a small file; anything bigger is a mistake or an attack. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** YAML aliases a legitimate manifest needs are few; this stops "billion laughs" expansion. */
export const MAX_YAML_ALIASES = 100;
/** Deeper nesting than this has no use in a manifest and could exhaust the stack when walked. */
const MAX_DEPTH = 64;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface LoadedManifest {
  manifest: Manifest;
  /** Absolute path of the manifest file that was read. */
  file: string;
  format: ManifestFormat;
}

export function formatOf(fileName: string): ManifestFormat {
  return fileName.endsWith('.json') ? 'json' : 'yaml';
}

/**
 * The manifest file name in `dir`. Two manifests side by side would be ambiguous about which
 * one the host reads, so that is an error naming both rather than a silent choice.
 */
export function findManifestFile(dir: string): string {
  const present = MANIFEST_FILES.filter((name) => isFile(path.join(dir, name)));
  if (present.length === 0) throw Errors.MANIFEST_NOT_FOUND(dir);
  if (present.length > 1) throw Errors.MANIFEST_AMBIGUOUS(dir, present);
  return present[0];
}

/** Reads, parses and validates the manifest of a plugin folder; `label` names the folder in errors. */
export function loadManifest(dir: string, label?: string): LoadedManifest {
  const name = findManifestFile(dir);
  const file = path.join(dir, name);
  const size = fs.statSync(file).size;
  const shown = label !== undefined ? path.posix.join(label, name) : file;
  if (size > MAX_MANIFEST_BYTES) throw Errors.MANIFEST_TOO_LARGE(shown, size, MAX_MANIFEST_BYTES);
  const format = formatOf(name);
  return { manifest: parseManifest(fs.readFileSync(file), format, shown), file, format };
}

/** Parses and validates manifest text; `file` only names the source in error messages. */
export function parseManifest(source: string | Buffer, format: ManifestFormat, file = `plugin.${format}`): Manifest {
  const manifest = parseManifestUnchecked(source, format, file);
  const problems = validateManifest(manifest);
  if (problems.length) throw Errors.MANIFEST_INVALID(file, problems);
  return manifest as Manifest;
}

/**
 * Parses without validating the fields, but with every safety check: size, alias expansion,
 * nesting depth and prototype-polluting keys. Used by tools that want to report field problems
 * themselves.
 */
export function parseManifestUnchecked(source: string | Buffer, format: ManifestFormat, file = `plugin.${format}`): unknown {
  const size = typeof source === 'string' ? Buffer.byteLength(source) : source.length;
  if (size > MAX_MANIFEST_BYTES) throw Errors.MANIFEST_TOO_LARGE(file, size, MAX_MANIFEST_BYTES);
  const text = typeof source === 'string' ? source : source.toString('utf8');
  const value = format === 'json' ? parseJson(text, file) : parseYaml(text, file);
  checkKeys(value, '', 0, file);
  return value;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw Errors.MANIFEST_SYNTAX(file, (err as Error).message);
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = YAML.parseDocument(text, { schema: 'core', uniqueKeys: true });
  if (doc.errors.length) throw Errors.MANIFEST_SYNTAX(file, doc.errors.map((e) => e.message).join('; '));
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    if (/alias/i.test((err as Error).message)) throw Errors.MANIFEST_ALIAS_LIMIT(file, MAX_YAML_ALIASES);
    throw Errors.MANIFEST_SYNTAX(file, (err as Error).message);
  }
}

/**
 * Both JSON.parse and yaml store `__proto__` as an own key, so parsing alone pollutes nothing;
 * the danger is later code that copies or merges the object. Refusing the keys at the edge
 * means nothing downstream has to think about it.
 */
function checkKeys(value: unknown, at: string, depth: number, file: string): void {
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_DEPTH) throw Errors.MANIFEST_SYNTAX(file, `nesting deeper than ${MAX_DEPTH} levels at ${at}`);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkKeys(item, `${at}[${i}]`, depth + 1, file));
    return;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw Errors.MANIFEST_FORBIDDEN_KEY(file, at, key);
    checkKeys((value as Record<string, unknown>)[key], at ? `${at}.${key}` : key, depth + 1, file);
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
