/**
 * /plugins/:id/* → an HTTP exchange with the plugin: over its ServeHTTPStream
 * when it offers one (many exchanges on one stream, each with its own flow
 * control), else over a ServeHTTP stream per request. Bodies stream both ways
 * with backpressure (nothing is buffered whole); the response is relayed by
 * response-relay.ts; a client that goes away cancels its exchange, and a
 * plugin that dies mid-response ends that response without touching the rest
 * of the server.
 * /plugins/:id/public/* serves files from the bundle's public/ folder (public-files.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HTTPHeader } from '../gen/plughost/v1/HTTPHeader';
import type { HTTPRequestHead } from '../gen/plughost/v1/HTTPRequestHead';
import type { PluginHttpExchange } from '../protocol/http-exchange';
import type { PluginHost } from '../runtime';
import { publicFiles } from './public-files';
import { ResponseRelay } from './response-relay';

export const USER_ID_HEADER = 'plughost-user-id';

/** Never forwarded to a plugin: credentials of the user's session with the host, and hop-by-hop headers. */
const STRIPPED_REQUEST_HEADERS = new Set([
  'authorization', 'cookie', USER_ID_HEADER, 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

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
    const pathBelow = `/${rest ?? ''}`;
    const relay = new ResponseRelay(reply.raw, id, pathBelow, () => options.host.httpUnavailable(id));
    // Throws (before anything is sent) when the plugin cannot serve: Fastify answers with the catalog error.
    const exchange = options.host.openHttpExchange(id, relay);
    relay.attach(exchange);
    reply.hijack();
    sendRequest(request.raw, exchange, requestHead(request, pathBelow, userId ?? ''));
  };
  // The plugin's own routes: its contract, not plughost's, so not in the OpenAPI document.
  const hidden = { schema: { hide: true } };
  app.all('/plugins/:id', hidden, proxy);
  app.all('/plugins/:id/*', hidden, proxy);
}

function requestHead(request: FastifyRequest, pathBelow: string, userId: string): HTTPRequestHead {
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

/**
 * Streams the request to the plugin: the head at once, with the first body bytes when the
 * client has already sent them, then the body as it comes, pausing while the exchange pushes
 * back. A request without a body is the head alone, marked complete. A body of a known
 * length from the exchange's side-channel size on travels over a side channel instead.
 */
function sendRequest(raw: IncomingMessage, exchange: PluginHttpExchange, head: HTTPRequestHead): void {
  const length = raw.headers['content-length'];
  if (length === '0' || (length === undefined && raw.headers['transfer-encoding'] === undefined)) {
    exchange.start(head, undefined, true);
    return;
  }
  // A large body of known length goes over a side channel as raw bytes, when the exchange has one.
  const minBytes = exchange.bodyChannelMinBytes;
  if (minBytes > 0 && length !== undefined && Number(length) >= minBytes) {
    raw.on('error', () => exchange.cancel());
    exchange.startWithBodyChannel(head, raw);
    return;
  }
  // Body bytes already buffered: the first chunk travels with the head. Otherwise the plugin
  // gets the head now rather than when the client gets going.
  let headSent = raw.readableLength === 0;
  if (headSent) exchange.start(head, undefined, false);
  const resume = () => raw.resume();
  raw.on('data', (chunk: Buffer) => {
    const ok = headSent ? exchange.write(chunk) : exchange.start(head, chunk, false);
    headSent = true;
    if (!ok) {
      raw.pause();
      exchange.onDrain(resume);
    }
  });
  raw.on('end', () => {
    if (headSent) exchange.end();
    else exchange.start(head, undefined, true);
  });
  raw.on('error', () => exchange.cancel());
}
