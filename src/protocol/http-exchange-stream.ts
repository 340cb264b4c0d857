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
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
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
import { ChannelListener, ChannelReader, SIDE_CHANNEL_CONNECT_TIMEOUT_MS, channelCount, channelPath } from './side-channel';

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
  /** Side channels for large bodies (side-channel.ts), when the plugin lists them and the host allows them. */
  sideChannel?: SideChannelOptions;
}

export interface SideChannelOptions {
  /** The plugin's private socket folder (PLUGIN_UNIX_SOCKET_DIR). */
  dir: string;
  /** Bodies from this size go over a side channel, both ways. */
  minBytes: number;
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
  readonly sideChannel: SideChannelOptions | undefined;
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
    this.sideChannel = options.sideChannel;
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
  /** The request body's side channel, while the host listens or sends on it. */
  private requestChannel: ChannelListener | undefined;
  /** The response body's side channel, while the host reads it. */
  private responseChannel: ChannelReader | undefined;

  constructor(
    private readonly stream: StreamCall,
    readonly id: number,
    private readonly receiver: ExchangeReceiver,
    private readonly closed: (exchange: PluginHttpExchange) => void,
  ) {
    this.receiveCredit = new CreditWindow(stream.windowBytes);
  }

  get bodyChannelMinBytes(): number {
    return this.stream.sideChannel?.minBytes ?? 0;
  }

  start(head: HTTPRequestHead, body: Buffer | undefined, end: boolean): boolean {
    const frame = this.headFrame(head);
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

  startWithBodyChannel(head: HTTPRequestHead, body: Readable): void {
    const frame = this.headFrame(head);
    const channel = new ChannelListener(
      this.stream.sideChannel!.dir,
      SIDE_CHANNEL_CONNECT_TIMEOUT_MS,
      (socket) => this.sendBody(body, socket),
      (err) => {
        if (this.over) return;
        this.stream.batcher.push({ exchange_id: this.id, cancel: true });
        this.fail(`the request body's side channel failed: ${err.message}`);
      },
    );
    this.requestChannel = channel;
    frame.body_channel = channel.name;
    this.stream.batcher.push(frame);
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
    this.responseChannel?.pause();
  }

  release(): void {
    this.held = false;
    if (this.responseChannel) return this.responseChannel.resume();
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
      if (frame.body_channel && this.stream.sideChannel && !this.over) return this.readBody(frame);
    }
    const bytes = frame.body.length;
    if (this.responseChannel) {
      if (bytes > 0) return this.refuse({ kind: 'error', message: 'the plugin sent body frames for a response on a side channel' });
      if (frame.end) this.responseChannel.expect(channelCount(frame.body_channel_bytes));
      return;
    }
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
      // A count for a side channel the host did not take: the body went where nobody read it.
      if (channelCount(frame.body_channel_bytes) > 0) return this.refuse({ kind: 'error', message: 'the plugin counted body bytes on a side channel the host did not offer' });
      this.finish();
      this.receiver.end();
    }
  }

  /** The stream under this exchange is gone. */
  broken(message: string): void {
    if (this.over) return;
    this.over = true;
    this.sendCredit.close();
    this.closeChannels();
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

  /** The head frame: the first grant rides on it, so a response may use the whole window at once. */
  private headFrame(head: HTTPRequestHead): HTTPRequestFrame {
    const frame: HTTPRequestFrame = { exchange_id: this.id, head, credit: this.receiveCredit.grant() };
    const minBytes = this.bodyChannelMinBytes;
    if (minBytes > 0) frame.response_channel_min_bytes = minBytes;
    return frame;
  }

  /** The plugin connected to the request body's side channel: the body goes over it, then the end with its count. */
  private sendBody(body: Readable, socket: Socket): void {
    let sent = 0;
    body.on('data', (chunk: Buffer) => {
      sent += chunk.length;
    });
    body.once('end', () => {
      if (!this.over) this.stream.batcher.push({ exchange_id: this.id, end: true, body_channel_bytes: sent });
    });
    socket.once('close', () => {
      // The exchange ended before the body did (an early answer, a cancel): drain the rest so the client's connection stays usable.
      if (body.readableEnded) return;
      body.unpipe(socket);
      body.resume();
    });
    socket.on('error', () => undefined);
    body.pipe(socket);
  }

  /** The response head named a side channel: its body comes from there, held back by the socket's own window. */
  private readBody(frame: HTTPResponseFrame__Output): void {
    const socketPath = channelPath(this.stream.sideChannel!.dir, frame.body_channel);
    if (!socketPath) return this.refuse({ kind: 'error', message: `the plugin named a side channel that is not a plain socket name: ${JSON.stringify(frame.body_channel.slice(0, 64))}` });
    const reader = new ChannelReader(
      socketPath,
      (chunk) => {
        if (!this.over) this.receiver.body(chunk);
      },
      (err) => {
        if (this.over) return;
        if (err) return this.refuse({ kind: 'error', message: err.message });
        this.finish();
        this.receiver.end();
      },
    );
    this.responseChannel = reader;
    if (this.held) reader.pause();
    if (frame.end) reader.expect(channelCount(frame.body_channel_bytes));
  }

  private closeChannels(): void {
    this.requestChannel?.close();
    this.responseChannel?.destroy();
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
    this.closeChannels();
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
