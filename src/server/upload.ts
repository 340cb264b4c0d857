/**
 * Uploads stream to a temp file with a byte limit enforced while they flow:
 * a 10 GiB upload costs at most the limit in disk and nothing in memory.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors, PlughostError } from '../errors';

/**
 * A temp folder for one request's files; remove() deletes it. Synchronous on
 * purpose: a multipart body must be handed to the parser before the handler
 * first awaits, or a body that has already ended is never seen to end.
 */
export function requestTempDir(): { dir: string; remove(): Promise<void> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-up-'));
  return { dir, remove: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/** Writes `source` to `file`, failing with UPLOAD_TOO_LARGE (413) past `limit` bytes. */
export async function saveStream(source: Readable, file: string, limit: number, what: string): Promise<number> {
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > limit) done(Errors.UPLOAD_TOO_LARGE(what, limit));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(source, counter, fs.createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    if (err instanceof PlughostError) throw err;
    throw Errors.UPLOAD_INCOMPLETE((err as Error).message);
  }
  return size;
}
