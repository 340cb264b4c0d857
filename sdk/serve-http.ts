/**
 * The plugin side of ServeHTTP: the first request part's head becomes a
 * standard Request whose body streams from the gRPC stream; the handler's
 * Response goes back as a head part, then body parts, each flushed.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HTTPRequestHead__Output } from '../src/gen/plughost/v1/HTTPRequestHead';
import type { HTTPRequestPart__Output } from '../src/gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponsePart } from '../src/gen/plughost/v1/HTTPResponsePart';
import { StreamedBody, fromHeaderList, pumpBody, toHeaderList, writePart } from './http-stream';

type HttpCall = grpc.ServerDuplexStream<HTTPRequestPart__Output, HTTPResponsePart>;

/**
 * Runs the handler for the request on `call`. `onError` hears about a handler
 * that threw; `settle` runs before the head is sent (it waits for the logs the
 * handler wrote, so they reach the host before the response does).
 */
export function serveHttpCall(
  call: HttpCall,
  handle: (request: Request, head: HTTPRequestHead__Output) => Promise<Response>,
  onError: (err: Error) => void,
  settle: () => Promise<void>,
): void {
  const abort = new AbortController();
  const body = new StreamedBody(call);
  let cancelled = false;
  let started = false;
  call.on('cancelled', () => {
    cancelled = true;
    abort.abort(new Error('the client went away'));
    body.fail(new Error('the client went away'));
  });
  call.on('error', (err: Error) => body.fail(err));
  call.on('end', () => body.end());
  call.on('data', (part: HTTPRequestPart__Output) => {
    if (!started) {
      started = true;
      if (!part.head) {
        call.destroy(Object.assign(new Error('ServeHTTP: the first HTTPRequestPart has no head'), { code: 3 }));
        return;
      }
      void respond(part.head);
    }
    body.push(part.body);
  });

  const respond = async (head: HTTPRequestHead__Output): Promise<void> => {
    let response: Response;
    try {
      response = await handle(toRequest(head, body, abort.signal), head);
    } catch (err) {
      onError(err as Error);
      response = new Response('internal error in plugin', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    }
    await settle();
    if (cancelled) {
      await response.body?.cancel();
      return;
    }
    await writePart(call, { head: { status: response.status, headers: toHeaderList(response.headers) } });
    if (response.body) {
      try {
        await pumpBody(response.body, (chunk) => writePart(call, { body: chunk, flush: true }), () => cancelled);
      } catch (err) {
        onError(err as Error);
      }
    }
    if (!cancelled) call.end();
  };
}

function toRequest(head: HTTPRequestHead__Output, body: StreamedBody, signal: AbortSignal): Request {
  const headers = fromHeaderList(head.headers);
  const method = head.method || 'GET';
  const path = head.path.startsWith('/') ? head.path : `/${head.path}`;
  const url = `http://${safeHost(headers.get('host'))}${path}${head.query ? `?${head.query}` : ''}`;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const init: RequestInit & { duplex: 'half' } = { method, headers, signal, body: hasBody ? body.stream : null, duplex: 'half' };
  if (!hasBody) void body.stream.cancel();
  return new Request(url, init);
}

function safeHost(host: string | null): string {
  return host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : 'localhost';
}
