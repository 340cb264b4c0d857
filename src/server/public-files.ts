/**
 * `/plugins/:id/public/*`: files from the bundle's public/ folder, sent by
 * @fastify/static (ETag, Last-Modified, 304, Range, types from the mime
 * database). The path is checked here first, so nothing outside public/ is
 * reachable: not by `..` in any encoding, not by an absolute path, not by a
 * NUL byte, not by a symlink the plugin planted that points out of the folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { Errors } from '../errors';
import type { PluginHost } from '../runtime';
import { nonJson, responses } from './schemas';

const ROUTE = '/plugins/:id/public/*';

type PublicRequest = FastifyRequest<{ Params: { id: string; '*': string } }>;

export async function publicFiles(app: FastifyInstance, options: { host: PluginHost }): Promise<void> {
  // No route of its own and no fixed root: each plugin's public/ folder is the root of its own sendFile.
  // An integrator's app that registered @fastify/static already has sendFile, and it takes a root per call.
  if (!app.hasReplyDecorator('sendFile')) await app.register(fastifyStatic, { serve: false, dotfiles: 'allow', index: false });

  const handler = async (request: PublicRequest, reply: FastifyReply) => {
    const { id, '*': rest } = request.params;
    await options.host.get(id);
    const root = path.join(options.host.pluginDir(id), 'public');
    const file = fileInside(root, rest);
    if (file === null) throw Errors.NOT_FOUND(`static file ${JSON.stringify(rest)}`);
    return reply.header('x-content-type-options', 'nosniff').sendFile(file, root);
  };
  // @fastify/send reports a bad range or a failed precondition as a bare HTTP error: name the file and the input.
  app.setErrorHandler((err: FastifyError & { headers?: Record<string, string> }, request: PublicRequest, reply) => {
    const contentRange = err.headers?.['Content-Range'];
    if (err.statusCode === 416 && contentRange) {
      reply.header('content-range', contentRange);
      throw Errors.RANGE_NOT_SATISFIABLE(request.params['*'], String(request.headers.range), Number(contentRange.split('/')[1]));
    }
    if (err.statusCode === 412) throw Errors.PRECONDITION_FAILED(request.params['*']);
    throw err;
  });
  app.get(ROUTE, {
    schema: {
      summary: "A file from the plugin's public/ folder (ETag, If-None-Match, Range)",
      security: [],
      response: responses(nonJson(200, 'The file, typed by its extension', '*/*')),
    },
  }, handler);
  // Other methods get the file too, as they always did, so public/ paths never reach the plugin; not part of the contract.
  app.route({ method: app.supportedMethods.filter((m) => m !== 'GET' && m !== 'HEAD'), url: ROUTE, schema: { hide: true }, handler });
}

/**
 * The path of a regular file below `root` named by the URL's `relative`
 * (decoded once more, as it always was), relative to `root`; null for
 * anything else.
 */
function fileInside(root: string, relative: string): string | null {
  const decoded = safeDecode(relative);
  if (decoded === null || decoded.includes('\0')) return null;
  const target = path.resolve(root, decoded);
  if (!target.startsWith(root + path.sep)) return null;
  try {
    const real = fs.realpathSync(target);
    if (!real.startsWith(fs.realpathSync(root) + path.sep) || !fs.statSync(real).isFile()) return null;
  } catch {
    return null;
  }
  return path.relative(root, target);
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
