/**
 * Builds a TypeScript plugin into what a host runs with only its own `node`:
 * one CommonJS file (the entry and everything it imports, @grpc/grpc-js
 * included) bundled by esbuild, with the contract's .proto files copied into
 * a `proto/` folder beside it, where the protocol layer looks for them.
 * Used by `plughost pack` and by the test harness, so tests run what ships.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { protoRoot } from '../src/protocol/proto';

/** File endings that make `server.entry` a TypeScript source to bundle. */
export const TS_ENTRY = /\.(ts|mts|cts|tsx)$/;

/** The few parts of esbuild's API used here; esbuild is a build-time tool, not a runtime dependency. */
interface Esbuild {
  version: string;
  buildSync(options: Record<string, unknown>): {
    errors: Array<{ text: string }>;
    warnings: Array<{ text: string }>;
    outputFiles?: Array<{ path: string; contents: Uint8Array }>;
  };
}

export interface BundleOptions {
  /**
   * Writes `<outFile>.map` beside the bundle and links it from the bundle's last line, so a
   * host (which runs a node entry with `--enable-source-maps` when its map is there) reports
   * stack frames at the author's TypeScript lines. Default true.
   */
  sourceMap?: boolean;
  /**
   * Where the bundle will stand beside its sources (`<plugin folder>/src/plugin.js` for
   * `src/plugin.ts`) when `outFile` is elsewhere, e.g. a staging folder: the map's source paths
   * are made relative to this place, so in an installed plugin they read `src/plugin.ts`.
   */
  mapAs?: string;
  /**
   * The author's folder: the map carries the text of the files under it (outside
   * node_modules), so an uncaught error shows the author's line; dependencies are positions
   * only. Default: the entry's folder.
   */
  authorDir?: string;
}

export interface BundleResult {
  /** The bundled JavaScript file. */
  outFile: string;
  /** Its source map, when one was written. */
  mapFile?: string;
  /** The folder holding the .proto files, beside outFile. */
  protoDir: string;
  bytes: number;
  esbuildVersion: string;
}

/**
 * esbuild, from the project (`npm i -D esbuild`) or from the folder named by
 * PLUGHOST_ESBUILD; a clear error when neither has it.
 */
export function loadEsbuild(): Esbuild {
  const fromProject = (): string => require.resolve('esbuild', { paths: [process.cwd()] });
  const candidates: Array<[string, () => string]> = [['esbuild', () => 'esbuild'], ['esbuild from the current folder', fromProject]];
  if (process.env.PLUGHOST_ESBUILD) candidates.unshift([process.env.PLUGHOST_ESBUILD, () => process.env.PLUGHOST_ESBUILD as string]);
  const failures: string[] = [];
  for (const [label, resolve] of candidates) {
    try {
      return require(resolve()) as Esbuild;
    } catch (err) {
      failures.push(`${label}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    'bundling a TypeScript plugin needs esbuild: run `npm install --save-dev esbuild` in your project ' +
      `(or set PLUGHOST_ESBUILD to an installed esbuild package folder). Tried ${failures.join('; ')}`,
  );
}

/** The bundle's entry for a TypeScript entry: the same path with `.js` (`server/plugin.ts` → `server/plugin.js`). */
export function bundledEntryName(entry: string): string {
  return entry.replace(TS_ENTRY, '.js');
}

/** Bundles `entry` into `outFile` (with its source map unless told not to) and copies the .proto files next to it. */
export function bundlePlugin(entry: string, outFile: string, options: BundleOptions = {}): BundleResult {
  const esbuild = loadEsbuild();
  const target = path.resolve(outFile);
  const sourceMap = options.sourceMap ?? true;
  const result = esbuild.buildSync({
    entryPoints: [path.resolve(entry)],
    // Built in memory as if at `mapAs`, then written at `target`: the map's paths are relative to the first.
    outfile: path.resolve(options.mapAs ?? target),
    write: false,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Whitespace and syntax only: startup gains little from shorter names, and stack traces stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    sourcemap: sourceMap ? 'linked' : false,
    logLevel: 'silent',
  });
  if (result.errors.length) throw new Error(`esbuild could not bundle ${entry}: ${result.errors.map((e) => e.text).join('; ')}`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  let mapFile: string | undefined;
  for (const file of result.outputFiles ?? []) {
    const isMap = file.path.endsWith('.map');
    const written = isMap ? `${target}.map` : target;
    const authorDir = path.resolve(options.authorDir ?? path.dirname(entry));
    fs.writeFileSync(written, isMap ? authorSourcesOnly(file.contents, path.dirname(file.path), authorDir) : file.contents);
    if (isMap) mapFile = written;
  }
  const protoDir = path.join(path.dirname(target), 'proto');
  copyProtos(protoRoot(), protoDir);
  return { outFile: target, mapFile, protoDir, bytes: fs.statSync(target).size, esbuildVersion: esbuild.version };
}

/** The map with the text of every source outside `authorDir`, or inside a node_modules, left out. */
function authorSourcesOnly(map: Uint8Array, mapDir: string, authorDir: string): string {
  const parsed = JSON.parse(Buffer.from(map).toString('utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
  parsed.sourcesContent = parsed.sources.map((source, i) => {
    const rel = path.relative(authorDir, path.resolve(mapDir, source));
    const own = !rel.startsWith('..') && !path.isAbsolute(rel) && !rel.split(path.sep).includes('node_modules');
    return own ? (parsed.sourcesContent?.[i] ?? null) : null;
  });
  return JSON.stringify(parsed);
}

function copyProtos(from: string, to: string): void {
  for (const item of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, item.name);
    const dst = path.join(to, item.name);
    if (item.isDirectory()) copyProtos(src, dst);
    else if (item.isFile() && item.name.endsWith('.proto')) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(src, dst);
    }
  }
}
