/**
 * The plugin side of ServeHTTPStream: the host's frames are routed to one
 * PluginExchange per exchange id, and every exchange's response frames go
 * back batched per turn of the event loop. Each exchange keeps its own credit
 * both ways: the request body arrives only as fast as the handler reads it
 * (credit is granted as it takes bytes), and the response body leaves only as
 * fast as the host's credit allows, so one slow client or handler never holds
 * up another exchange. When the host half-closes the stream, the exchanges in
 * progress finish and the stream ends; when it cancels it, they are cancelled.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HTTPRequestFrame__Output } from '../src/gen/plughost/v1/HTTPRequestFrame';
import type { HTTPResponseFrame } from '../src/gen/plughost/v1/HTTPResponseFrame';
import type { HTTPResponseHead } from '../src/gen/plughost/v1/HTTPResponseHead';
import type { HTTPStreamRequest__Output } from '../src/gen/plughost/v1/HTTPStreamRequest';
import type { HTTPStreamResponse } from '../src/gen/plughost/v1/HTTPStreamResponse';
import { CreditGate, CreditWindow } from '../src/protocol/exchange-credit';
import { FrameBatcher, headerBytes } from '../src/protocol/frame-batch';
import { bodyPartBytes } from '../src/protocol/limits';
import { ChannelListener, ChannelReader, ChannelWriter, SIDE_CHANNEL_CONNECT_TIMEOUT_MS, channelCount, channelPath } from '../src/protocol/side-channel';
import { type HttpHandler, PluginExchange, type ResponseSink } from './http-exchange';
import type { BodyFeed } from './http-stream';

type StreamCall = grpc.ServerDuplexStream<HTTPStreamRequest__Output, HTTPStreamResponse>;

export interface HttpStreamOptions {
  /** Request body bytes each exchange may have unread or in flight (PLUGHOST_FLOW_CONTROL_WINDOW_BYTES). */
  windowBytes: number;
  /** The connection's gRPC message limit (PLUGHOST_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
  /** The host's socket folder for side channels (PLUGIN_UNIX_SOCKET_DIR); null: none, bodies stay on the stream. */
  socketDir: string | null;
}

/** Serves every exchange the host sends on `call`. */
export function serveHttpStream(call: StreamCall, handler: HttpHandler, options: HttpStreamOptions): void {
  new ExchangeTable(call, handler, options);
}

class ExchangeTable {
  readonly batcher: FrameBatcher<HTTPResponseFrame>;
  readonly partBytes: number;
  readonly socketDir: string | null;
  private readonly exchanges = new Map<number, ServedExchange>();
  private halfClosed = false;

  constructor(
    call: StreamCall,
    private readonly handler: HttpHandler,
    private readonly options: HttpStreamOptions,
  ) {
    this.partBytes = bodyPartBytes(options.maxMessageBytes);
    this.socketDir = options.socketDir;
    this.batcher = new FrameBatcher(call, this.partBytes, responseFrameBytes);
    call.on('data', (batch: HTTPStreamRequest__Output) => {
      for (const frame of batch.frames) this.frame(frame);
    });
    call.on('end', () => {
      this.halfClosed = true;
      if (this.exchanges.size === 0) this.batcher.end();
    });
    call.on('cancelled', () => this.cancelAll('the host cancelled ServeHTTPStream'));
    call.on('error', () => this.cancelAll('ServeHTTPStream failed'));
  }

  /** An exchange is over: its id is forgotten (later frames for it are dropped). */
  release(id: number): void {
    this.exchanges.delete(id);
    if (this.halfClosed && this.exchanges.size === 0) this.batcher.end();
  }

  private frame(frame: HTTPRequestFrame__Output): void {
    const id = frame.exchange_id;
    let exchange = this.exchanges.get(id);
    if (frame.head && !exchange) {
      exchange = new ServedExchange(this, id, frame, this.handler, this.options.windowBytes);
      this.exchanges.set(id, exchange);
      exchange.start(frame);
    } else {
      exchange?.frame(frame);
    }
  }

  private cancelAll(why: string): void {
    this.batcher.stop();
    const exchanges = [...this.exchanges.values()];
    this.exchanges.clear();
    for (const exchange of exchanges) exchange.cancel(why);
  }
}

/** One exchange: request frames in against our credit, response frames out against the host's. */
class ServedExchange implements ResponseSink, BodyFeed {
  readonly partBytes: number;
  /** From the host's head: a response body this large may go over a side channel (0: not on this exchange). */
  readonly channelMinBytes: number;
  private readonly exchange: PluginExchange;
  private readonly sendCredit = new CreditGate();
  private readonly receiveCredit: CreditWindow;
  private over = false;
  /** The request body's side channel, while it is read. */
  private requestChannel: ChannelReader | undefined;
  /** The response body's side channel, from the head until the body is written. */
  private responseChannel: ChannelListener | undefined;

  constructor(
    private readonly table: ExchangeTable,
    private readonly id: number,
    first: HTTPRequestFrame__Output,
    handler: HttpHandler,
    windowBytes: number,
  ) {
    this.partBytes = table.partBytes;
    this.channelMinBytes = table.socketDir ? first.response_channel_min_bytes : 0;
    this.receiveCredit = new CreditWindow(windowBytes);
    this.exchange = new PluginExchange(first.head!, this, windowBytes, this, handler);
  }

  /** The head frame: the first grant for a body that follows goes out with the next batch, and the handler runs. */
  start(first: HTTPRequestFrame__Output): void {
    if (first.body_channel && this.table.socketDir) this.readBody(this.table.socketDir, first.body_channel);
    else if (!first.end) this.grant(this.receiveCredit.grant());
    this.frame(first);
    void this.exchange.run();
  }

  frame(frame: HTTPRequestFrame__Output): void {
    if (frame.credit > 0) this.sendCredit.grant(frame.credit);
    if (frame.cancel) return this.cancel('the client went away');
    const bytes = frame.body.length;
    if (this.requestChannel) {
      if (bytes > 0) {
        this.abort('the host sent body frames for a request on a side channel');
        return this.exchange.cancel('the host broke the rules of side channels');
      }
      if (frame.end) this.requestChannel.expect(channelCount(frame.body_channel_bytes));
      return;
    }
    if (bytes > 0) {
      if (!this.receiveCredit.received(bytes)) {
        this.abort('the host sent more request body than the plugin granted');
        return this.exchange.cancel('the host broke the flow control of ServeHTTPStream');
      }
      // A GET or HEAD has no body stream: bytes it carries anyway are dropped, and granted again.
      if (this.exchange.body) this.exchange.body.push(frame.body);
      else this.taken(bytes);
    }
    if (frame.end) this.exchange.body?.end();
  }

  cancel(why: string): void {
    this.finish();
    this.exchange.cancel(why);
  }

  // ---- BodyFeed: the handler's reads grant credit again ----

  taken(bytes: number): void {
    if (this.requestChannel) return this.requestChannel.resume();
    if (!this.over && bytes > 0) this.grant(this.receiveCredit.consumed(bytes));
  }

  full(): void {
    // On the stream nothing needs pausing (the host cannot send beyond the credit the queue holds); a side channel's socket does.
    this.requestChannel?.pause();
  }

  // ---- ResponseSink ----

  head(head: HTTPResponseHead, body: Buffer | undefined, end: boolean): Promise<void> | undefined {
    if (this.over) return undefined;
    const frame: HTTPResponseFrame = { exchange_id: this.id, head };
    if (body && body.length > 0) {
      const n = this.take(body.length);
      frame.body = n === body.length ? body : body.subarray(0, n);
      if (n < body.length) {
        this.table.batcher.push(frame);
        return this.rest(body.subarray(n), end);
      }
    }
    if (end) frame.end = true;
    this.table.batcher.push(frame);
    if (end) this.finish();
    return undefined;
  }

  body(chunk: Buffer): Promise<void> | undefined {
    while (chunk.length > 0 && !this.over) {
      const n = this.take(chunk.length);
      if (n === 0) return this.rest(chunk, false);
      this.table.batcher.push({ exchange_id: this.id, body: n === chunk.length ? chunk : chunk.subarray(0, n) });
      chunk = chunk.subarray(n);
    }
    return undefined;
  }

  end(): void {
    if (this.over) return;
    this.table.batcher.push({ exchange_id: this.id, end: true });
    this.finish();
  }

  abort(message: string): void {
    if (this.over) return;
    this.table.batcher.push({ exchange_id: this.id, cancel: true, error: message });
    this.finish();
  }

  headOverChannel(head: HTTPResponseHead): Promise<ChannelWriter> {
    return new Promise((resolve, reject) => {
      if (this.over) return reject(new Error('the exchange is over'));
      const channel = new ChannelListener(this.table.socketDir!, SIDE_CHANNEL_CONNECT_TIMEOUT_MS, (socket) => resolve(new ChannelWriter(socket)), reject);
      this.responseChannel = channel;
      this.table.batcher.push({ exchange_id: this.id, head, body_channel: channel.name });
    });
  }

  endChannel(writer: ChannelWriter): void {
    if (this.over) return;
    // The socket flushes and closes on its own: finish() must not destroy it.
    this.responseChannel = undefined;
    this.table.batcher.push({ exchange_id: this.id, end: true, body_channel_bytes: writer.end() });
    this.finish();
  }

  /** The host named a side channel for the request body: it comes from there, held back by the socket's own window. */
  private readBody(dir: string, name: string): void {
    const socketPath = channelPath(dir, name);
    if (!socketPath) {
      this.abort(`the host named a side channel that is not a plain socket name: ${JSON.stringify(name.slice(0, 64))}`);
      return this.exchange.cancel('the host broke the rules of side channels');
    }
    this.requestChannel = new ChannelReader(
      socketPath,
      (chunk) => this.exchange.body?.push(chunk),
      (err) => {
        if (!err) return this.exchange.body?.end();
        // A truncated body ends the exchange: the host closes the channel when the client goes away
        // (its cancel frame may come after), so the handler sees the abort and its read fails now.
        this.abort(`the request body's side channel failed: ${err.message}`);
        this.exchange.cancel(err.message);
      },
    );
  }

  /** Sends `chunk` as the host's credit comes in; ends the exchange after when `end`. */
  private async rest(chunk: Buffer, end: boolean): Promise<void> {
    while (chunk.length > 0) {
      await this.sendCredit.whenAvailable();
      if (this.over) return;
      const n = this.take(chunk.length);
      this.table.batcher.push({ exchange_id: this.id, body: n === chunk.length ? chunk : chunk.subarray(0, n) });
      chunk = chunk.subarray(n);
    }
    if (end) this.end();
  }

  /** Spends credit for up to `wanted` bytes (one part at most); returns how many may go. */
  private take(wanted: number): number {
    const n = Math.min(wanted, this.sendCredit.bytes, this.partBytes);
    this.sendCredit.spend(n);
    return n;
  }

  private grant(credit: number): void {
    if (credit > 0) this.table.batcher.push({ exchange_id: this.id, credit });
  }

  private finish(): void {
    if (this.over) return;
    this.over = true;
    this.sendCredit.close();
    this.requestChannel?.destroy();
    this.responseChannel?.close();
    this.table.release(this.id);
  }
}

/** A response frame's size for batching. */
function responseFrameBytes(frame: HTTPResponseFrame): number {
  return 16 + (frame.body?.length ?? 0) + (frame.head ? headerBytes(frame.head.headers as { name: string; values: string[] }[]) : 0);
}
