import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Errors } from '../errors';
import { Manifest, loadManifest } from '../manifest';
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
 * the same bytes (and so the same signature). `.git` and `node_modules/.cache` are skipped.
 */
export async function packBundle(dir: string, outFile: string): Promise<PackResult> {
  const root = path.resolve(dir);
  const out = path.resolve(outFile);
  const { manifest } = loadManifest(root);
  checkReferencedFiles(manifest, root);
  const entries = collect(root, '', out);
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
  return { path: out, sha256: hash.digest('hex'), size, manifest, entries: entries.map((e) => e.name) };
}

function skipped(rel: string): boolean {
  const parts = rel.split('/');
  const last = parts[parts.length - 1];
  return last === '.git' || (last === '.cache' && parts[parts.length - 2] === 'node_modules');
}

function byteOrder(a: SourceEntry, b: SourceEntry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

function collect(root: string, rel: string, out: string): SourceEntry[] {
  const found: SourceEntry[] = [];
  for (const name of fs.readdirSync(path.join(root, rel))) {
    const childRel = rel ? `${rel}/${name}` : name;
    const abs = path.join(root, childRel);
    if (skipped(childRel) || abs === out || abs.startsWith(`${out}.tmp-`)) continue;
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) {
      found.push({ name: `${childRel}/`, abs, kind: 'directory', mode: 0o755, size: 0 });
      found.push(...collect(root, childRel, out));
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
