/**
 * A plugin's HTTP response, relayed to the client's socket: the one owner of
 * coalescing, backpressure and cancellation on the host's side of an
 * exchange. The head and the body parts that arrive with it in one turn of
 * the event loop go out in one socket write (a response that ends in that turn
 * goes out whole, with a Content-Length); later parts are written as they
 * arrive, so server-sent events flush. While the socket pushes back the
 * exchange is held, and a client that goes away cancels it.
 */
import type { ServerResponse } from 'node:http';
import { Errors, type PlughostError } from '../errors';
import type { HTTPResponseHead__Output } from '../gen/plughost/v1/HTTPResponseHead';
import type { ExchangeFailure, ExchangeReceiver, PluginHttpExchange } from '../protocol/http-exchange';
import { errorBody } from './replies';

const STRIPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'proxy-connection']);

export class ResponseRelay implements ExchangeReceiver {
  private exchange!: PluginHttpExchange;
  private started = false;
  private finished = false;
  private held = false;
  private pending: Buffer[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly writePending = (): void => this.flushPending();
  private readonly drained = (): void => {
    this.held = false;
    this.exchange.release();
  };

  /** `unavailable` says why the plugin cannot serve now (stopped, removed), or null. */
  constructor(
    private readonly res: ServerResponse,
    private readonly pluginId: string,
    private readonly pathBelow: string,
    private readonly unavailable: () => PlughostError | null,
  ) {}

  /** The exchange this relays, right after it opened (before any of its events can come). */
  attach(exchange: PluginHttpExchange): void {
    this.exchange = exchange;
    this.res.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      exchange.cancel();
    });
  }

  head(head: HTTPResponseHead__Output): void {
    if (this.finished) return;
    this.started = true;
    const res = this.res;
    res.statusCode = head.status >= 100 && head.status <= 599 ? head.status : 502;
    for (const h of head.headers) {
      if (!STRIPPED_RESPONSE_HEADERS.has(h.name.toLowerCase())) res.setHeader(h.name, h.values);
    }
    this.scheduled ??= setImmediate(this.writePending);
  }

  body(chunk: Buffer): void {
    if (this.finished) return;
    if (this.res.headersSent && !this.scheduled) {
      // Streaming: each part goes out as it arrives.
      if (!this.res.write(chunk)) this.hold();
      return;
    }
    this.pending.push(chunk);
    this.scheduled ??= setImmediate(this.writePending);
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.unschedule();
    if (!this.res.headersSent && this.pending.length <= 1) {
      // Nothing sent yet: the whole response in one write (Node adds Content-Length when it may).
      this.res.end(this.pending[0]);
    } else {
      this.flushPending();
      this.res.end();
    }
    this.pending = [];
  }

  fail(failure: ExchangeFailure): void {
    if (this.finished) return;
    this.finished = true;
    this.unschedule();
    this.pending = [];
    if (!this.started && !this.res.destroyed) {
      const err = this.error(failure);
      this.res.writeHead(err.status, { 'content-type': 'application/json' });
      this.res.end(JSON.stringify(errorBody(err)));
    } else {
      // Mid-body: cut the connection so the client sees an incomplete response, not a short one.
      this.res.destroy();
    }
  }

  /** The catalog error for a failure before the head. */
  private error(failure: ExchangeFailure): PlughostError {
    const path = this.pathBelow;
    if (failure.kind === 'headless') return Errors.HOOK_FAILED(this.pluginId, 'ServeHTTP', `the plugin answered ${path} without a head in its first part`);
    if (failure.kind === 'ended-headless') return Errors.HOOK_FAILED(this.pluginId, 'ServeHTTP', `the plugin ended its response to ${path} without a head`);
    // A plugin stopped or removed under the request is reported as such, not as its stream's error.
    return this.unavailable() ?? Errors.HOOK_FAILED(this.pluginId, 'ServeHTTP', `${path}: ${failure.message}`);
  }

  /** Writes what came in this turn (or only the head), in one socket write. */
  private flushPending(): void {
    this.scheduled = undefined;
    const res = this.res;
    if (res.destroyed) return;
    if (this.pending.length === 0) {
      if (!res.headersSent) res.flushHeaders();
      return;
    }
    const chunks = this.pending;
    this.pending = [];
    let ok = true;
    res.cork();
    for (const chunk of chunks) ok = res.write(chunk);
    res.uncork();
    if (!ok) this.hold();
  }

  private hold(): void {
    if (this.held) return;
    this.held = true;
    this.exchange.hold();
    this.res.once('drain', this.drained);
  }

  private unschedule(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }
}
