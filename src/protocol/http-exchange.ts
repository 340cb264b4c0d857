/**
 * One HTTP exchange with a plugin, as the host's HTTP front sees it, whatever
 * carries it: a ServeHTTP stream of its own (every plugin that serves HTTP
 * offers that) or a share of the plugin's ServeHTTPStream (see
 * http-exchange-stream.ts). The front sends the request through a
 * PluginHttpExchange and hears the response through an ExchangeReceiver.
 */
import type { Readable } from 'node:stream';
import type * as grpc from '@grpc/grpc-js';
import type { HTTPRequestHead } from '../gen/plughost/v1/HTTPRequestHead';
import type { HTTPRequestPart } from '../gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponseHead__Output } from '../gen/plughost/v1/HTTPResponseHead';
import type { HTTPResponsePart__Output } from '../gen/plughost/v1/HTTPResponsePart';

/** ServeHTTP's largest request body part: the contract promises plugins at most 64 KiB. */
export const SERVE_HTTP_PART_BYTES = 64 * 1024;

/** Why an exchange failed, for the error its client gets when nothing was sent yet. */
export type ExchangeFailure =
  /** The plugin's first response part (or frame) had no head. */
  | { kind: 'headless' }
  /** The plugin ended its response before sending a head. */
  | { kind: 'ended-headless' }
  /** The stream failed, or the plugin gave up on the exchange; `message` says how. */
  | { kind: 'error'; message: string };

/** What the host's HTTP front does with the plugin's response. Exactly one of end() and fail() comes last. */
export interface ExchangeReceiver {
  head(head: HTTPResponseHead__Output): void;
  body(chunk: Buffer): void;
  end(): void;
  fail(failure: ExchangeFailure): void;
}

/** The request side of one exchange, and the response side's flow control. */
export interface PluginHttpExchange {
  /** Sends the head, with the body bytes already at hand; `end` when no more body follows. False as write(). */
  start(head: HTTPRequestHead, body: Buffer | undefined, end: boolean): boolean;
  /** Sends request body bytes; false when the caller should wait for onDrain before writing more. */
  write(chunk: Buffer): boolean;
  onDrain(listener: () => void): void;
  /** The request body is complete. */
  end(): void;
  /** The client went away (or the host gives up): the plugin is told, and nothing more reaches the receiver. */
  cancel(): void;
  /**
   * Request bodies from this many bytes may go over a side channel (startWithBodyChannel);
   * 0 when this exchange has none (per-request ServeHTTP, the option off, a plugin without it).
   */
  readonly bodyChannelMinBytes: number;
  /**
   * Sends the head naming a side channel, then `body` over it as raw bytes once the plugin
   * connected, and the end with the byte count. Only when bodyChannelMinBytes > 0.
   */
  startWithBodyChannel(head: HTTPRequestHead, body: Readable): void;
  /** The receiver cannot take response bytes now: the plugin is held back until release(). */
  hold(): void;
  release(): void;
}

type ServeHttpCall = grpc.ClientDuplexStream<HTTPRequestPart, HTTPResponsePart__Output>;

/** An exchange over a ServeHTTP stream of its own, opened by the caller; `closed` runs once when the call is over. */
export class ServeHttpCallExchange implements PluginHttpExchange {
  readonly bodyChannelMinBytes = 0;
  private started = false;
  private over = false;

  constructor(
    private readonly call: ServeHttpCall,
    private readonly receiver: ExchangeReceiver,
    closed: (exchange: ServeHttpCallExchange) => void,
  ) {
    call.on('data', (part: HTTPResponsePart__Output) => this.part(part));
    call.on('end', () => this.finish(this.started ? null : { kind: 'ended-headless' }));
    call.on('error', (err: grpc.ServiceError) => this.finish({ kind: 'error', message: err.details || err.message }));
    // grpc-js emits 'status' once per call, however it ends.
    call.on('status', () => closed(this));
  }

  start(head: HTTPRequestHead, body: Buffer | undefined, end: boolean): boolean {
    let ok: boolean;
    if (body === undefined || body.length <= SERVE_HTTP_PART_BYTES) ok = this.call.write({ head, body });
    else {
      this.call.write({ head });
      ok = this.write(body);
    }
    if (end) this.call.end();
    return ok;
  }

  startWithBodyChannel(): void {
    throw new Error('ServeHTTP has no side channel');
  }

  write(chunk: Buffer): boolean {
    let ok = true;
    for (let at = 0; at < chunk.length; at += SERVE_HTTP_PART_BYTES) {
      ok = this.call.write({ body: at === 0 && chunk.length <= SERVE_HTTP_PART_BYTES ? chunk : chunk.subarray(at, at + SERVE_HTTP_PART_BYTES) });
    }
    return ok;
  }

  onDrain(listener: () => void): void {
    this.call.once('drain', listener);
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.over = true;
    this.call.cancel();
  }

  hold(): void {
    this.call.pause();
  }

  release(): void {
    this.call.resume();
  }

  private part(part: HTTPResponsePart__Output): void {
    if (this.over) return;
    if (!this.started) {
      if (!part.head) {
        // The contract requires the head in the first part: without it there is no status to send.
        this.finish({ kind: 'headless' });
        this.call.cancel();
        return;
      }
      this.started = true;
      this.receiver.head(part.head);
    }
    if (part.body.length > 0) this.receiver.body(part.body);
  }

  private finish(failure: ExchangeFailure | null): void {
    if (this.over) return;
    this.over = true;
    if (failure) this.receiver.fail(failure);
    else this.receiver.end();
  }
}
