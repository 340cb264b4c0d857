/**
 * Bundles in the database, the part both stores share: cutting the bytes
 * into fixed BUNDLE_CHUNK_BYTES chunks while hashing them (so a bundle is
 * checked against its SHA-256 before anything is committed), and reading
 * them back as a stream that recomputes the hash (so a damaged row is
 * reported, never handed to the installer as a valid bundle).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Errors } from '../errors';
import { BUNDLE_CHUNK_BYTES } from './store';

export function checkSha256(sha256: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw Errors.STORE_BAD_ARGUMENT('sha256', sha256, '64 lowercase hex digits');
}

/**
 * Feeds `bytes` to `write` in chunks of exactly BUNDLE_CHUNK_BYTES (the last
 * one shorter; none for an empty bundle), whatever sizes a stream delivers.
 * Throws STORE_BUNDLE_MISMATCH after the last chunk when the bytes do not
 * hash to `sha256`; the caller then discards what it wrote.
 */
export async function writeChunks(
  sha256: string,
  bytes: Buffer | Readable,
  write: (seq: number, chunk: Buffer) => unknown,
): Promise<{ size: number; chunks: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
    await write(seq++, chunk);
  };
  const source: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(bytes) ? [bytes] : bytes;
  for await (const piece of source) {
    let rest = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
    while (pendingBytes + rest.length >= BUNDLE_CHUNK_BYTES) {
      const take = BUNDLE_CHUNK_BYTES - pendingBytes;
      await flush(Buffer.concat([...pending, rest.subarray(0, take)]));
      pending = [];
      pendingBytes = 0;
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes > 0) await flush(Buffer.concat(pending));
  const actual = hash.digest('hex');
  if (actual !== sha256) throw Errors.STORE_BUNDLE_MISMATCH(sha256, actual, size);
  return { size, chunks: seq };
}

/**
 * The stored chunks 0..chunks-1 as one stream, each read when the consumer
 * wants it. The stream fails with STORE_BUNDLE_CORRUPT when a chunk is
 * missing, or the total size or the SHA-256 differ from what was stored.
 */
export function verifyingStream(
  sha256: string,
  size: number,
  chunks: number,
  readChunk: (seq: number) => Promise<Buffer | undefined>,
): Readable {
  async function* read(): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let total = 0;
    // One chunk is held back until the hash is checked, so a consumer never receives all of a bad bundle as if it were whole.
    let held: Buffer | undefined;
    for (let seq = 0; seq < chunks; seq++) {
      const chunk = await readChunk(seq);
      if (chunk === undefined) throw Errors.STORE_BUNDLE_CORRUPT(sha256, `chunk ${seq} of ${chunks} is missing`);
      hash.update(chunk);
      total += chunk.length;
      if (held) yield held;
      held = chunk;
    }
    if (total !== size) throw Errors.STORE_BUNDLE_CORRUPT(sha256, `its chunks hold ${total} bytes, ${size} were stored`);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw Errors.STORE_BUNDLE_CORRUPT(sha256, `its chunks hash to ${actual}`);
    if (held) yield held;
  }
  return Readable.from(read(), { objectMode: false });
}
