/**
 * Fetch API bodies over ServeHTTP's gRPC streams, both directions. Bodies are
 * web ReadableStreams fed from the gRPC stream with backpressure (the gRPC
 * side is paused while the reader is behind), and written back in chunks of
 * at most 64 KiB, each flushed so server-sent events reach the client at once.
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
export function writePart<T>(sink: PartSink<T>, part: T): Promise<void> {
  if (sink.write(part)) return Promise.resolve();
  return new Promise((resolve) => sink.once('drain', resolve));
}

/**
 * Reads `body` to its end and hands it to `send` in chunks of at most 64 KiB.
 * Stops (cancelling the body) as soon as `stopped()` turns true.
 */
export async function pumpBody(body: ReadableStream<Uint8Array>, send: (chunk: Buffer) => Promise<void>, stopped: () => boolean): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (stopped()) {
        await reader.cancel();
        return;
      }
      for (let at = 0; at < value.byteLength; at += MAX_BODY_CHUNK) {
        await send(Buffer.from(value.buffer, value.byteOffset + at, Math.min(MAX_BODY_CHUNK, value.byteLength - at)));
      }
    }
  } finally {
    reader.releaseLock();
  }
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
