/**
 * The host side of ServeHTTPStream: many HTTP exchanges with one plugin over
 * one long-lived stream, in frames tagged by exchange id and batched per turn
 * of the event loop (frame-batch.ts). Each exchange has its own credit both
 * ways (exchange-credit.ts): the plugin sends response bytes only against what
 * the host granted, and the host grants only as the client takes them, so a
 * slow client holds up its own exchange and nothing else. The stream is opened
 * on the first exchange and again after it broke; a stream that breaks fails
 * every exchange on it at once.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HTTPRequestFrame } from '../gen/plughost/v1/HTTPRequestFrame';
import type { HTTPRequestHead } from '../gen/plughost/v1/HTTPRequestHead';
import type { HTTPResponseFrame__Output } from '../gen/plughost/v1/HTTPResponseFrame';
import type { HTTPStreamRequest } from '../gen/plughost/v1/HTTPStreamRequest';
import type { HTTPStreamResponse__Output } from '../gen/plughost/v1/HTTPStreamResponse';
import { CreditGate, CreditWindow } from './exchange-credit';
import { FrameBatcher, headerBytes } from './frame-batch';
import type { ExchangeReceiver, PluginHttpExchange } from './http-exchange';
import { bodyPartBytes } from './limits';

export type ServeHttpStreamCall = grpc.ClientDuplexStream<HTTPStreamRequest, HTTPStreamResponse__Output>;

/** Exchange ids are uint32 and never reused on a stream: past this, a fresh stream takes over. */
const MAX_EXCHANGE_ID = 0xffff_ffff;

export interface HttpExchangeStreamOptions {
  /** Opens a ServeHTTPStream call to the plugin. */
  open: () => ServeHttpStreamCall;
  /** Response bytes the host lets each exchange have unread or in flight (the flow-control window). */
  windowBytes: number;
  /** The connection's gRPC message limit: batches and body parts stay well under it. */
  maxMessageBytes: number;
  /** A stream broke (the plugin ended it, or the connection failed); `message` says how. */
  onBroken?: (message: string) => void;
}

/** Every ServeHTTPStream exchange with one plugin process. */
export class HttpExchangeStream {
  private current: StreamCall | undefined;
  /** Streams that ran out of exchange ids: they serve their exchanges to the end, then half-close. */
  private readonly retiring = new Set<StreamCall>();
  private closed = false;

  constructor(private readonly options: HttpExchangeStreamOptions) {}

  /** Starts an exchange; `closed` runs once when it is over, however it ends. */
  open(receiver: ExchangeReceiver, closed: (exchange: PluginHttpExchange) => void): PluginHttpExchange {
    if (this.current?.exhausted) {
      this.retiring.add(this.current);
      this.current.endWhenIdle();
      this.current = undefined;
    }
    this.current ??= new StreamCall(this.options, (call, message) => this.forget(call, message));
    return this.current.exchange(receiver, closed);
  }

  /** Exchanges in progress, on every stream. */
  get active(): number {
    let n = this.current?.size ?? 0;
    for (const call of this.retiring) n += call.size;
    return n;
  }

  /** Half-closes the streams once their exchanges are over (the plugin is stopping). */
  end(): void {
    this.current?.endWhenIdle();
    for (const call of this.retiring) call.endWhenIdle();
  }

  /** Cancels the streams; exchanges in progress fail with `why`. */
  close(why: string): void {
    this.closed = true;
    this.current?.cancel(why);
    for (const call of this.retiring) call.cancel(why);
    this.current = undefined;
    this.retiring.clear();
  }

  private forget(call: StreamCall, message: string | null): void {
    if (this.current === call) this.current = undefined;
    this.retiring.delete(call);
    if (message !== null && !this.closed) this.options.onBroken?.(message);
  }
}

/** One ServeHTTPStream call and the exchanges on it. */
class StreamCall {
  readonly exchanges = new Map<number, StreamExchange>();
  readonly batcher: FrameBatcher<HTTPRequestFrame>;
  readonly partBytes: number;
  readonly windowBytes: number;
  private readonly call: ServeHttpStreamCall;
  private nextId = 1;
  private over = false;
  private endingWhenIdle = false;

  constructor(
    options: HttpExchangeStreamOptions,
    private readonly gone: (call: StreamCall, message: string | null) => void,
  ) {
    this.partBytes = bodyPartBytes(options.maxMessageBytes);
    this.windowBytes = options.windowBytes;
    this.call = options.open();
    this.batcher = new FrameBatcher(this.call, this.partBytes, requestFrameBytes);
    this.call.on('data', (batch: HTTPStreamResponse__Output) => {
      for (const frame of batch.frames) this.exchanges.get(frame.exchange_id)?.frame(frame);
    });
    this.call.on('end', () => this.broken(this.endingWhenIdle && this.exchanges.size === 0 ? null : 'the plugin ended ServeHTTPStream'));
    this.call.on('error', (err: grpc.ServiceError) => this.broken(`ServeHTTPStream failed: ${err.details || err.message}`));
  }

  get size(): number {
    return this.exchanges.size;
  }

  get exhausted(): boolean {
    return this.nextId > MAX_EXCHANGE_ID;
  }

  exchange(receiver: ExchangeReceiver, closed: (exchange: PluginHttpExchange) => void): StreamExchange {
    const exchange = new StreamExchange(this, this.nextId++, receiver, closed);
    this.exchanges.set(exchange.id, exchange);
    return exchange;
  }

  /** An exchange is over: its id leaves the table, and a stream waiting to end may end. */
  release(id: number): void {
    this.exchanges.delete(id);
    if (this.endingWhenIdle && this.exchanges.size === 0) this.batcher.end();
  }

  endWhenIdle(): void {
    this.endingWhenIdle = true;
    if (this.exchanges.size === 0) this.batcher.end();
  }

  cancel(why: string): void {
    this.broken(why);
    this.call.cancel();
  }

  /** The call is over: every exchange on it fails with `message` (null when it ended as asked). */
  private broken(message: string | null): void {
    if (this.over) return;
    this.over = true;
    this.batcher.stop();
    const exchanges = [...this.exchanges.values()];
    this.exchanges.clear();
    for (const exchange of exchanges) exchange.broken(message ?? 'the plugin ended ServeHTTPStream');
    this.gone(this, message);
  }
}

/** One exchange on a StreamCall: request frames out against the plugin's credit, response frames in against ours. */
class StreamExchange implements PluginHttpExchange {
  private readonly sendCredit = new CreditGate();
  private readonly receiveCredit: CreditWindow;
  /** Request body waiting for credit. */
  private queued: Buffer[] = [];
  private endQueued = false;
  private drainListener: (() => void) | undefined;
  private started = false;
  private over = false;
  private held = false;
  private heldBytes = 0;

  constructor(
    private readonly stream: StreamCall,
    readonly id: number,
    private readonly receiver: ExchangeReceiver,
    private readonly closed: (exchange: PluginHttpExchange) => void,
  ) {
    this.receiveCredit = new CreditWindow(stream.windowBytes);
  }

  start(head: HTTPRequestHead, body: Buffer | undefined, end: boolean): boolean {
    // The first grant rides on the head, so a response may use the whole window at once.
    const frame: HTTPRequestFrame = { exchange_id: this.id, head, credit: this.receiveCredit.grant() };
    if (body && body.length > 0) {
      const n = Math.min(body.length, this.sendCredit.bytes, this.stream.partBytes);
      frame.body = n === body.length ? body : body.subarray(0, n);
      this.sendCredit.spend(n);
      if (n < body.length) this.queued.push(body.subarray(n));
    }
    if (end && this.queued.length === 0) frame.end = true;
    else if (end) this.endQueued = true;
    this.stream.batcher.push(frame);
    return this.queued.length === 0;
  }

  write(chunk: Buffer): boolean {
    if (this.over) return true;
    this.queued.push(chunk);
    this.pump();
    return this.queued.length === 0;
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  end(): void {
    if (this.over) return;
    if (this.queued.length === 0) this.stream.batcher.push({ exchange_id: this.id, end: true });
    else this.endQueued = true;
  }

  cancel(): void {
    if (this.over) return;
    this.stream.batcher.push({ exchange_id: this.id, cancel: true });
    this.finish();
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    const bytes = this.heldBytes;
    this.heldBytes = 0;
    if (bytes > 0 && !this.over) this.grant(this.receiveCredit.consumed(bytes));
  }

  /** A frame from the plugin for this exchange. */
  frame(frame: HTTPResponseFrame__Output): void {
    if (frame.credit > 0) {
      this.sendCredit.grant(frame.credit);
      this.pump();
    }
    if (frame.cancel) return this.fail(frame.error || 'the plugin cancelled the exchange');
    if (frame.head && !this.started) {
      this.started = true;
      this.receiver.head(frame.head);
    }
    const bytes = frame.body.length;
    if (bytes > 0) {
      if (!this.started) return this.refuse({ kind: 'headless' });
      if (!this.receiveCredit.received(bytes)) return this.refuse({ kind: 'error', message: 'the plugin sent more response body than the host granted' });
      this.receiver.body(frame.body);
      if (this.over) return;
      if (this.held) this.heldBytes += bytes;
      else this.grant(this.receiveCredit.consumed(bytes));
    }
    if (frame.end) {
      if (!this.started) return this.refuse({ kind: 'ended-headless' });
      this.finish();
      this.receiver.end();
    }
  }

  /** The stream under this exchange is gone. */
  broken(message: string): void {
    if (this.over) return;
    this.over = true;
    this.sendCredit.close();
    this.receiver.fail({ kind: 'error', message });
    this.closed(this);
  }

  /** Sends queued request body as far as the plugin's credit goes; then the end, and 'drain'. */
  private pump(): void {
    while (this.queued.length > 0 && this.sendCredit.bytes > 0 && !this.over) {
      const chunk = this.queued[0];
      const n = Math.min(chunk.length, this.sendCredit.bytes, this.stream.partBytes);
      this.stream.batcher.push({ exchange_id: this.id, body: n === chunk.length ? chunk : chunk.subarray(0, n) });
      this.sendCredit.spend(n);
      if (n === chunk.length) this.queued.shift();
      else this.queued[0] = chunk.subarray(n);
    }
    if (this.queued.length > 0 || this.over) return;
    if (this.endQueued) {
      this.endQueued = false;
      this.stream.batcher.push({ exchange_id: this.id, end: true });
    }
    const listener = this.drainListener;
    this.drainListener = undefined;
    listener?.();
  }

  private grant(credit: number): void {
    if (credit > 0) this.stream.batcher.push({ exchange_id: this.id, credit });
  }

  /** The plugin broke a rule of the stream: it is told to stop, and the client gets the failure. */
  private refuse(failure: Parameters<ExchangeReceiver['fail']>[0]): void {
    this.stream.batcher.push({ exchange_id: this.id, cancel: true });
    this.finish();
    this.receiver.fail(failure);
  }

  private fail(message: string): void {
    this.finish();
    this.receiver.fail({ kind: 'error', message });
  }

  /** The exchange is over: its id is released and nothing more reaches the receiver. */
  private finish(): void {
    this.over = true;
    this.queued = [];
    this.sendCredit.close();
    this.stream.release(this.id);
    this.closed(this);
  }
}

/** A request frame's size for batching. */
function requestFrameBytes(frame: HTTPRequestFrame): number {
  const head = frame.head;
  const body = frame.body?.length ?? 0;
  return head ? 16 + body + (head.path?.length ?? 0) + (head.query?.length ?? 0) + headerBytes(head.headers as { name: string; values: string[] }[]) : 16 + body;
}
