/**
 * The CLI's client for the admin REST API. Requests and answers are JSON; a bundle upload
 * is streamed from disk as multipart (so a signature can travel with it) with a known
 * length, so the server sees the size up front and memory use does not grow with the file.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SseParser } from './sse';

/** An error answer from the server, or a failure to reach it (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8065. */
  url: string;
  token: string;
  /** The admin API's prefix. Default /api/v1. */
  apiPrefix?: string;
}

export interface UploadOptions {
  bundle: string;
  signature?: string;
  query?: Record<string, string>;
  onProgress?: (sent: number, total: number) => void;
}

/** Answers larger than this are not admin API answers; reading stops there. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export class AdminClient {
  private readonly base: URL;
  private readonly token: string;
  private readonly prefix: string;

  constructor(options: ClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new ApiError(0, 'BAD_URL', `--url ${JSON.stringify(options.url)} is not a URL; expected e.g. http://127.0.0.1:8065`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ApiError(0, 'BAD_URL', `--url ${JSON.stringify(options.url)}: expected an http or https URL`);
    }
    this.base = base;
    this.token = options.token;
    this.prefix = (options.apiPrefix ?? '/api/v1').replace(/\/$/, '');
  }

  /** The full URL of an admin API path such as `/plugins`. */
  url(apiPath: string, query?: Record<string, string>): URL {
    const url = new URL(`${this.base.pathname.replace(/\/$/, '')}${this.prefix}${apiPath}`, this.base);
    for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
    return url;
  }

  /** Sends a JSON request (or none) and returns the parsed JSON answer; undefined for 204. */
  async request<T>(method: string, apiPath: string, body?: unknown, query?: Record<string, string>): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {};
    return this.send<T>(method, this.url(apiPath, query), headers, payload ? Readable.from([payload]) : undefined);
  }

  /** Uploads a bundle (and its signature) as multipart/form-data, streamed from disk. */
  async upload<T>(options: UploadOptions): Promise<T> {
    const boundary = `plughost-${crypto.randomBytes(12).toString('hex')}`;
    const parts = [{ field: 'plugin', file: options.bundle }, ...(options.signature ? [{ field: 'signature', file: options.signature }] : [])];
    const sized = parts.map((p) => ({
      ...p,
      size: fs.statSync(p.file).size,
      head: Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${p.field}"; filename="${path.basename(p.file).replace(/["\r\n]/g, '_')}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
    }));
    const tail = Buffer.from(`--${boundary}--\r\n`);
    const length = sized.reduce((sum, p) => sum + p.head.length + p.size + 2, tail.length);
    const total = sized[0].size;
    let sent = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (const part of sized) {
        yield part.head;
        for await (const chunk of fs.createReadStream(part.file, { highWaterMark: 256 * 1024 })) {
          if (part.field === 'plugin') {
            sent += (chunk as Buffer).length;
            options.onProgress?.(sent, total);
          }
          yield chunk as Buffer;
        }
        yield Buffer.from('\r\n');
      }
      yield tail;
    }
    const headers = { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': length };
    return this.send<T>('POST', this.url('/plugins', options.query), headers, Readable.from(body()));
  }

  /**
   * Follows a server-sent event stream (GET), calling `onEvent` for each event. Resolves
   * 'ended' when the server ends the stream and 'stopped' when `signal` aborts it; an
   * error answer rejects with its ApiError, a lost connection with an UNREACHABLE one.
   */
  follow(apiPath: string, query: Record<string, string>, onEvent: (event: string, data: unknown) => void, signal: AbortSignal): Promise<'ended' | 'stopped'> {
    const url = this.url(apiPath, query);
    return new Promise((resolve, reject) => {
      const req = this.open('GET', url, { accept: 'text/event-stream' }, reject);
      const stop = () => {
        req.destroy();
        resolve('stopped');
      };
      if (signal.aborted) return stop();
      signal.addEventListener('abort', stop, { once: true });
      req.on('close', () => signal.removeEventListener('abort', stop));
      req.on('response', (res) => {
        if (res.statusCode !== 200) return this.collect(res, `GET ${url.pathname}`, resolve, reject);
        const parser = new SseParser(onEvent);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => parser.push(chunk));
        res.on('error', (err) => reject(this.unreachable(err)));
        res.on('end', () => resolve('ended'));
      });
      req.end();
    });
  }

  private send<T>(method: string, url: URL, headers: http.OutgoingHttpHeaders, body?: Readable): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = this.open(method, url, headers, reject);
      req.on('response', (res) => this.collect(res, `${method} ${url.pathname}`, resolve, reject));
      if (body) pipeline(body, req).catch((err: Error) => { req.destroy(); reject(this.unreachable(err)); });
      else req.end();
    });
  }

  /** Starts a request with the token; a failure to reach the server goes to `reject` as an UNREACHABLE ApiError. */
  private open(method: string, url: URL, headers: http.OutgoingHttpHeaders, reject: (err: ApiError) => void): http.ClientRequest {
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, { method, headers: { accept: 'application/json', ...headers, authorization: `Bearer ${this.token}` } });
    req.on('error', (err) => reject(this.unreachable(err)));
    return req;
  }

  private unreachable(err: Error): ApiError {
    return new ApiError(0, 'UNREACHABLE', `cannot reach plughost at ${this.base.origin}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
  }

  /** Reads a whole answer (up to MAX_ANSWER_BYTES) and settles with `answer`'s verdict on it. */
  private collect<T>(res: http.IncomingMessage, what: string, resolve: (value: T) => void, reject: (err: unknown) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
    });
    res.on('error', (err) => reject(this.unreachable(err)));
    res.on('end', () => {
      try {
        resolve(answer<T>(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), what));
      } catch (err) {
        reject(err);
      }
    });
  }
}

/** The parsed answer, or an ApiError carrying the server's code and message. */
function answer<T>(status: number, text: string, what: string): T {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(status, 'NOT_JSON', `${what} answered HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (status >= 200 && status < 300) return parsed as T;
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (error && typeof error.message === 'string') {
    throw new ApiError(status, String(error.code ?? 'UNKNOWN'), error.message, (error.details ?? {}) as Record<string, unknown>);
  }
  throw new ApiError(status, 'UNKNOWN', `${what} answered HTTP ${status}: ${text.slice(0, 200) || '(empty body)'}`);
}
