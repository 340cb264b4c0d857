/**
 * The admin REST API (under /api/v1 by default): install, list, enable,
 * disable, remove, configure plugins and list the nodes here; read and follow
 * their logs (log-routes.ts); fire hooks and publish events (hook-routes.ts). Every route needs
 * the admin token; every error is the catalog's JSON shape.
 */
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Errors, PlughostError } from '../errors';
import type { PluginHost } from '../runtime';
import type { AdminAuthenticator } from './auth';
import { hookRoutes } from './hook-routes';
import { logRoutes } from './log-routes';
import { ClusterSchema, ConfigSchema, IdParams, InstalledSchema, PluginDetailSchema, PluginSchema, responses } from './schemas';
import { requestTempDir, saveStream } from './upload';
import { download } from './url-download';
import type { UrlGuard } from './url-guard';

export interface AdminRoutesOptions {
  host: PluginHost;
  authenticate: AdminAuthenticator;
  urlGuard: UrlGuard;
  maxUploadBytes: number;
  urlTimeoutMs: number;
  /** Heartbeats of the log streams. */
  heartbeatMs?: number;
}

const RAW_BUNDLE_TYPES = ['application/gzip', 'application/x-gzip', 'application/octet-stream'];
const PLUGIN = responses({ 200: PluginSchema });
const CONFIG = responses({ 200: ConfigSchema });
const INSTALLED = responses({ 201: InstalledSchema });

export async function adminRoutes(untyped: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  const { host } = options;
  app.addHook('onRequest', options.authenticate);
  await app.register(multipart, {
    limits: { fileSize: options.maxUploadBytes + 1, files: 2, fields: 4, fieldSize: 64 * 1024, parts: 6 },
    throwFileSizeLimit: false,
  });
  for (const type of RAW_BUNDLE_TYPES) app.addContentTypeParser(type, (_req, payload, done) => done(null, payload));

  app.post('/plugins', {
    schema: {
      summary: 'Install a bundle: multipart field "plugin" (optional "signature"), or a raw application/gzip body',
      querystring: Type.Object({ force: Type.Optional(Type.Boolean({ description: 'Replace an installed plugin with the same id' })) }),
      response: INSTALLED,
    },
  }, async (request, reply) => {
    const tmp = requestTempDir();
    try {
      const { bundle, signature } = await receiveBundle(request, tmp.dir, options.maxUploadBytes);
      const info = await host.install(bundle, { force: request.query.force, signature });
      return reply.status(201).send(info);
    } finally {
      await tmp.remove();
    }
  });

  app.post('/plugins/install-from-url', {
    schema: {
      summary: 'Install a bundle from an http(s) URL',
      body: Type.Object({
        url: Type.String({ minLength: 1, maxLength: 4096 }),
        signature_url: Type.Optional(Type.String({ maxLength: 4096 })),
        force: Type.Optional(Type.Boolean()),
      }, { additionalProperties: false }),
      response: INSTALLED,
    },
  }, async (request, reply) => {
    const { body } = request;
    const tmp = requestTempDir();
    try {
      const bundle = path.join(tmp.dir, 'bundle.tar.gz');
      const fetchOptions = { timeoutMs: options.urlTimeoutMs, guard: options.urlGuard };
      await download(body.url, bundle, { ...fetchOptions, limit: options.maxUploadBytes, what: `the bundle at ${body.url}`, gzip: true });
      let signature: string | undefined;
      if (body.signature_url) {
        signature = path.join(tmp.dir, 'bundle.tar.gz.sig');
        await download(body.signature_url, signature, { ...fetchOptions, limit: 64 * 1024, what: `the signature at ${body.signature_url}` });
      }
      return reply.status(201).send(await host.install(bundle, { force: body.force, signature }));
    } finally {
      await tmp.remove();
    }
  });

  app.get('/plugins', { schema: { summary: 'List plugins', response: responses({ 200: Type.Array(PluginSchema) }) } }, async () => host.list());
  app.get('/plugins/:id', {
    schema: { summary: "One plugin, with each node's observed state", params: IdParams, response: responses({ 200: PluginDetailSchema }) },
  }, async (request) => host.describe(request.params.id));
  app.post('/plugins/:id/enable', {
    schema: {
      summary: 'Enable (start) a plugin; with ?inspect=, under the Node inspector (a server started with --allow-inspect)',
      params: IdParams,
      querystring: Type.Object({
        inspect: Type.Optional(Type.String({ description: 'A loopback port, or 127.0.0.1:<port>, for the Node inspector (0: a free port); the plugin restarts under it until it is next stopped' })),
      }),
      response: PLUGIN,
    },
  }, async (request) => host.enable(request.params.id, { inspect: request.query.inspect }));
  app.post('/plugins/:id/disable', { schema: { summary: 'Disable (stop) a plugin', params: IdParams, response: PLUGIN } }, async (request) => host.disable(request.params.id));
  app.delete('/plugins/:id', {
    schema: { summary: 'Remove a plugin and its data', params: IdParams, response: responses({ 204: Type.Null({ description: 'Removed' }) }) },
  }, async (request, reply) => {
    await host.remove(request.params.id);
    return reply.status(204).send(null);
  });
  app.get('/plugins/:id/config', { schema: { summary: 'Configuration, secrets masked', params: IdParams, response: CONFIG } }, async (request) =>
    host.getConfig(request.params.id),
  );
  app.put('/plugins/:id/config', {
    schema: { summary: 'Replace the configuration (validated against the settings schema); answers it, secrets masked', params: IdParams, body: ConfigSchema, response: CONFIG },
  }, async (request) => host.setConfig(request.params.id, request.body));
  app.get('/cluster', {
    schema: { summary: 'This node and every node sharing its database, with heartbeat ages', response: responses({ 200: ClusterSchema }) },
  }, async () => host.cluster());
  await app.register(logRoutes, { host, heartbeatMs: options.heartbeatMs });
  await app.register(hookRoutes, { host });
}

/** The bundle (and optional signature) from a multipart form or a raw gzip body, saved to `dir`. */
async function receiveBundle(request: FastifyRequest, dir: string, limit: number): Promise<{ bundle: string; signature?: string }> {
  const bundle = path.join(dir, 'bundle.tar.gz');
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (RAW_BUNDLE_TYPES.includes(type)) {
    await saveStream(request.body as Readable, bundle, limit, 'the bundle');
    return { bundle };
  }
  if (!request.isMultipart()) throw Errors.UPLOAD_BAD_CONTENT_TYPE(type || '(none)');
  if (!/;\s*boundary=[^;\s]/i.test(request.headers['content-type'] ?? '')) throw Errors.UPLOAD_NO_BOUNDARY();
  let gotBundle = false;
  let signature: string | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file' && part.fieldname === 'plugin') {
        await saveStream(part.file, bundle, limit, 'the bundle');
        gotBundle = true;
      } else if (part.fieldname === 'signature') {
        signature = path.join(dir, 'bundle.tar.gz.sig');
        if (part.type === 'file') await saveStream(part.file, signature, 64 * 1024, 'the signature');
        else await saveStream(Readable.from([Buffer.from(String(part.value))]), signature, 64 * 1024, 'the signature');
      } else if (part.type === 'file') {
        part.file.resume();
      }
    }
  } catch (err) {
    // Anything the multipart parser refuses is the client's body, never a server fault.
    if (err instanceof PlughostError) throw err;
    throw Errors.UPLOAD_INCOMPLETE((err as Error).message);
  }
  if (!gotBundle) throw Errors.UPLOAD_MISSING('plugin');
  return { bundle, signature };
}
