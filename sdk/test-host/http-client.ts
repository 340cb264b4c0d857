/**
 * The host side of plugin HTTP for the harness: a Fetch-style call becomes an
 * exchange (over ServeHTTPStream when the plugin offers it, as a host would
 * send it, else over a ServeHTTP stream of its own), and the reply becomes a
 * standard Response whose body streams as the plugin sends it.
 */
import type { ExchangeFailure, ExchangeReceiver, PluginHttpExchange } from '../../src/protocol/http-exchange';
import { NULL_BODY_STATUSES, READ_AHEAD_BYTES, StreamedBody, fromHeaderList, pausingFeed, pumpBody, toHeaderList } from '../http-stream';

export interface TestRequestInit {
  method?: string;
  headers?: Record<string, string> | Headers;
  /** A string, bytes, or a stream sent in chunks as it is read. */
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Sent as the authenticated user (HTTPRequestHead.user_id and the Plughost-User-Id header). */
  userId?: string;
  remoteAddr?: string;
  /** Aborting cancels the exchange, as a client going away does. */
  signal?: AbortSignal;
}

/** Starts an exchange with the plugin whose response goes to `receiver`. */
export type ExchangeOpener = (receiver: ExchangeReceiver) => PluginHttpExchange;

/** Request body bytes handed to the exchange per write. */
const WRITE_BYTES = 64 * 1024;

export function fetchThroughPlugin(open: ExchangeOpener, target: string, init: TestRequestInit = {}): Promise<Response> {
  const url = new URL(target, 'http://plugin.test');
  const headers = new Headers(init.headers);
  if (init.userId) headers.set('plughost-user-id', init.userId);
  return new Promise<Response>((resolve, reject) => {
    let body: StreamedBody | undefined;
    let over = false;
    const finish = () => {
      over = true;
      init.signal?.removeEventListener('abort', onAbort);
    };
    const exchange = open({
      head(head) {
        const status = head.status;
        body = new StreamedBody(pausingFeed({ pause: () => exchange.hold(), resume: () => exchange.release() }), READ_AHEAD_BYTES);
        if (NULL_BODY_STATUSES.has(status)) void body.stream.cancel();
        resolve(new Response(NULL_BODY_STATUSES.has(status) ? null : body.stream, { status, headers: fromHeaderList(head.headers) }));
      },
      body: (chunk) => body?.push(chunk),
      end() {
        finish();
        body?.end();
      },
      fail(failure) {
        finish();
        const err = new Error(describe(failure));
        if (body) body.fail(err);
        else reject(err);
      },
    });
    const onAbort = () => {
      if (over) return;
      finish();
      exchange.cancel();
      const err = new Error('the request was aborted');
      if (body) body.fail(err);
      else reject(err);
    };
    init.signal?.addEventListener('abort', onAbort, { once: true });

    const head = {
      method: (init.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      headers: toHeaderList(headers),
      remote_addr: init.remoteAddr ?? '127.0.0.1',
      user_id: init.userId ?? '',
    };
    const source = typeof init.body === 'string' || init.body instanceof Uint8Array ? new Blob([init.body]).stream() : init.body;
    if (!source) return void exchange.start(head, undefined, true);
    exchange.start(head, undefined, false);
    const send = (chunk: Buffer) => (exchange.write(chunk) ? undefined : new Promise<void>((r) => exchange.onDrain(r)));
    pumpBody(source, send, () => over, WRITE_BYTES).then(
      () => exchange.end(),
      () => onAbort(),
    );
  });
}

function describe(failure: ExchangeFailure): string {
  if (failure.kind === 'headless') return 'the plugin answered without a head in its first part';
  if (failure.kind === 'ended-headless') return 'the plugin ended its response without a head';
  return failure.message;
}
