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
  buildSync(options: Record<string, unknown>): { errors: Array<{ text: string }>; warnings: Array<{ text: string }> };
}

export interface BundleResult {
  /** The bundled JavaScript file. */
  outFile: string;
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

/** Bundles `entry` into `outFile` and copies the .proto files next to it. */
export function bundlePlugin(entry: string, outFile: string): BundleResult {
  const esbuild = loadEsbuild();
  const result = esbuild.buildSync({
    entryPoints: [path.resolve(entry)],
    outfile: path.resolve(outFile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Whitespace and syntax only: startup gains little from shorter names, and stack traces stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  if (result.errors.length) throw new Error(`esbuild could not bundle ${entry}: ${result.errors.map((e) => e.text).join('; ')}`);
  const protoDir = path.join(path.dirname(path.resolve(outFile)), 'proto');
  copyProtos(protoRoot(), protoDir);
  return { outFile: path.resolve(outFile), protoDir, bytes: fs.statSync(outFile).size, esbuildVersion: esbuild.version };
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
