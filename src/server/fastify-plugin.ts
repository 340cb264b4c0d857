/**
 * plughost as a Fastify plugin: the admin API, plugin HTTP routes, static
 * files, /healthz and /metrics. An integrator registers it in their own app,
 * under any prefix: `app.register(plughostRoutes, { host, adminToken, prefix: '/ext' })`.
 */
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Errors, PlughostError } from '../errors';
import type { PluginHost } from '../runtime';
import { adminRoutes } from './admin-routes';
import { adminAuthenticator, checkAdminToken } from './auth';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle';
import { metricsHandler } from './metrics-route';
import { openApi } from './openapi';
import { pluginHttpRoutes } from './plugin-http';
import { closeAfterUnreadBody } from './http-limits';
import { errorBody, fromFastifyError, sendError } from './replies';
import { HealthSchema, nonJson, responses } from './schemas';
import { UrlGuard, type UrlGuardOptions } from './url-guard';
import { strictValidatorCompiler } from './validator';
import { webSide, type WebappAccess } from './webapp-routes';

export interface PlughostRoutesOptions {
  host: PluginHost;
  adminToken: string;
  /** Largest bundle accepted by upload or URL install. Default 50 MiB (the bundle limit). */
  maxUploadBytes?: number;
  /** Time allowed for install-from-url. Default 60 s. */
  urlTimeoutMs?: number;
  /** Which internal hosts install-from-url may reach, and how many redirects it follows. Default: public addresses only, 5 redirects. */
  installFromUrl?: UrlGuardOptions;
  /** Throttle on failed admin authentication per client address. Default 10 failures per 60 s. */
  authThrottle?: AuthThrottleOptions;
  /**
   * GET /metrics here behind the admin token ("admin-token", the default), or
   * not at all ("off", when the metrics have a listener of their own).
   */
  metrics?: 'admin-token' | 'off';
  /** Maps a request to the user id plugins see in Plughost-User-Id; null for anonymous. */
  authenticate?: (request: FastifyRequest) => Promise<string | null | undefined> | string | null | undefined;
  /** Where the admin API lives, relative to the plugin's prefix. Default "/api/v1". */
  apiPrefix?: string;
  /** Who may list and load plugins' client bundles; default everyone (they are what every page loads). */
  webappAccess?: WebappAccess;
  /** Interval of heartbeats on the event streams. Default 15 s. */
  heartbeatMs?: number;
}

export const plughostRoutes: FastifyPluginAsync<PlughostRoutesOptions> = async (app: FastifyInstance, options) => {
  const { host } = options;
  const apiPrefix = options.apiPrefix ?? '/api/v1';
  checkAdminToken(options.adminToken, 'the adminToken option');
  const authenticate = adminAuthenticator(options.adminToken, new AuthThrottle(options.authThrottle));
  // Unknown body fields are refused, not silently dropped (Fastify's default ajv removes them).
  app.setValidatorCompiler(strictValidatorCompiler);
  app.setErrorHandler((err: FastifyError | PlughostError, request, reply) => {
    if (err instanceof PlughostError) return reply.status(err.status).send(errorBody(err));
    const { status, body } = fromFastifyError(err as FastifyError);
    if (status >= 500) request.log.error({ err }, 'request failed');
    return reply.status(status).send(body);
  });
  closeAfterUnreadBody(app);
  app.setNotFoundHandler((request, reply) => sendError(reply, Errors.NOT_FOUND(`route ${request.method} ${request.url.split('?')[0]}`)));
  // Before any route: the document is collected from the routes as they are declared.
  await openApi(app, { version: host.hostVersion, apiPrefix });

  app.get('/healthz', { schema: { summary: 'Liveness, and how many plugins are in each state', security: [], response: responses({ 200: HealthSchema }) } }, async () => {
    const plugins = await host.list();
    const states: Record<string, number> = {};
    for (const p of plugins) states[p.state] = (states[p.state] ?? 0) + 1;
    return { status: 'ok', version: host.hostVersion, plugins: states };
  });
  if (options.metrics !== 'off') {
    app.get('/metrics', {
      onRequest: authenticate,
      schema: { summary: 'Prometheus metrics (admin token, unless served on a listener of its own)', response: responses(nonJson(200, 'Prometheus text format', 'text/plain')) },
    }, metricsHandler(host));
  }

  await app.register(adminRoutes, {
    prefix: apiPrefix,
    host,
    authenticate,
    urlGuard: new UrlGuard(options.installFromUrl),
    maxUploadBytes: options.maxUploadBytes ?? 50 * 1024 * 1024,
    urlTimeoutMs: options.urlTimeoutMs ?? 60_000,
    heartbeatMs: options.heartbeatMs,
  });
  await app.register(webSide, { routes: options, apiPrefix, authenticate });
  await app.register(pluginHttpRoutes, { host, authenticate: options.authenticate });
};
