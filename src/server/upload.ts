/**
 * Uploads stream to a temp file with a byte limit enforced while they flow:
 * a 10 GiB upload costs at most the limit in disk and nothing in memory.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
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

/** Downloads an http(s) URL to `file` under a size limit and a timeout. */
export async function download(url: string, file: string, limit: number, timeoutMs: number): Promise<number> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw Errors.BAD_URL(url, 'it is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw Errors.BAD_URL(url, `only http and https are allowed, not ${parsed.protocol}`);
  // One deadline for the whole download, headers and body alike.
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = () => Errors.DOWNLOAD_FAILED(url, `no complete answer within ${timeoutMs} ms`);
  let res: Response;
  try {
    res = await fetch(parsed, { signal, redirect: 'follow' });
  } catch (err) {
    const e = err as Error;
    throw signal.aborted ? timedOut() : Errors.DOWNLOAD_FAILED(url, (e.cause as Error)?.message ?? e.message);
  }
  if (!res.ok || !res.body) throw Errors.DOWNLOAD_FAILED(url, `the server answered ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) throw Errors.UPLOAD_TOO_LARGE(`the bundle at ${url}`, limit);
  try {
    return await saveStream(Readable.fromWeb(res.body as WebReadableStream), file, limit, `the bundle at ${url}`);
  } catch (err) {
    if (err instanceof PlughostError && err.code === Errors.UPLOAD_INCOMPLETE.code) {
      throw signal.aborted ? timedOut() : Errors.DOWNLOAD_FAILED(url, err.message);
    }
    throw err;
  }
}
