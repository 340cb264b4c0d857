/**
 * /plugins/:id/* → the plugin's ServeHTTP stream. Bodies stream both ways in
 * 64 KiB chunks with backpressure (nothing is buffered whole), each response
 * chunk is written as it arrives (so SSE and chunked responses flush), a client
 * that goes away cancels the plugin's stream, and a plugin that dies mid-response
 * ends that response without touching the rest of the server.
 * /plugins/:id/public/* serves files from the bundle's public/ folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { once } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import type { HTTPHeader } from '../gen/plughost/v1/HTTPHeader';
import type { HTTPRequestPart } from '../gen/plughost/v1/HTTPRequestPart';
import type { HTTPResponsePart__Output } from '../gen/plughost/v1/HTTPResponsePart';
import type { PluginHost } from '../runtime';
import { sendError } from './replies';

export const BODY_CHUNK_BYTES = 64 * 1024;
export const USER_ID_HEADER = 'plughost-user-id';

/** Never forwarded to a plugin: credentials of the user's session with the host, and hop-by-hop headers. */
const STRIPPED_REQUEST_HEADERS = new Set([
  'authorization', 'cookie', USER_ID_HEADER, 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);
const STRIPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'proxy-connection']);

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2', '.wasm': 'application/wasm', '.map': 'application/json',
};

export interface PluginHttpOptions {
  host: PluginHost;
  /** The integrator's user lookup; its result reaches the plugin as Plughost-User-Id. */
  authenticate?: (request: FastifyRequest) => Promise<string | null | undefined> | string | null | undefined;
}

export async function pluginHttpRoutes(app: FastifyInstance, options: PluginHttpOptions): Promise<void> {
  // Bodies of plugin routes are the plugin's business: leave the stream unread for proxying.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.all('/plugins/:id/public/*', async (request, reply) => {
    const { id, '*': rest } = request.params as { id: string; '*': string };
    await options.host.get(id);
    return serveStatic(reply, path.join(options.host.pluginDir(id), 'public'), rest);
  });

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const { id, '*': rest } = request.params as { id: string; '*'?: string };
    const userId = options.authenticate ? await options.authenticate(request) : null;
    const call = options.host.openHttpStream(id);
    return proxyToPlugin(request, reply, call, `/${rest ?? ''}`, userId ?? '');
  };
  app.all('/plugins/:id', proxy);
  app.all('/plugins/:id/*', proxy);
}

function requestHead(request: FastifyRequest, pathBelow: string, userId: string): HTTPRequestPart['head'] {
  const headers: HTTPHeader[] = [];
  const raw = request.raw.rawHeaders;
  const grouped = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (STRIPPED_REQUEST_HEADERS.has(name)) continue;
    grouped.set(name, [...(grouped.get(name) ?? []), raw[i + 1]]);
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
  pathBelow: string,
  userId: string,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  let finished = false;
  res.on('close', () => {
    if (!finished) call.cancel();
  });
  const pump = sendBody(request, call, requestHead(request, pathBelow, userId)).catch(() => call.cancel());

  let started = false;
  await new Promise<void>((resolve) => {
    call.on('data', (part: HTTPResponsePart__Output) => {
      if (!started) {
        started = true;
        const head = part.head;
        const status = head && head.status >= 100 && head.status <= 599 ? head.status : 502;
        for (const h of head?.headers ?? []) {
          if (!STRIPPED_RESPONSE_HEADERS.has(h.name.toLowerCase())) res.setHeader(h.name, h.values);
        }
        res.writeHead(status);
        res.flushHeaders();
      }
      if (part.body.length > 0 && !res.write(part.body)) {
        call.pause();
        res.once('drain', () => call.resume());
      }
    });
    call.on('end', () => {
      finished = true;
      if (!started) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'PLUGHOST_ERR_HOOK_FAILED', message: 'the plugin ended its response without a head', details: {} } }));
      } else res.end();
      resolve();
    });
    call.on('error', (err: grpc.ServiceError) => {
      finished = true;
      if (!started && !res.destroyed) {
        const e = Errors.HOOK_FAILED(pathBelow, 'ServeHTTP', err.details || err.message);
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: e.code, message: e.message, details: {} } }));
      } else {
        // Mid-body: cut the connection so the client sees an incomplete response, not a short one.
        res.destroy();
      }
      resolve();
    });
  });
  await pump;
}

/** Streams the request body to the plugin in bounded chunks, waiting when gRPC pushes back. */
async function sendBody(request: FastifyRequest, call: grpc.ClientDuplexStream<HTTPRequestPart, unknown>, head: HTTPRequestPart['head']): Promise<void> {
  call.write({ head });
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    for (let off = 0; off < chunk.length; off += BODY_CHUNK_BYTES) {
      if (!call.write({ body: chunk.subarray(off, off + BODY_CHUNK_BYTES) })) await once(call as unknown as NodeJS.EventEmitter, 'drain');
    }
  }
  call.end();
}

async function serveStatic(reply: FastifyReply, root: string, relative: string): Promise<FastifyReply> {
  const decoded = safeDecode(relative);
  const target = decoded === null ? null : path.resolve(root, decoded);
  const inside = target !== null && (target === root || target.startsWith(root + path.sep)) && !decoded!.includes('\0');
  let stat: fs.Stats | undefined;
  if (inside) {
    try {
      const real = fs.realpathSync(target!);
      stat = real.startsWith(fs.realpathSync(root) + path.sep) ? fs.statSync(real) : undefined;
    } catch {
      stat = undefined;
    }
  }
  if (!inside || !stat?.isFile()) return sendError(reply, Errors.NOT_FOUND(`static file ${JSON.stringify(relative)}`));
  return reply
    .header('content-type', MIME[path.extname(target!).toLowerCase()] ?? 'application/octet-stream')
    .header('content-length', stat.size)
    .header('x-content-type-options', 'nosniff')
    .send(fs.createReadStream(target!));
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
