/**
 * One HTTP exchange on the plugin side, whatever carries it (a ServeHTTP
 * stream of its own, serve-http.ts, or a share of ServeHTTPStream,
 * serve-http-stream.ts): the request head becomes the Request the author's
 * serveHTTP receives (lazy-request.ts), its body a web stream the transport
 * feeds, and the Response goes back through a ResponseSink. The head waits
 * for a streamed body's first chunk only when it is ready at once, so a small
 * response leaves in one part and server-sent events are not held back.
 */
import type { HTTPRequestHead__Output } from '../src/gen/plughost/v1/HTTPRequestHead';
import type { HTTPResponseHead } from '../src/gen/plughost/v1/HTTPResponseHead';
import type { ChannelWriter } from '../src/protocol/side-channel';
import { type BodyFeed, StreamedBody, knownBodyLength, pumpReader, toHeaderList, wholeBody } from './http-stream';
import { type RequestHandle, requestFor } from './lazy-request';

/** How a response leaves the plugin; each method splits bodies as its transport needs. */
export interface ResponseSink {
  /** The largest body part this sink sends. */
  readonly partBytes: number;
  /** The head, with the first body bytes when they are at hand; `end` when nothing follows. A promise means: wait before the next call. */
  head(head: HTTPResponseHead, body: Buffer | undefined, end: boolean): Promise<void> | undefined;
  body(chunk: Buffer): Promise<void> | undefined;
  end(): void;
  /** The response cannot be completed (its body failed): the host answers 502 or cuts the connection. */
  abort(message: string): void;
  /** A body known to be at least this large goes over a side channel (headOverChannel); absent or 0: never. */
  readonly channelMinBytes?: number;
  /** Sends the head naming a side channel; resolves once the host connected to it, rejects when it did not in time. */
  headOverChannel?(head: HTTPResponseHead): Promise<ChannelWriter>;
  /** The body went over the side channel whole: the socket is half-closed and the end carries its count. */
  endChannel?(writer: ChannelWriter): void;
}

/** The author's side of an exchange. */
export interface HttpHandler {
  /** Runs serveHTTP; a throw becomes a 500. */
  handle(request: Request, head: HTTPRequestHead__Output): Promise<Response>;
  onError(err: Error): void;
  /** Waits for the logs the handler wrote, so they reach the host before the response does. */
  settle(): Promise<void>;
}

const INTERNAL_ERROR_HEADERS = { 'content-type': 'text/plain; charset=utf-8' };

export class PluginExchange {
  /** The request body as the transport feeds it; null for GET and HEAD, which never build a web stream. */
  readonly body: StreamedBody | null;
  private readonly request: RequestHandle;
  private cancelled = false;

  constructor(
    private readonly head: HTTPRequestHead__Output,
    feed: BodyFeed,
    highWaterBytes: number,
    private readonly sink: ResponseSink,
    private readonly handler: HttpHandler,
  ) {
    const method = head.method || 'GET';
    this.body = method !== 'GET' && method !== 'HEAD' ? new StreamedBody(feed, highWaterBytes) : null;
    this.request = requestFor(head, this.body ? this.body.stream : null);
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** The client went away: the handler's signal aborts, its body read fails, and nothing more is sent. */
  cancel(why: string): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const err = new Error(why);
    this.request.abort(err);
    this.body?.fail(err);
  }

  /** Runs the handler and sends its response; never rejects. */
  async run(): Promise<void> {
    let response: Response;
    try {
      response = await this.handler.handle(this.request.request, this.head);
    } catch (err) {
      this.handler.onError(err as Error);
      response = new Response('internal error in plugin', { status: 500, headers: INTERNAL_ERROR_HEADERS });
    }
    await this.handler.settle();
    if (this.cancelled) return void (await response.body?.cancel().catch(() => undefined));
    const head: HTTPResponseHead = { status: response.status, headers: toHeaderList(response.headers) };
    if (!response.body) return void this.sink.head(head, undefined, true);
    // A string or bytes body: head and body in as few parts as the sink allows, no web stream.
    const whole = wholeBody(response);
    const channelMin = this.sink.channelMinBytes ?? 0;
    if (channelMin > 0) {
      const length = knownBodyLength(response, whole);
      if (length >= channelMin) {
        // The length is known: the client gets it, as it would from a body sent in one part.
        if (!response.headers.has('content-length')) head.headers!.push({ name: 'content-length', values: [String(length)] });
        return this.overChannel(head, response.body, whole);
      }
    }
    if (whole) {
      await this.sink.head(head, Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength), true);
      return;
    }
    await this.stream(head, response.body.getReader());
  }

  /** A streamed body: its first chunk goes with the head when it is ready at once; otherwise the head goes alone now. */
  private async stream(head: HTTPResponseHead, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const sink = this.sink;
    let headSent = false;
    try {
      const read = reader.read();
      let first = await Promise.race([read, nextTurn()]);
      headSent = true;
      if (first === undefined) {
        await sink.head(head, undefined, false);
        first = await read;
      } else if (first.done) {
        sink.head(head, undefined, true);
        return reader.releaseLock();
      } else {
        const v = first.value;
        await sink.head(head, Buffer.from(v.buffer, v.byteOffset, v.byteLength), false);
        first = undefined;
      }
      await pumpReader(reader, (chunk) => sink.body(chunk), () => this.cancelled, sink.partBytes, first);
    } catch (err) {
      this.handler.onError(err as Error);
      reader.releaseLock();
      if (!this.cancelled) sink.abort(`the response body of ${this.head.path} failed${headSent ? ' after the head' : ''}: ${(err as Error).message}`);
      return;
    }
    if (!this.cancelled) sink.end();
  }

  /** A large body: the head names a side channel, and the body goes over it as raw bytes once the host connected. */
  private async overChannel(head: HTTPResponseHead, body: ReadableStream<Uint8Array>, whole: Uint8Array | null): Promise<void> {
    const sink = this.sink;
    let writer: ChannelWriter | undefined;
    try {
      writer = await sink.headOverChannel!(head);
      if (whole) await writer.write(whole);
      else await pumpReader(body.getReader(), (chunk) => writer!.write(chunk), () => this.cancelled, WHOLE_CHUNKS);
    } catch (err) {
      await body.cancel().catch(() => undefined);
      if (this.cancelled) return;
      // The host closes the channel when the client goes away, and its cancel frame may come after
      // this: the exchange is over either way, so the handler sees the abort now and the host is told.
      const why = `the response body of ${this.head.path} over a side channel failed${writer ? ` after ${writer.written} bytes` : ''}: ${(err as Error).message}`;
      this.cancel(why);
      sink.abort(why);
      return;
    }
    if (!this.cancelled) sink.endChannel!(writer);
  }
}

/** Socket writes need no splitting: the whole chunk at once. */
const WHOLE_CHUNKS = Number.MAX_SAFE_INTEGER;

function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(resolve, undefined));
}
