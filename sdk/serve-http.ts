/**
 * The plugin side of ServeHTTP: the first request part's head becomes a
 * standard Request whose body streams from the gRPC stream; the handler's
 * Response goes back as a head part, then body parts, each flushed. A body
 * that is not a stream travels in the head part (when it fits in 64 KiB); a
 * streamed body's first chunk does too when it is ready at once.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HTTPRequestHead__Output } from '../src/gen/plughost/v1/HTTPRequestHead';
import type { HTTPRequestPart__Output } from '../src/gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponsePart } from '../src/gen/plughost/v1/HTTPResponsePart';
import { MAX_BODY_CHUNK, StreamedBody, fromHeaderList, pumpReader, toHeaderList, wholeBody, writePart } from './http-stream';

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
  // Made on the head, and only for methods that carry a body: a GET never builds a web stream.
  let body: StreamedBody | null = null;
  let cancelled = false;
  let started = false;
  call.on('cancelled', () => {
    cancelled = true;
    abort.abort(new Error('the client went away'));
    body?.fail(new Error('the client went away'));
  });
  call.on('error', (err: Error) => body?.fail(err));
  call.on('end', () => body?.end());
  call.on('data', (part: HTTPRequestPart__Output) => {
    if (!started) {
      started = true;
      if (!part.head) {
        call.destroy(Object.assign(new Error('ServeHTTP: the first HTTPRequestPart has no head'), { code: 3 }));
        return;
      }
      const method = part.head.method || 'GET';
      if (method !== 'GET' && method !== 'HEAD') body = new StreamedBody(call);
      void respond(part.head);
    }
    if (body && part.body.length > 0) body.push(part.body);
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
    const first: HTTPResponsePart = { head: { status: response.status, headers: toHeaderList(response.headers) } };
    if (!response.body) {
      call.write(first);
      return void call.end();
    }
    // A string or bytes body: head and body in as few parts as the 64 KiB limit allows, no web stream.
    const whole = wholeBody(response);
    if (whole) {
      first.body = Buffer.from(whole.buffer, whole.byteOffset, Math.min(MAX_BODY_CHUNK, whole.byteLength));
      let wait = writePart(call, first);
      for (let at = MAX_BODY_CHUNK; at < whole.byteLength && !cancelled; at += MAX_BODY_CHUNK) {
        if (wait) await wait;
        wait = writePart(call, { body: Buffer.from(whole.buffer, whole.byteOffset + at, Math.min(MAX_BODY_CHUNK, whole.byteLength - at)), flush: true });
      }
      if (wait) await wait;
      if (!cancelled) call.end();
      return;
    }
    // A stream: its first chunk goes with the head when it is ready at once; a stream that
    // has nothing yet (server-sent events) gets its head sent straight away.
    const reader = response.body.getReader();
    let headSent = false;
    try {
      const read = reader.read();
      let pending = (await Promise.race([read, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))])) ?? undefined;
      if (pending && !pending.done) {
        const v = pending.value;
        first.body = Buffer.from(v.buffer, v.byteOffset, Math.min(MAX_BODY_CHUNK, v.byteLength));
        first.flush = true;
        pending = v.byteLength > MAX_BODY_CHUNK ? { done: false, value: v.subarray(MAX_BODY_CHUNK) } : undefined;
        headSent = true;
        await writePart(call, first);
      } else if (!pending) {
        headSent = true;
        await writePart(call, first);
        pending = await read;
      } else {
        headSent = true;
        call.write(first);
      }
      await pumpReader(reader, (chunk) => writePart(call, { body: chunk, flush: true }), () => cancelled, pending);
    } catch (err) {
      onError(err as Error);
      reader.releaseLock();
      if (!headSent && !cancelled) call.write({ head: first.head });
    }
    if (!cancelled) call.end();
  };
}

function toRequest(head: HTTPRequestHead__Output, body: StreamedBody | null, signal: AbortSignal): Request {
  const headers = fromHeaderList(head.headers);
  const method = head.method || 'GET';
  const path = head.path.startsWith('/') ? head.path : `/${head.path}`;
  const url = `http://${safeHost(headers.get('host'))}${path}${head.query ? `?${head.query}` : ''}`;
  const init: RequestInit & { duplex: 'half' } = { method, headers, signal, body: body ? body.stream : null, duplex: 'half' };
  return new Request(url, init);
}

function safeHost(host: string | null): string {
  return host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : 'localhost';
}
