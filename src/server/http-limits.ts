/**
 * Connection hygiene for the HTTP server: how long a client may take to send
 * a request, how long an idle connection is kept, how many connections are
 * served at once, and how long shutdown waits for requests in flight. Also the
 * two Fastify options that shape errors raised before any route runs (HTTP
 * parse errors and bad URLs), so that every answer has the catalog's shape.
 *
 * These are server-wide settings: `startServer` applies them; an integrator
 * who registers `plughostRoutes` in their own app spreads
 * `plughostServerOptions()` into their `Fastify({...})` call.
 */
import * as fs from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { Errors, type PlughostError } from '../errors';
import { MANIFEST_ID_MAX_LENGTH } from '../manifest/validate';
import { errorBody, sendError } from './replies';

export interface ConnectionLimits {
  /** Time for a client to send a request's head (request line and headers). Default 10 s. */
  headersTimeoutMs?: number;
  /**
   * Time for a client to send a whole request, body included. Default 120 s:
   * a 50 MiB bundle upload at 3.5 Mbit/s. Responses are not limited by it, so
   * event streams and long downloads are unaffected.
   */
  requestTimeoutMs?: number;
  /** Time a kept-alive connection may sit idle between requests. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Time a connection may move no bytes in either direction, mid-response
   * included. Default 120 s; event streams send a heartbeat every 15 s. 0 turns it off.
   */
  idleTimeoutMs?: number;
  /**
   * Connections served at once; a connection past the cap is closed at once.
   * Default half the process's open-file limit (512 where that limit cannot be
   * read), so plugins and the database keep descriptors when clients hold many.
   */
  maxConnections?: number;
  /**
   * On close: time requests in flight get to finish before their connections
   * are destroyed. Idle connections close at once. Default 10 s.
   */
  closeGraceMs?: number;
}

export type ResolvedConnectionLimits = Required<ConnectionLimits>;

export function resolveConnectionLimits(limits: ConnectionLimits = {}): ResolvedConnectionLimits {
  return {
    headersTimeoutMs: limits.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: limits.requestTimeoutMs ?? 120_000,
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? 5_000,
    idleTimeoutMs: limits.idleTimeoutMs ?? 120_000,
    maxConnections: limits.maxConnections ?? defaultMaxConnections(),
    closeGraceMs: limits.closeGraceMs ?? 10_000,
  };
}

/** Half the soft RLIMIT_NOFILE, read from /proc (Linux); 512 elsewhere. */
function defaultMaxConnections(): number {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isInteger(soft) && soft > 0) return Math.max(64, Math.floor(soft / 2));
  } catch {
    // Not Linux: fall through to the fixed default.
  }
  return 512;
}

/**
 * The longest `:id` the router accepts. Fastify's default (100) is shorter
 * than the longest valid plugin id, which made such a plugin unreachable.
 */
export const MAX_PARAM_LENGTH = MANIFEST_ID_MAX_LENGTH + 66;

/**
 * Fastify constructor options for a server that serves plughost's routes:
 * the timeouts above, the router's parameter length, and error bodies in the
 * catalog's shape for errors raised before routing.
 */
export function plughostServerOptions(limits: ConnectionLimits = {}): FastifyServerOptions {
  const l = resolveConnectionLimits(limits);
  const checkEvery = Math.max(100, Math.min(l.headersTimeoutMs, l.requestTimeoutMs || l.headersTimeoutMs) / 4);
  return {
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionTimeout: l.idleTimeoutMs,
    forceCloseConnections: 'idle',
    http: { headersTimeout: l.headersTimeoutMs, connectionsCheckingInterval: checkEvery },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: (err: Error, socket: Duplex) => answerClientError(err, socket, l),
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      sendError(reply, frameworkError(err));
    },
  } as FastifyServerOptions;
}

/** Applies what Fastify's constructor cannot: the connection cap. */
export function applyConnectionCap(app: FastifyInstance, limits: ResolvedConnectionLimits): void {
  app.server.maxConnections = limits.maxConnections;
}

/**
 * Closes the app, giving requests in flight `closeGraceMs`, then destroying
 * whatever connection is still open (a stalled upload, a client that keeps a
 * refused body open), so shutdown never waits on a client.
 */
export async function closeWithGrace(app: FastifyInstance, graceMs: number): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An error answer sent while the request body is still arriving (a refused
 * upload) closes the connection, so the rest of the body is not read and the
 * socket does not stay open for the keep-alive timeout.
 */
export function closeAfterUnreadBody(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && !request.raw.complete) reply.header('connection', 'close');
    return payload;
  });
}

function frameworkError(err: FastifyError): PlughostError {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return Errors.REQUEST_PATH_TOO_LONG(MAX_PARAM_LENGTH);
  if (err.code === 'FST_ERR_BAD_URL') return Errors.BAD_REQUEST_PATH('it is not valid percent-encoding');
  return Errors.BAD_REQUEST_PATH(err.message);
}

type ParseError = Error & { code?: string; reason?: string };

/**
 * Node's HTTP parser refused the request (or it timed out) before Fastify saw
 * it: answer in the catalog's shape if nothing was written yet, then close.
 */
function answerClientError(err: ParseError, socket: Duplex, limits: ResolvedConnectionLimits): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? Errors.REQUEST_TIMEOUT(limits.headersTimeoutMs, limits.requestTimeoutMs)
    : err.code === 'HPE_HEADER_OVERFLOW' ? Errors.HEADERS_TOO_LARGE()
    : Errors.BAD_HTTP(err.reason ?? err.code ?? err.message);
  const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
  if (socket.writable && written === 0) {
    const body = JSON.stringify(errorBody(e));
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
