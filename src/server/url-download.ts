/**
 * install-from-url's fetch: http(s) only, every hop checked by the UrlGuard
 * (the first URL and each redirect), one deadline for the whole download, a
 * byte limit while the body flows. Errors describe what came back (status,
 * content type, size) and never quote its bytes.
 */
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { Errors, PlughostError } from '../errors';
import { saveStream } from './upload';
import type { UrlGuard } from './url-guard';

export interface DownloadOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** One deadline for every hop, headers and body alike. */
  timeoutMs: number;
  guard: UrlGuard;
  /** What the body is, for the size error ("the bundle at ..."). */
  what: string;
  /** Refuse a body that does not start with the gzip magic bytes. */
  gzip?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Downloads `url` to `file`; returns the number of bytes written. */
export async function download(url: string, file: string, options: DownloadOptions): Promise<number> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const timedOut = () => Errors.DOWNLOAD_FAILED(url, `no complete answer within ${options.timeoutMs} ms`);
  let target = httpUrl(url);
  let res: http.IncomingMessage;
  for (let hops = 0; ; hops++) {
    try {
      res = await get(target, options.guard, signal);
    } catch (err) {
      if (err instanceof PlughostError) throw err;
      throw signal.aborted ? timedOut() : Errors.DOWNLOAD_FAILED(url, (err as Error).message);
    }
    const status = res.statusCode ?? 0;
    if (!REDIRECTS.has(status) || !res.headers.location) break;
    res.resume();
    if (hops >= options.guard.maxRedirects) {
      throw Errors.DOWNLOAD_FAILED(url, `more than ${options.guard.maxRedirects} redirects (the installFromUrl.maxRedirects limit)`);
    }
    target = httpUrl(new URL(res.headers.location, target).href);
  }
  if (!res.statusCode || res.statusCode < 200 || res.statusCode > 299) {
    res.resume();
    throw Errors.DOWNLOAD_FAILED(url, `the server answered ${res.statusCode}`);
  }
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (declared > options.limit) {
    res.destroy();
    throw Errors.UPLOAD_TOO_LARGE(options.what, options.limit);
  }
  let size: number;
  try {
    size = await saveStream(res, file, options.limit, options.what);
  } catch (err) {
    if (err instanceof PlughostError && err.code === Errors.UPLOAD_INCOMPLETE.code) {
      throw signal.aborted ? timedOut() : Errors.DOWNLOAD_FAILED(url, err.message);
    }
    throw err;
  }
  if (options.gzip && !(await startsWithGzipMagic(file))) throw Errors.DOWNLOAD_NOT_BUNDLE(url, mediaType(res.headers['content-type']), size);
  return size;
}

function httpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw Errors.BAD_URL(url, 'it is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw Errors.BAD_URL(url, `only http and https are allowed, not ${parsed.protocol}`);
  return parsed;
}

/** One request; the guard's lookup decides where the socket may connect. */
function get(target: URL, guard: UrlGuard, signal: AbortSignal): Promise<http.IncomingMessage> {
  const hostname = target.hostname.replace(/^\[(.*)\]$/, '$1');
  // Node does not call `lookup` for an address literal, so it is checked here.
  if (net.isIP(hostname)) guard.check(target.href, hostname, hostname);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(target, { signal, agent: false, lookup: guard.lookupFor(target.href) }, resolve);
    req.on('error', reject);
  });
}

async function startsWithGzipMagic(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** The media type of a Content-Type header, or "none"/"unrecognised": a description, never the header's raw text. */
function mediaType(header: string | undefined): string {
  if (!header) return 'none';
  const type = header.split(';')[0].trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+-]{1,64}$/.test(type) ? type : 'unrecognised';
}
