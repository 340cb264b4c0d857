/**
 * Server-sent events: the operator's live feed (`GET /api/v1/events`) of
 * plugins installed, enabled, disabled, removed, changing state or changing
 * configuration (and, for a stream that asks with `?logs=`, their log
 * records), and the small stream plumbing the public client-bundle feed
 * shares. An EventSource cannot send an Authorization header, and the admin
 * token must never travel in a URL, so a client first trades its token for a
 * ticket (`POST /api/v1/events/ticket`): random, single-use and valid for
 * 30 seconds, so a URL that ends up in a log or a history is worth nothing.
 */
import * as crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Errors } from '../errors';
import type { PluginHost } from '../runtime';
import type { PluginInfo, PluginLogEntry, StateChange } from '../runtime/types';
import type { AdminAuthenticator } from './auth';
import { follow } from './host-followers';
import { nonJson, responses, TicketSchema } from './schemas';

/** A comment line this often keeps proxies from closing a quiet stream and notices dead peers. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const TICKET_TTL_MS = 30_000;
/** Unused tickets kept at most; the oldest go first. Only token holders can mint them. */
const MAX_TICKETS = 1_000;
/** What the browser waits before reconnecting after the stream drops. */
const RETRY_MS = 2_000;
/** `?logs=1`: log records of every plugin. */
const ALL_LOGS = '1';

export interface EventStream {
  send(event: string, data: unknown): void;
  /** Runs once, when the client goes away or the server closes. */
  onClose(fn: () => void): void;
}

/**
 * The open streams of one route group. Fastify's close() waits for every
 * connection, and an event stream never ends by itself, so `closeAll` ends
 * them in the preClose hook.
 */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();

  constructor(private readonly heartbeatMs: number) {}

  /** Takes over the reply and starts the stream; the caller sends its first events right away. */
  start(request: FastifyRequest, reply: FastifyReply): EventStream {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write(`retry: ${RETRY_MS}\n\n`);
    this.open.add(res);
    const closers: Array<() => void> = [];
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), this.heartbeatMs);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      this.open.delete(res);
      for (const fn of closers) fn();
    };
    request.raw.on('close', finish);
    res.on('close', finish);
    return {
      send: (event, data) => {
        if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      onClose: (fn) => {
        if (closed) fn();
        else closers.push(fn);
      },
    };
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const res of this.open) res.end();
  }
}

/** Issues and redeems event-stream tickets. */
interface Tickets {
  issue(): { ticket: string; expiresAt: number } | Promise<{ ticket: string; expiresAt: number }>;
  redeem(ticket: string): boolean | Promise<boolean>;
}

/** Single-use, short-lived stand-ins for the admin token in an EventSource URL, in this process. */
export class TicketBook implements Tickets {
  private readonly tickets = new Map<string, number>();

  constructor(private readonly ttlMs = TICKET_TTL_MS, private readonly now: () => number = Date.now) {}

  issue(): { ticket: string; expiresAt: number } {
    this.prune();
    if (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value as string);
    const ticket = crypto.randomBytes(24).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.tickets.set(ticket, expiresAt);
    return { ticket, expiresAt };
  }

  /** True once for a ticket issued less than the TTL ago; the ticket is spent either way. */
  redeem(ticket: string): boolean {
    const expiresAt = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return expiresAt !== undefined && expiresAt > this.now();
  }

  private prune(): void {
    const now = this.now();
    for (const [ticket, expiresAt] of this.tickets) if (expiresAt <= now) this.tickets.delete(ticket);
  }
}

export interface EventRoutesOptions {
  host: PluginHost;
  /** The admin token check, shared with the admin API so failures are throttled together. */
  authenticate: AdminAuthenticator;
  apiPrefix: string;
  heartbeatMs?: number;
}

/** The operator's feed, under `apiPrefix`. */
export async function eventRoutes(app: FastifyInstance, options: EventRoutesOptions): Promise<void> {
  const streams = new EventStreams(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  // In a cluster a ticket goes through the shared store, so the node that issued it and the one a
  // load balancer sends the stream to need not be the same.
  const { host } = options;
  const tickets: Tickets = host.clustered
    ? { issue: () => host.issueTicket('events-ticket', TICKET_TTL_MS), redeem: (t) => host.redeemTicket('events-ticket', t) }
    : new TicketBook();
  app.addHook('preClose', async () => streams.closeAll());

  app.post(`${options.apiPrefix}/events/ticket`, {
    onRequest: options.authenticate,
    schema: { summary: 'A single-use ticket, valid 30 s, for opening the event stream from a browser', response: responses({ 201: TicketSchema }) },
  }, async (_request, reply) => {
    return reply.status(201).header('cache-control', 'no-store').send(await tickets.issue());
  });

  app.withTypeProvider<TypeBoxTypeProvider>().get(`${options.apiPrefix}/events`, {
    schema: {
      summary: 'Server-sent events: installed, enabled, disabled, removed, state, config; log with ?logs= (Bearer token, or ?ticket=)',
      querystring: Type.Object({
        ticket: Type.Optional(Type.String()),
        logs: Type.Optional(Type.String({
          minLength: 1,
          maxLength: 190,
          description: "Also send this node's plugin log records as 'log' events: of one plugin (its id), or of all ('1')",
        })),
      }),
      response: responses(nonJson(200, 'The feed', 'text/event-stream')),
    },
  }, async (request, reply) => {
    const { ticket, logs } = request.query;
    if (ticket) {
      if (!(await tickets.redeem(ticket))) throw Errors.EVENTS_TICKET_INVALID();
    } else {
      await options.authenticate(request, reply);
    }
    const stream = streams.start(request, reply);
    followHost(options.host, stream, logs === '1' ? ALL_LOGS : logs);
  });
}

/**
 * Relays the host's events to one stream. The host reports enabling and
 * disabling only as state changes, so this tracks each plugin's `enabled`
 * flag and sends `enabled`/`disabled` when it flips, before the state change
 * that revealed it. A queue keeps the events in the host's order.
 */
function followHost(host: PluginHost, stream: EventStream, logsOf?: string): void {
  const enabled = new Map<string, boolean>();
  let queue: Promise<void> = host.list().then((plugins) => {
    for (const p of plugins) enabled.set(p.id, p.enabled);
    stream.send('ready', { plugins: plugins.length, nodeId: host.nodeId });
  });
  const then = (step: () => Promise<void> | void) => {
    queue = queue.then(step).catch(() => undefined);
  };
  const noteEnabled = (info: PluginInfo) => {
    const before = enabled.get(info.id);
    enabled.set(info.id, info.enabled);
    if (before !== undefined && before !== info.enabled) stream.send(info.enabled ? 'enabled' : 'disabled', { pluginId: info.id });
  };

  const onState = (change: StateChange) =>
    then(async () => {
      const info = await host.get(change.pluginId).catch(() => null);
      if (info) noteEnabled(info);
      // On a shared store every node's state changes arrive here; nodeId says whose.
      stream.send('state', { pluginId: change.pluginId, state: change.state, lastError: change.lastError, nodeId: change.nodeId ?? host.nodeId });
    });
  const onInstalled = (info: PluginInfo) =>
    then(() => {
      noteEnabled(info);
      stream.send('installed', { pluginId: info.id, version: info.version, state: info.state, enabled: info.enabled });
    });
  const onRemoved = (id: string) =>
    then(() => {
      enabled.delete(id);
      stream.send('removed', { pluginId: id });
    });
  // Only the id: the values may hold secrets, and a client that shows them asks the masked API.
  const onConfig = (id: string) => then(() => stream.send('config', { pluginId: id }));

  // Log records only where asked for: a chatty plugin must not flood every console. Queued like
  // the rest, so a host line ("restarting in ...") and the state change beside it keep their order.
  const onLog = ({ pluginId, level, message, fields, time, source }: PluginLogEntry) => {
    if (logsOf === ALL_LOGS || logsOf === pluginId) then(() => stream.send('log', { pluginId, level, message, fields, time, source }));
  };

  const stops = [follow(host, 'state', onState), follow(host, 'installed', onInstalled), follow(host, 'removed', onRemoved), follow(host, 'config', onConfig)];
  if (logsOf) stops.push(follow(host, 'log', onLog));
  stream.onClose(() => {
    for (const stop of stops) stop();
  });
}
