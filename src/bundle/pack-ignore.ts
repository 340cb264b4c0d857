/**
 * What `plughost pack` leaves out of a bundle: what never belongs in one (version control,
 * caches, editor and system litter), and the patterns a manifest adds under `pack.ignore`.
 * Patterns are simple globs (see `compileIgnore`); a folder that matches is left out whole.
 */
import type { Manifest } from '../manifest';

/**
 * Left out of every bundle. Each is a pattern of the same syntax as `pack.ignore`, so the list
 * in docs/bundles.md is exactly this one.
 */
export const ALWAYS_IGNORED: readonly string[] = [
  // version control
  '.git', '.hg', '.svn',
  // Python and tool caches, rebuilt by the interpreter or the tool
  '__pycache__/', '*.pyc', '*.pyo', '.pytest_cache/', '.mypy_cache/', '.ruff_cache/', '**/node_modules/.cache',
  // editors and operating systems
  '.idea/', '.vscode/', '*.swp', '*.swo', '*~', '.#*', '.DS_Store', 'Thumbs.db', 'desktop.ini',
];

/**
 * `node_modules` is left out unless the plugin is `server.runtime: node`, whose entry is run as
 * is and may require its packages. (A TypeScript entry is bundled first, so it needs none.)
 */
const NODE_MODULES = 'node_modules/';

/** One compiled pattern, and where it came from, for the message that explains a left-out path. */
export interface IgnoreRule {
  pattern: string;
  /** "always" for the built-in list, "pack.ignore" for the manifest's own. */
  source: 'always' | 'pack.ignore';
  matches(rel: string, isDir: boolean): boolean;
}

/**
 * Compiles a pattern: `*` is any run of characters but `/`, `?` one character but `/`, a `**`
 * segment any number of segments (none included). A pattern without `/` matches a name at any
 * depth; a leading or inner `/` anchors it at the plugin folder; a trailing `/` matches folders only.
 * Everything else is literal (the manifest validator refuses `\ [ ] { }` and a leading `!`).
 */
export function compileIgnore(pattern: string, source: IgnoreRule['source']): IgnoreRule {
  const dirOnly = pattern.endsWith('/');
  const body = pattern.replace(/\/$/, '');
  const anchored = body.includes('/');
  const segments = body.replace(/^\//, '').split('/');
  const regex = segments
    .map((seg, i) => {
      const last = i === segments.length - 1;
      if (seg === '**') return last ? '.*' : '(?:[^/]+/)*';
      const literal = seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
      return last ? literal : `${literal}/`;
    })
    .join('');
  const re = new RegExp(anchored ? `^${regex}$` : `^(?:.*/)?${regex}$`);
  return { pattern, source, matches: (rel, isDir) => (!dirOnly || isDir) && re.test(rel) };
}

/** The rules for one plugin folder: the built-in list, node_modules unless a node entry may need it, then the manifest's. */
export function ignoreRules(manifest: Manifest): IgnoreRule[] {
  const always = manifest.server?.runtime === 'node' ? ALWAYS_IGNORED : [...ALWAYS_IGNORED, NODE_MODULES];
  return [...always.map((p) => compileIgnore(p, 'always')), ...(manifest.pack?.ignore ?? []).map((p) => compileIgnore(p, 'pack.ignore'))];
}

/** The first rule that leaves `rel` (a path relative to the plugin folder, `/`-separated) out, if any. */
export function ignoredBy(rules: readonly IgnoreRule[], rel: string, isDir: boolean): IgnoreRule | undefined {
  return rules.find((r) => r.matches(rel, isDir));
}
