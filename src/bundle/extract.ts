import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { Errors, PlughostError } from '../errors';
import { Manifest, loadManifest } from '../manifest';
import { PathRegistry, entryKind, normalizedMode, safeSegments } from './entry-rules';
import { BundleLimits, resolveLimits } from './limits';
import { checkReferencedFiles, locatePluginDir } from './plugin-dir';
import { TarFormatError, TarReader } from './tar-reader';

/*
 * Why a hand-written tar reader (tar-reader.ts) and not node-tar's Parser: the Parser detects
 * and inflates gzip, brotli and zstd on its own whenever its input starts with their magic bytes,
 * so a tar.gz whose inner stream is itself compressed would inflate outside our byte counting.
 * It also turns many format problems into warnings. Reading ustar + pax ourselves is about 200
 * lines, pulls bytes only as fast as we write them, and every refusal is ours to word.
 */

const CHUNK = 64 * 1024;

export interface ExtractResult {
  manifest: Manifest;
  /** SHA-256 of the bundle file's bytes, hex. */
  sha256: string;
  /** The folder the plugin now lives in (the destination). */
  path: string;
  /** Files and folders extracted. */
  entries: number;
  /** Bytes inflated from the gzip stream. */
  inflatedBytes: number;
}

/**
 * Extracts a plugin bundle (.tar.gz) into `destDir`, which must not exist yet. The bundle is
 * unpacked into a staging folder beside the destination (same filesystem, so the final rename
 * is atomic), its manifest validated, and only then renamed into place. On any failure the
 * staging folder is removed and the destination never appears.
 */
export async function extractBundle(bundlePath: string, destDir: string, limits?: Partial<BundleLimits>): Promise<ExtractResult> {
  const lim = resolveLimits(limits);
  const dest = path.resolve(destDir);
  const label = path.basename(bundlePath);
  if (lexists(dest)) throw Errors.BUNDLE_DEST_EXISTS(dest);
  await checkBundleFile(bundlePath, label, lim);
  const parent = path.dirname(dest);
  const createdParent = await fsp.mkdir(parent, { recursive: true });
  const staging = await fsp.mkdtemp(path.join(parent, `.${path.basename(dest)}.staging-`));
  try {
    const unpacked = await unpack(bundlePath, label, staging, lim);
    const { dir, prefix } = locatePluginDir(staging, label);
    const { manifest } = loadManifest(dir, prefix);
    checkReferencedFiles(manifest, dir);
    await fsp.chmod(dir, 0o755);
    await fsp.rename(dir, dest).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOTEMPTY' || err.code === 'EEXIST' ? Errors.BUNDLE_DEST_EXISTS(dest) : err;
    });
    return { manifest, path: dest, ...unpacked };
  } catch (err) {
    if (createdParent) await fsp.rm(createdParent, { recursive: true, force: true });
    throw err;
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

/** Like existsSync, but a dangling symlink counts as existing: it is still something in the way. */
function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Size and magic bytes are checked before anything is written. */
async function checkBundleFile(bundlePath: string, label: string, lim: BundleLimits): Promise<void> {
  const fh = await fsp.open(bundlePath, 'r');
  try {
    const { size } = await fh.stat();
    if (size > lim.maxCompressedBytes) throw Errors.BUNDLE_TOO_LARGE(label, size, lim.maxCompressedBytes);
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    if (bytesRead < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
      throw Errors.BUNDLE_NOT_GZIP(label, `it starts with ${bytesRead ? head.subarray(0, bytesRead).toString('hex') : 'nothing (empty file)'}, expected the gzip magic 1f8b`);
    }
  } finally {
    await fh.close();
  }
}

async function unpack(bundlePath: string, label: string, staging: string, lim: BundleLimits): Promise<Omit<ExtractResult, 'manifest' | 'path'>> {
  const hash = createHash('sha256');
  let compressed = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      compressed += chunk.length;
      if (compressed > lim.maxCompressedBytes) return done(Errors.BUNDLE_TOO_LARGE(label, compressed, lim.maxCompressedBytes));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const input = fs.createReadStream(bundlePath, { highWaterMark: CHUNK });
  const gunzip = zlib.createGunzip({ chunkSize: CHUNK });
  pipeline(input, tap, gunzip, () => undefined);
  let inflated = 0;
  let current = '(first tar header)';
  // Counting here, between gunzip and the tar reader, is what stops a gzip bomb: the reader pulls
  // one chunk at a time, so inflation never runs more than a chunk past the limit.
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      inflated += chunk.length;
      if (inflated > lim.maxUncompressedBytes) throw Errors.BUNDLE_UNCOMPRESSED_TOO_LARGE(current, inflated, lim.maxUncompressedBytes);
      yield chunk;
    }
  }
  const source = counted();
  const reader = new TarReader(source);
  const registry = new PathRegistry();
  let entries = 0;
  try {
    for (let entry = await reader.next(); entry; entry = await reader.next()) {
      current = entry.path;
      if (++entries > lim.maxEntries) throw Errors.BUNDLE_TOO_MANY_ENTRIES(entry.path, lim.maxEntries);
      const kind = entryKind(entry);
      const segments = safeSegments(entry.path);
      if (segments.length === 0 && kind === 'directory') continue;
      if (segments.length === 0) throw Errors.BUNDLE_UNSAFE_PATH(entry.path, 'a file entry needs a name');
      registry.add(entry.path, segments, kind);
      const target = path.join(staging, ...segments);
      if (kind === 'directory') {
        await fsp.mkdir(target, { recursive: true, mode: 0o755 });
        continue;
      }
      if (entry.size > lim.maxFileBytes) throw Errors.BUNDLE_FILE_TOO_LARGE(entry.path, entry.size, lim.maxFileBytes);
      await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      await writeFile(target, entry.path, reader.body(), normalizedMode(kind, entry.mode));
    }
    if (!reader.ended) throw new TarFormatError('the archive has no end-of-archive marker');
    current = '(after the end of the archive)';
    // Reading to the end checks the gzip CRC and finishes the hash of the whole file.
    while (!(await source.next()).done);
  } catch (err) {
    throw describeFailure(err, label, current);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  return { sha256: hash.digest('hex'), entries, inflatedBytes: inflated };
}

async function writeFile(target: string, entryPath: string, body: AsyncIterable<Buffer>, mode: number): Promise<void> {
  // 'wx' never follows or replaces anything already there; on a case-insensitive filesystem it
  // is also what catches "README" and "readme" landing on one file.
  const fh = await fsp.open(target, 'wx', mode).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EEXIST' ? Errors.BUNDLE_DUPLICATE_ENTRY(entryPath, path.basename(target)) : err;
  });
  try {
    for await (const chunk of body) {
      for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

function describeFailure(err: unknown, label: string, entry: string): unknown {
  if (err instanceof PlughostError) return err;
  if (err instanceof TarFormatError) return Errors.BUNDLE_CORRUPT(label, `${err.message} (near entry ${JSON.stringify(entry)})`);
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return Errors.BUNDLE_CORRUPT(label, `the gzip stream is broken near entry ${JSON.stringify(entry)}: ${(err as Error).message}`);
  }
  return err;
}
