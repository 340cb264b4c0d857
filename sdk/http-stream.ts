/**
 * Fetch API bodies over ServeHTTP's gRPC streams, both directions. Bodies are
 * web ReadableStreams fed from the gRPC stream with backpressure (the gRPC
 * side is paused while the reader is behind), and written back in chunks of
 * at most 64 KiB, each flushed so server-sent events reach the client at once.
 * Bodies that are not streams (a string or bytes) skip the web stream entirely.
 */
import type { HTTPHeader, HTTPHeader__Output } from '../src/gen/plughost/v1/HTTPHeader';

/** The contract's largest body chunk per message. */
export const MAX_BODY_CHUNK = 64 * 1024;
/** Chunks buffered ahead of the reader before the gRPC stream is paused. */
const READ_AHEAD_CHUNKS = 8;
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

/** A ReadableStream that the gRPC side pushes chunks into, pausing the source when the reader lags. */
export class StreamedBody {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private done = false;

  constructor(private readonly source: PausableSource) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          source.resume();
        },
        cancel: () => {
          // The reader gave up: keep draining so the peer is never blocked, and drop what comes.
          this.done = true;
          source.resume();
        },
      },
      { highWaterMark: READ_AHEAD_CHUNKS },
    );
  }

  push(chunk: Uint8Array): void {
    if (this.done || chunk.length === 0) return;
    this.controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((this.controller.desiredSize ?? 1) <= 0) this.source.pause();
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
}

/** Writes one part, waiting for 'drain' when the stream's buffer is full. */
export function writePart<T>(sink: PartSink<T>, part: T): Promise<void> | undefined {
  if (sink.write(part)) return undefined;
  return new Promise((resolve) => sink.once('drain', resolve));
}

/**
 * Reads `body` to its end and hands it to `send` in chunks of at most 64 KiB.
 * Stops (cancelling the body) as soon as `stopped()` turns true. `send` may
 * return nothing when it needs no wait (the gRPC buffer had room).
 */
export function pumpBody(body: ReadableStream<Uint8Array>, send: (chunk: Buffer) => Promise<void> | undefined, stopped: () => boolean): Promise<void> {
  return pumpReader(body.getReader(), send, stopped);
}

/** pumpBody on a reader already taken, starting with `first` when a read was already made; releases the reader. */
export async function pumpReader(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  send: (chunk: Buffer) => Promise<void> | undefined,
  stopped: () => boolean,
  first?: { done: true; value?: undefined } | { done: false; value: Uint8Array },
): Promise<void> {
  try {
    for (;;) {
      const { done, value } = first ?? (await reader.read());
      first = undefined;
      if (done) return;
      if (stopped()) {
        await reader.cancel();
        return;
      }
      for (let at = 0; at < value.byteLength; at += MAX_BODY_CHUNK) {
        const wait = send(Buffer.from(value.buffer, value.byteOffset + at, Math.min(MAX_BODY_CHUNK, value.byteLength - at)));
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
