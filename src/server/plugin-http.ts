/**
 * /plugins/:id/* → the plugin's ServeHTTP stream. Bodies stream both ways in
 * 64 KiB chunks with backpressure (nothing is buffered whole), response chunks
 * are written as they arrive (so SSE and chunked responses flush; the head waits
 * only for what arrives in the same event-loop turn, so a small response goes out
 * in one write), a client
 * that goes away cancels the plugin's stream, and a plugin that dies mid-response
 * ends that response without touching the rest of the server.
 * /plugins/:id/public/* serves files from the bundle's public/ folder (public-files.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import { Errors, type PlughostError } from '../errors';
import type { HTTPHeader } from '../gen/plughost/v1/HTTPHeader';
import type { HTTPRequestPart } from '../gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponsePart__Output } from '../gen/plughost/v1/HTTPResponsePart';
import type { PluginHost } from '../runtime';
import { publicFiles } from './public-files';
import { errorBody } from './replies';

export const BODY_CHUNK_BYTES = 64 * 1024;
export const USER_ID_HEADER = 'plughost-user-id';

/** Never forwarded to a plugin: credentials of the user's session with the host, and hop-by-hop headers. */
const STRIPPED_REQUEST_HEADERS = new Set([
  'authorization', 'cookie', USER_ID_HEADER, 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);
const STRIPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'proxy-connection']);

export interface PluginHttpOptions {
  host: PluginHost;
  /** The integrator's user lookup; its result reaches the plugin as Plughost-User-Id. */
  authenticate?: (request: FastifyRequest) => Promise<string | null | undefined> | string | null | undefined;
}

export async function pluginHttpRoutes(app: FastifyInstance, options: PluginHttpOptions): Promise<void> {
  // Bodies of plugin routes are the plugin's business: leave the stream unread for proxying.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  await app.register(publicFiles, { host: options.host });

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const { id, '*': rest } = request.params as { id: string; '*'?: string };
    const userId = options.authenticate ? await options.authenticate(request) : null;
    const call = options.host.openHttpStream(id);
    return proxyToPlugin(request, reply, call, id, `/${rest ?? ''}`, userId ?? '', () => options.host.httpUnavailable(id));
  };
  // The plugin's own routes: its contract, not plughost's, so not in the OpenAPI document.
  const hidden = { schema: { hide: true } };
  app.all('/plugins/:id', hidden, proxy);
  app.all('/plugins/:id/*', hidden, proxy);
}

function requestHead(request: FastifyRequest, pathBelow: string, userId: string): HTTPRequestPart['head'] {
  const headers: HTTPHeader[] = [];
  const raw = request.raw.rawHeaders;
  const grouped = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (STRIPPED_REQUEST_HEADERS.has(name)) continue;
    const values = grouped.get(name);
    if (values) values.push(raw[i + 1]);
    else grouped.set(name, [raw[i + 1]]);
  }
  if (userId) grouped.set(USER_ID_HEADER, [userId]);
  for (const [name, values] of grouped) headers.push({ name, values });
  const q = request.raw.url?.indexOf('?') ?? -1;
  return {
    method: request.method,
    path: pathBelow,
    query: q >= 0 ? request.raw.url!.slice(q + 1) : '',
    headers,
    remote_addr: request.socket.remoteAddress ?? '',
    user_id: userId,
  };
}

async function proxyToPlugin(
  request: FastifyRequest,
  reply: FastifyReply,
  call: grpc.ClientDuplexStream<HTTPRequestPart, HTTPResponsePart__Output>,
  pluginId: string,
  pathBelow: string,
  userId: string,
  unavailable: () => PlughostError | null,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  let finished = false;
  res.on('close', () => {
    if (!finished) call.cancel();
  });
  sendBody(request.raw, call, requestHead(request, pathBelow, userId));

  // The head and the parts that arrive with it in one turn of the event loop go out in one
  // socket write; a response that ends in that turn goes out whole, with a Content-Length.
  let started = false;
  let pending: Buffer[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  const writePending = (): void => {
    scheduled = undefined;
    if (res.destroyed) return;
    if (pending.length === 0) {
      if (!res.headersSent) res.flushHeaders();
      return;
    }
    const chunks = pending;
    pending = [];
    let ok = true;
    res.cork();
    for (const chunk of chunks) ok = res.write(chunk);
    res.uncork();
    if (!ok) {
      call.pause();
      res.once('drain', () => call.resume());
    }
  };
  await new Promise<void>((resolve) => {
    call.on('data', (part: HTTPResponsePart__Output) => {
      if (finished) return;
      if (!started) {
        const head = part.head;
        if (!head) {
          // The contract requires the head in the first part: without it there is no status to send.
          finished = true;
          call.cancel();
          endWithError(res, Errors.HOOK_FAILED(pluginId, 'ServeHTTP', `the plugin answered ${pathBelow} without a head in its first part`));
          resolve();
          return;
        }
        started = true;
        res.statusCode = head.status >= 100 && head.status <= 599 ? head.status : 502;
        for (const h of head.headers) {
          if (!STRIPPED_RESPONSE_HEADERS.has(h.name.toLowerCase())) res.setHeader(h.name, h.values);
        }
      }
      if (res.headersSent && !scheduled) {
        // Streaming: each chunk goes out as it arrives, as before.
        if (part.body.length > 0 && !res.write(part.body)) {
          call.pause();
          res.once('drain', () => call.resume());
        }
        return;
      }
      if (part.body.length > 0) pending.push(part.body);
      scheduled ??= setImmediate(writePending);
    });
    call.on('end', () => {
      if (finished) return;
      finished = true;
      if (scheduled) clearImmediate(scheduled);
      scheduled = undefined;
      if (!started) {
        endWithError(res, Errors.HOOK_FAILED(pluginId, 'ServeHTTP', `the plugin ended its response to ${pathBelow} without a head`));
      } else if (!res.headersSent && pending.length <= 1) {
        // Nothing sent yet: the whole response in one write (Node adds Content-Length when it may).
        res.end(pending[0]);
      } else {
        writePending();
        res.end();
      }
      pending = [];
      resolve();
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (finished) return;
      finished = true;
      if (scheduled) clearImmediate(scheduled);
      scheduled = undefined;
      pending = [];
      if (!started && !res.destroyed) {
        // A plugin stopped or removed under the request is reported as such, not as its stream's error.
        endWithError(res, unavailable() ?? Errors.HOOK_FAILED(pluginId, 'ServeHTTP', `${pathBelow}: ${err.details || err.message}`));
      } else {
        // Mid-body: cut the connection so the client sees an incomplete response, not a short one.
        res.destroy();
      }
      resolve();
    });
  });
}

/** The catalog's error JSON on a hijacked response that has sent nothing yet. */
function endWithError(res: ServerResponse, err: PlughostError): void {
  res.writeHead(err.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(errorBody(err)));
}

/**
 * Streams the request body to the plugin in chunks of at most 64 KiB, the first one (when the
 * client has already sent it) in the same part as the head, pausing while gRPC pushes back.
 * A request without a body is one part and a half-close.
 */
function sendBody(raw: IncomingMessage, call: grpc.ClientDuplexStream<HTTPRequestPart, unknown>, head: HTTPRequestPart['head']): void {
  const length = raw.headers['content-length'];
  if (length === '0' || (length === undefined && raw.headers['transfer-encoding'] === undefined)) {
    call.write({ head });
    call.end();
    return;
  }
  // Body bytes already buffered: the first chunk travels with the head. Otherwise the plugin
  // gets the head now rather than when the client gets going.
  let headSent = raw.readableLength === 0;
  if (headSent) call.write({ head });
  raw.on('data', (chunk: Buffer) => {
    let ok = true;
    for (let off = 0; off < chunk.length; off += BODY_CHUNK_BYTES) {
      const body = off === 0 && chunk.length <= BODY_CHUNK_BYTES ? chunk : chunk.subarray(off, off + BODY_CHUNK_BYTES);
      ok = call.write(headSent ? { body } : { head, body });
      headSent = true;
    }
    if (!ok) {
      raw.pause();
      call.once('drain', () => raw.resume());
    }
  });
  raw.on('end', () => {
    if (!headSent) call.write({ head });
    call.end();
  });
  raw.on('error', () => call.cancel());
}
