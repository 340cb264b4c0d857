import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Errors } from '../errors';
import { MANIFEST_FILES, Manifest, loadManifest, referencedFiles } from '../manifest';
import { IgnoreRule, ignoreRules, ignoredBy } from './pack-ignore';
import { checkReferencedFiles } from './plugin-dir';
import { BLOCK, TYPE, encodeHeader, encodePax, padding } from './tar-format';

/** 2000-01-01T00:00:00Z: a fixed mtime for every entry, so packing is reproducible. */
export const PACK_MTIME = 946684800;
/** The gzip header's OS byte is set to "Unix" whatever the packing machine, for the same reason. */
const GZIP_OS_UNIX = 3;

export interface PackResult {
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  /** Files and folders written, in archive order. */
  entries: string[];
  /** Regular files written, and the sum of their sizes before compression. */
  files: number;
  contentBytes: number;
  /** Paths left out, a folder once (ending in `/`) rather than everything in it, with the pattern that left each out. */
  skipped: SkippedPath[];
}

export interface SkippedPath {
  path: string;
  pattern: string;
  source: IgnoreRule['source'];
}

interface SourceEntry {
  name: string;
  abs: string;
  kind: 'file' | 'directory';
  mode: number;
  size: number;
}

/**
 * Packs a plugin folder into a .tar.gz that `extractBundle` accepts. The manifest and the files
 * it names are checked first. Output is reproducible: entries sorted bytewise, fixed mtime, owner
 * 0:0 with empty names, modes 0644/0755, and a fixed gzip header, so one folder always packs to
 * the same bytes (and so the same signature). What never belongs in a bundle, and what the
 * manifest's `pack.ignore` names, is left out (see pack-ignore.ts).
 */
export async function packBundle(dir: string, outFile: string): Promise<PackResult> {
  const root = path.resolve(dir);
  const out = path.resolve(outFile);
  const { manifest } = loadManifest(root);
  checkReferencedFiles(manifest, root);
  const skipped: SkippedPath[] = [];
  const entries = collect({ root, out, rules: ignoreRules(manifest), skipped }, '');
  skipped.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  checkNothingNeededSkipped(manifest, skipped);
  const tmp = `${out}.tmp-${process.pid}`;
  const hash = createHash('sha256');
  let size = 0;
  const fixHeader = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (size <= 9 && size + chunk.length > 9) chunk[9 - size] = GZIP_OS_UNIX;
      size += chunk.length;
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.from(tarStream(entries)), zlib.createGzip({ level: 9 }), fixHeader, fs.createWriteStream(tmp));
    await fsp.rename(tmp, out);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const files = entries.filter((e) => e.kind === 'file');
  return {
    path: out, sha256: hash.digest('hex'), size, manifest, entries: entries.map((e) => e.name),
    files: files.length, contentBytes: files.reduce((sum, e) => sum + e.size, 0), skipped,
  };
}

/** A pattern that leaves out the manifest or a file it names would make a bundle the host refuses: say so now. */
function checkNothingNeededSkipped(manifest: Manifest, skipped: SkippedPath[]): void {
  const needed = [
    ...MANIFEST_FILES.map((file) => ({ file, why: 'it is the manifest' })),
    ...referencedFiles(manifest).map(({ field, file }) => ({ file, why: `manifest field ${field} names it` })),
  ];
  for (const s of skipped) {
    const hit = needed.find(({ file }) => {
      const rel = path.posix.normalize(file.replace(/\\/g, '/'));
      return s.path.endsWith('/') ? rel.startsWith(s.path) : rel === s.path;
    });
    if (hit) throw Errors.PACK_IGNORES_NEEDED_FILE(hit.file, hit.why, s.pattern, s.source);
  }
}

function byteOrder(a: SourceEntry, b: SourceEntry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

interface Walk {
  root: string;
  out: string;
  rules: IgnoreRule[];
  skipped: SkippedPath[];
}

function collect(walk: Walk, rel: string): SourceEntry[] {
  const found: SourceEntry[] = [];
  for (const name of fs.readdirSync(path.join(walk.root, rel))) {
    const childRel = rel ? `${rel}/${name}` : name;
    const abs = path.join(walk.root, childRel);
    if (abs === walk.out || abs.startsWith(`${walk.out}.tmp-`)) continue;
    const st = fs.lstatSync(abs);
    // Before the refusal of links below: an ignored link (an editor's lock file) is simply left out.
    const rule = ignoredBy(walk.rules, childRel, st.isDirectory());
    if (rule) {
      walk.skipped.push({ path: st.isDirectory() ? `${childRel}/` : childRel, pattern: rule.pattern, source: rule.source });
      continue;
    }
    if (st.isDirectory()) {
      found.push({ name: `${childRel}/`, abs, kind: 'directory', mode: 0o755, size: 0 });
      found.push(...collect(walk, childRel));
    } else if (st.isFile()) {
      found.push({ name: childRel, abs, kind: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, size: st.size });
    } else {
      throw Errors.PACK_UNSUPPORTED_FILE(abs, st.isSymbolicLink() ? 'symbolic link' : 'special file (device, FIFO or socket)');
    }
  }
  return rel === '' ? found.sort(byteOrder) : found;
}

async function* tarStream(entries: SourceEntry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const type = e.kind === 'directory' ? TYPE.directory : TYPE.file;
    if (Buffer.byteLength(e.name) > 100) yield encodePax(`PaxHeader/${path.posix.basename(e.name)}`, { path: e.name }, PACK_MTIME);
    yield encodeHeader({ path: e.name, type, mode: e.mode, size: e.size, mtime: PACK_MTIME });
    if (e.kind === 'file') {
      let read = 0;
      for await (const chunk of fs.createReadStream(e.abs, { highWaterMark: 64 * 1024 })) {
        read += (chunk as Buffer).length;
        if (read > e.size) break;
        yield chunk as Buffer;
      }
      if (read !== e.size) throw new Error(`${e.abs} changed size while it was being packed (${e.size} bytes, then ${read})`);
      yield padding(e.size);
    }
  }
  yield Buffer.alloc(BLOCK * 2);
}
