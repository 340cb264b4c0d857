/**
 * /metrics on a listener of its own (`plughost serve --metrics-port`), for a
 * Prometheus that cannot send the admin token. It serves nothing else and
 * binds loopback unless told otherwise, since the metrics name every plugin.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Errors } from '../errors';
import type { PluginHost } from '../runtime';
import { sendError } from './replies';

export interface MetricsListenerOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** The Prometheus text of the host's registry. */
export function metricsHandler(host: PluginHost) {
  return async (_request: FastifyRequest, reply: FastifyReply): Promise<string> => {
    reply.type(host.metrics.registry.contentType);
    return host.metrics.registry.metrics();
  };
}

export async function startMetricsListener(host: PluginHost, options: MetricsListenerOptions): Promise<MetricsListener> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/metrics', metricsHandler(host));
  app.setNotFoundHandler((request, reply) => sendError(reply, Errors.NOT_FOUND(`route ${request.method} ${request.url.split('?')[0]} (this listener serves only GET /metrics)`)));
  const bind = options.host ?? '127.0.0.1';
  try {
    await app.listen({ port: options.port, host: bind });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { url: `http://${bind.includes(':') ? `[${bind}]` : bind}:${port}`, close: () => app.close() };
}
