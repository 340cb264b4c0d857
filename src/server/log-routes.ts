/**
 * A plugin's log records (admin token, under the admin API's prefix): the
 * recent ones from its ring buffer, and a server-sent event stream that sends
 * those and then every new record as the host gets it, so a follower never
 * polls and never misses a line between two reads. Records the host writes
 * about the plugin (started, restarting, parked, stopped with its exit code)
 * have source "host" and travel in the same stream.
 *
 * On a cluster, both show the answering node's records only.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { PluginHost } from '../runtime';
import type { PluginLogEntry } from '../runtime/types';
import { levelAtLeast, type LogLevel } from '../protocol/log-lines';
import { DEFAULT_HEARTBEAT_MS, EventStreams } from './events-route';
import { follow } from './host-followers';
import { IdParams, LogQuerySchema, LogRecordSchema, nonJson, responses } from './schemas';

/** Records sent before the live ones when the stream's `limit` is not given. */
const DEFAULT_BACKLOG = 100;

export interface LogRoutesOptions {
  host: PluginHost;
  heartbeatMs?: number;
}

export async function logRoutes(untyped: FastifyInstance, options: LogRoutesOptions): Promise<void> {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  const { host } = options;
  const streams = new EventStreams(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  app.addHook('preClose', async () => streams.closeAll());

  app.get('/plugins/:id/logs', {
    schema: {
      summary: 'Recent log records, oldest first, each with its seq; ?before= pages back from a seq, ?level= keeps that level and above',
      params: IdParams,
      querystring: LogQuerySchema,
      response: responses({ 200: Type.Array(LogRecordSchema) }),
    },
  }, async (request) => {
    const { id } = request.params;
    await host.get(id);
    const { limit, level, before } = request.query;
    return before === undefined && level === undefined ? host.logPage(id, limit) : pageAt(host, id, limit, level, before);
  });

  app.get('/plugins/:id/logs/stream', {
    schema: {
      summary: "Server-sent events: the recent records (limit, default 100), then a 'ready' event, then each new record as a 'log' event; 'removed' when the plugin is",
      params: IdParams,
      querystring: LogQuerySchema,
      response: responses(nonJson(200, "One 'log' event per record (data: the record as GET /plugins/:id/logs has it)", 'text/event-stream')),
    },
  }, async (request, reply) => {
    const { id } = request.params;
    const { limit, level } = request.query;
    await host.get(id);
    const stream = streams.start(request, reply);
    const keep = (entry: PluginLogEntry) => entry.pluginId === id && (!level || levelAtLeast(entry.level, level));
    const onLog = (entry: PluginLogEntry) => {
      if (keep(entry)) stream.send('log', entry);
    };
    const onRemoved = (removed: string) => {
      if (removed !== id) return;
      stream.send('removed', { pluginId: id });
      reply.raw.end();
    };
    // Subscribed in the same turn as the buffer is read: no record can fall between the two.
    const stops = [follow(host, 'log', onLog), follow(host, 'removed', onRemoved)];
    stream.onClose(() => {
      for (const stop of stops) stop();
    });
    for (const entry of recent(host, id, limit ?? DEFAULT_BACKLOG, level)) stream.send('log', entry);
    stream.send('ready', { pluginId: id, nodeId: host.nodeId });
  });
}

/** The last `limit` records at `level` or above before `before` (a seq), oldest first, each with its seq. */
function pageAt(host: PluginHost, id: string, limit: number | undefined, level: LogLevel | undefined, before: number | undefined) {
  const all = host.logPage(id, undefined, before).filter((e) => !level || levelAtLeast(e.level, level));
  return limit !== undefined && all.length > limit ? all.slice(-limit) : all;
}

/** The last `limit` records at `level` or above, oldest first. */
function recent(host: PluginHost, id: string, limit: number | undefined, level: LogLevel | undefined): PluginLogEntry[] {
  const all = level ? host.logs(id).filter((e) => levelAtLeast(e.level, level)) : host.logs(id, limit);
  return limit !== undefined && all.length > limit ? all.slice(-limit) : all;
}
