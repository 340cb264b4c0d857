/**
 * The admin REST API (under /api/v1 by default): install, list, enable,
 * disable, remove, configure, and read the logs of plugins. Every route needs
 * the admin token; every error is the catalog's JSON shape.
 */
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Errors } from '../errors';
import type { PluginHost } from '../runtime';
import type { AdminAuthenticator } from './auth';
import { requestTempDir, saveStream } from './upload';
import { download } from './url-download';
import type { UrlGuard } from './url-guard';

export interface AdminRoutesOptions {
  host: PluginHost;
  authenticate: AdminAuthenticator;
  urlGuard: UrlGuard;
  maxUploadBytes: number;
  urlTimeoutMs: number;
}

const RAW_BUNDLE_TYPES = ['application/gzip', 'application/x-gzip', 'application/octet-stream'];
const ID_PARAMS = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 190 } }, required: ['id'] } as const;

export async function adminRoutes(app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  const { host } = options;
  app.addHook('onRequest', options.authenticate);
  await app.register(multipart, {
    limits: { fileSize: options.maxUploadBytes + 1, files: 2, fields: 4, fieldSize: 64 * 1024, parts: 6 },
    throwFileSizeLimit: false,
  });
  for (const type of RAW_BUNDLE_TYPES) app.addContentTypeParser(type, (_req, payload, done) => done(null, payload));

  app.post('/plugins', async (request, reply) => {
    const force = (request.query as { force?: string }).force === 'true';
    const tmp = requestTempDir();
    try {
      const { bundle, signature } = await receiveBundle(request, tmp.dir, options.maxUploadBytes);
      const info = await host.install(bundle, { force, signature });
      return reply.status(201).send(info);
    } finally {
      await tmp.remove();
    }
  });

  app.post('/plugins/install-from-url', {
    schema: {
      body: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: { url: { type: 'string', minLength: 1, maxLength: 4096 }, signature_url: { type: 'string', maxLength: 4096 }, force: { type: 'boolean' } },
      },
    },
  }, async (request, reply) => {
    const body = request.body as { url: string; signature_url?: string; force?: boolean };
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

  app.get('/plugins', async () => host.list());
  app.get('/plugins/:id', { schema: { params: ID_PARAMS } }, async (request) => host.get((request.params as { id: string }).id));
  app.post('/plugins/:id/enable', { schema: { params: ID_PARAMS } }, async (request) => host.enable((request.params as { id: string }).id));
  app.post('/plugins/:id/disable', { schema: { params: ID_PARAMS } }, async (request) => host.disable((request.params as { id: string }).id));
  app.delete('/plugins/:id', { schema: { params: ID_PARAMS } }, async (request, reply) => {
    await host.remove((request.params as { id: string }).id);
    return reply.status(204).send();
  });
  app.get('/plugins/:id/config', { schema: { params: ID_PARAMS } }, async (request) => host.getConfig((request.params as { id: string }).id));
  app.put('/plugins/:id/config', { schema: { params: ID_PARAMS, body: { type: 'object' } } }, async (request) =>
    host.setConfig((request.params as { id: string }).id, request.body),
  );
  app.get('/plugins/:id/logs', {
    schema: { params: ID_PARAMS, querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 10_000 } } } },
  }, async (request) => {
    const { id } = request.params as { id: string };
    await host.get(id);
    return host.logs(id, (request.query as { limit?: number }).limit);
  });
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
    const e = err as { code?: string; message: string };
    if (e.code?.startsWith('FST_')) throw Errors.UPLOAD_INCOMPLETE(e.message);
    throw err;
  }
  if (!gotBundle) throw Errors.UPLOAD_MISSING('plugin');
  return { bundle, signature };
}
