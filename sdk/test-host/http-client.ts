/**
 * The host side of ServeHTTP for the harness: a Fetch-style call becomes a
 * head part plus body parts, and the reply becomes a standard Response whose
 * body streams as the plugin flushes it.
 */
import type { HooksClient } from '../../src/gen/plughost/v1/Hooks';
import type { HTTPResponsePart__Output } from '../../src/gen/plughost/v1/HTTPResponsePart';
import { NULL_BODY_STATUSES, StreamedBody, fromHeaderList, pumpBody, toHeaderList, writePart } from '../http-stream';

export interface TestRequestInit {
  method?: string;
  headers?: Record<string, string> | Headers;
  /** A string, bytes, or a stream sent in chunks as it is read. */
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Sent as the authenticated user (HTTPRequestHead.user_id and the Plughost-User-Id header). */
  userId?: string;
  remoteAddr?: string;
  /** Aborting cancels the stream, as a client going away does. */
  signal?: AbortSignal;
}

export function fetchThroughPlugin(hooks: HooksClient, target: string, init: TestRequestInit = {}): Promise<Response> {
  const url = new URL(target, 'http://plugin.test');
  const headers = new Headers(init.headers);
  if (init.userId) headers.set('plughost-user-id', init.userId);
  const call = hooks.ServeHTTP();
  const onAbort = () => call.cancel();
  init.signal?.addEventListener('abort', onAbort, { once: true });

  const response = new Promise<Response>((resolve, reject) => {
    let body: StreamedBody | undefined;
    call.on('data', (part: HTTPResponsePart__Output) => {
      if (body) return body.push(part.body);
      if (!part.head) return reject(new Error('ServeHTTP: the first response part has no head'));
      const status = part.head.status;
      body = new StreamedBody(call);
      if (NULL_BODY_STATUSES.has(status)) void body.stream.cancel();
      resolve(new Response(NULL_BODY_STATUSES.has(status) ? null : body.stream, { status, headers: fromHeaderList(part.head.headers) }));
      body.push(part.body);
    });
    call.on('end', () => {
      init.signal?.removeEventListener('abort', onAbort);
      body?.end();
      if (!body) reject(new Error('ServeHTTP ended without a response'));
    });
    call.on('error', (err: Error) => {
      init.signal?.removeEventListener('abort', onAbort);
      if (body) body.fail(err);
      else reject(err);
    });
  });

  void (async () => {
    await writePart(call, {
      head: {
        method: (init.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        query: url.search.replace(/^\?/, ''),
        headers: toHeaderList(headers),
        remote_addr: init.remoteAddr ?? '127.0.0.1',
        user_id: init.userId ?? '',
      },
    });
    const body = init.body;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const stream = new Blob([body]).stream();
      await pumpBody(stream, (chunk) => writePart(call, { body: chunk }), () => false);
    } else if (body) {
      await pumpBody(body, (chunk) => writePart(call, { body: chunk }), () => false);
    }
    call.end();
  })().catch(() => call.cancel());

  return response;
}
