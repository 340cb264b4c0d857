/**
 * The plugin side of ServeHTTP, one stream per request: the first request
 * part's head starts a PluginExchange whose body streams from the call (paused
 * while the reader is behind); the response goes back as a head part, then
 * body parts of at most the part size, each flushed. A body that is not a
 * stream travels in the head part when it fits.
 */
import * as grpc from '@grpc/grpc-js';
import type { HTTPRequestPart__Output } from '../src/gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponseHead } from '../src/gen/plughost/v1/HTTPResponseHead';
import type { HTTPResponsePart } from '../src/gen/plughost/v1/HTTPResponsePart';
import { type HttpHandler, PluginExchange, type ResponseSink } from './http-exchange';
import { READ_AHEAD_BYTES, pausingFeed, writePart } from './http-stream';

type HttpCall = grpc.ServerDuplexStream<HTTPRequestPart__Output, HTTPResponsePart>;

/** Serves the request on `call`; response body parts are at most `partBytes`. */
export function serveHttpCall(call: HttpCall, handler: HttpHandler, partBytes: number): void {
  let exchange: PluginExchange | undefined;
  let refused = false;
  call.on('cancelled', () => exchange?.cancel('the client went away'));
  call.on('error', (err: Error) => exchange?.body?.fail(err));
  call.on('end', () => exchange?.body?.end());
  call.on('data', (part: HTTPRequestPart__Output) => {
    if (refused) return;
    if (!exchange) {
      if (!part.head) {
        refused = true;
        call.destroy(Object.assign(new Error('ServeHTTP: the first HTTPRequestPart has no head'), { code: grpc.status.INVALID_ARGUMENT }));
        return;
      }
      exchange = new PluginExchange(part.head, pausingFeed(call), READ_AHEAD_BYTES, new CallSink(call, partBytes), handler);
      void exchange.run();
    }
    if (exchange.body && part.body.length > 0) exchange.body.push(part.body);
  });
}

/** A response over the ServeHTTP call: parts written as the call's buffer allows. */
class CallSink implements ResponseSink {
  constructor(
    private readonly call: HttpCall,
    readonly partBytes: number,
  ) {}

  head(head: HTTPResponseHead, body: Buffer | undefined, end: boolean): Promise<void> | undefined {
    const first: HTTPResponsePart = { head };
    if (body && body.length > this.partBytes) {
      first.body = body.subarray(0, this.partBytes);
      return this.rest(writePart(this.call, first), body.subarray(this.partBytes), end);
    }
    if (body) first.body = body;
    if (!end) return writePart(this.call, first);
    this.call.write(first);
    this.call.end();
    return undefined;
  }

  body(chunk: Buffer): Promise<void> | undefined {
    if (chunk.length <= this.partBytes) return writePart(this.call, { body: chunk, flush: true });
    return this.rest(undefined, chunk, false);
  }

  end(): void {
    if (!this.call.cancelled) this.call.end();
  }

  abort(message: string): void {
    this.call.destroy(Object.assign(new Error(message), { code: grpc.status.INTERNAL }));
  }

  /** Writes `body` in parts after `wait`, stopping if the call is cancelled; ends the call after when `end`. */
  private async rest(wait: Promise<void> | undefined, body: Buffer, end: boolean): Promise<void> {
    for (let at = 0; at < body.length && !this.call.cancelled; at += this.partBytes) {
      if (wait) await wait;
      wait = writePart(this.call, { body: body.subarray(at, at + this.partBytes), flush: true });
    }
    if (wait) await wait;
    if (end) this.end();
  }
}
