/**
 * Fetch API bodies over plugin HTTP, both directions. Bodies are web
 * ReadableStreams fed from the transport with backpressure (a ServeHTTP stream
 * is paused while the reader is behind; a ServeHTTPStream exchange grants
 * credit as the reader takes bytes), and written back in parts of at most the
 * part size. Bodies that are not streams (a string or bytes) skip the web
 * stream entirely.
 */
import type { HTTPHeader, HTTPHeader__Output } from '../src/gen/plughost/v1/HTTPHeader';

/** Request body bytes a per-request ServeHTTP stream buffers ahead of the reader before it is paused. */
export const READ_AHEAD_BYTES = 512 * 1024;
/** Statuses whose responses have no body by definition; the Response constructor refuses one. */
export const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** The readable half of a grpc-js stream, as far as body feeding needs it. */
export interface PausableSource {
  pause(): unknown;
  resume(): unknown;
}

/** The writable half of a grpc-js stream. */
export interface PartSink<T> {
  write(part: T): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** What a StreamedBody tells whatever feeds it. */
export interface BodyFeed {
  /** The reader took `bytes` more (bytes dropped after it gave up count too) and has room for more. */
  taken(bytes: number): void;
  /** The reader's queue is full: hold back until taken(). */
  full(): void;
}

/** Feeds a body from a gRPC stream by pausing it while the reader's queue is full. */
export function pausingFeed(source: PausableSource): BodyFeed {
  return { taken: () => source.resume(), full: () => source.pause() };
}

/**
 * A ReadableStream that a transport pushes chunks into. Its queue holds at
 * most `highWaterBytes` before the feed is told it is full; every byte the
 * reader takes is reported, so a credit-based feed can grant it again.
 */
export class StreamedBody {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private done = false;
  private enqueued = 0;
  private reported = 0;

  constructor(
    private readonly feed: BodyFeed,
    private readonly highWaterBytes: number,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => this.pulled(),
        cancel: () => {
          // The reader gave up: keep the feed flowing so the peer is never blocked, and drop what comes.
          this.done = true;
          this.pulled();
        },
      },
      { highWaterMark: highWaterBytes, size: (chunk) => chunk.byteLength },
    );
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.done) return this.feed.taken(chunk.length);
    this.controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.enqueued += chunk.length;
    if ((this.controller.desiredSize ?? 1) <= 0) this.feed.full();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.controller.close();
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.controller.error(err);
  }

  /** Reports what the reader took since the last report: what was enqueued and is no longer queued. */
  private pulled(): void {
    const queued = this.done ? 0 : this.highWaterBytes - (this.controller.desiredSize ?? this.highWaterBytes);
    const taken = this.enqueued - queued - this.reported;
    this.reported += taken;
    this.feed.taken(taken);
  }
}

/** Writes one part, waiting for 'drain' when the stream's buffer is full. */
export function writePart<T>(sink: PartSink<T>, part: T): Promise<void> | undefined {
  if (sink.write(part)) return undefined;
  return new Promise((resolve) => sink.once('drain', resolve));
}

/**
 * Reads `body` to its end and hands it to `send` in chunks of at most
 * `partBytes`. Stops (cancelling the body) as soon as `stopped()` turns true.
 * `send` may return nothing when it needs no wait.
 */
export function pumpBody(
  body: ReadableStream<Uint8Array>,
  send: (chunk: Buffer) => Promise<void> | undefined,
  stopped: () => boolean,
  partBytes: number,
): Promise<void> {
  return pumpReader(body.getReader(), send, stopped, partBytes);
}

/** pumpBody on a reader already taken, starting with `first` when a read was already made; releases the reader. */
export async function pumpReader(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  send: (chunk: Buffer) => Promise<void> | undefined,
  stopped: () => boolean,
  partBytes: number,
  first?: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>,
): Promise<void> {
  try {
    for (;;) {
      const next = first ?? (await reader.read());
      first = undefined;
      if (next.done) return;
      const value = next.value;
      if (stopped()) {
        await reader.cancel();
        return;
      }
      for (let at = 0; at < value.byteLength; at += partBytes) {
        const wait = send(Buffer.from(value.buffer, value.byteOffset + at, Math.min(partBytes, value.byteLength - at)));
        if (wait) await wait;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * The bytes of a Response built from a string or bytes (Response.json(), new
 * Response('text')), read without going through its web stream, or null when the
 * body is a stream (or this Node's Fetch keeps its state elsewhere): then the
 * body must be streamed. Relies on undici's internal state where Node 20 has it.
 */
export function wholeBody(response: Response): Uint8Array | null {
  if (response.bodyUsed) return null;
  const state = stateSymbol === undefined ? findStateSymbol(response) : stateSymbol;
  if (!state) return null;
  const body = (response as unknown as Record<symbol, { body?: { source?: unknown } | null } | undefined>)[state]?.body;
  const source = body?.source;
  if (typeof source === 'string') return Buffer.from(source, 'utf8');
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  return null;
}

/**
 * How many bytes a Response's body has, when that is known before reading it: its bytes
 * or Blob (undici knows their length), else a Content-Length header the handler set; -1
 * for a stream of unknown length.
 */
export function knownBodyLength(response: Response, whole: Uint8Array | null): number {
  if (whole) return whole.byteLength;
  const state = stateSymbol === undefined ? findStateSymbol(response) : stateSymbol;
  const length = state ? (response as unknown as Record<symbol, { body?: { length?: unknown } | null } | undefined>)[state]?.body?.length : undefined;
  if (typeof length === 'number') return length;
  const declared = response.headers.get('content-length');
  return declared !== null && /^\d+$/.test(declared) ? Number(declared) : -1;
}

let stateSymbol: symbol | null | undefined;
function findStateSymbol(response: Response): symbol | null {
  const sym = Object.getOwnPropertySymbols(response).find((s) => s.description === 'state') ?? null;
  const state = sym ? (response as unknown as Record<symbol, unknown>)[sym] : null;
  stateSymbol = state && typeof state === 'object' && 'body' in state ? sym : null;
  return stateSymbol;
}

/** Fetch Headers to the contract's header list; Set-Cookie keeps one value per cookie. */
export function toHeaderList(headers: Headers): HTTPHeader[] {
  const list: HTTPHeader[] = [];
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') list.push({ name, values: [value] });
  });
  const cookies = headers.getSetCookie();
  if (cookies.length) list.push({ name: 'set-cookie', values: cookies });
  return list;
}

/** The contract's header list to Fetch Headers, repeated values appended in order. */
export function fromHeaderList(list: readonly HTTPHeader__Output[]): Headers {
  const headers = new Headers();
  for (const h of list) {
    for (const v of h.values) {
      try {
        headers.append(h.name, v);
      } catch {
        // A header name or value Fetch refuses is dropped rather than failing the whole request.
      }
    }
  }
  return headers;
}
