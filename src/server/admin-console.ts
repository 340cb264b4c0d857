/**
 * The admin console at `/admin`: static files from the package's `webapp/`
 * folder, no framework and no build step. The page holds the admin token (in
 * sessionStorage), so it is served with a strict Content-Security-Policy: only
 * its own scripts and styles, requests only to this origin, never framed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Errors } from '../errors';

const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

/** The `webapp/` folder: beside `src/` when run from source, beside `dist/` when built. */
export function webappDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'webapp');
    if (fs.existsSync(path.join(candidate, 'plughost.mjs'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`plughost's webapp/ folder was not found above ${__dirname}`);
  }
}

/** Sends a file below `webapp/`; `relative` comes from this code, never from a request. */
export function webAsset(reply: FastifyReply, relative: string): FastifyReply {
  const file = path.join(webappDir(), relative);
  return reply
    .header('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream')
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .send(fs.readFileSync(file));
}

export interface AdminConsoleOptions {
  /** Where the admin API lives, relative to this plugin's prefix. */
  apiPrefix: string;
}

export async function adminConsole(app: FastifyInstance, options: AdminConsoleOptions): Promise<void> {
  const dir = path.join(webappDir(), 'admin');
  // Only the files shipped with the console are served; the request never names a path.
  const assets = new Set(fs.readdirSync(dir).filter((f) => /^[a-z-]+\.(js|css)$/.test(f)));
  const base = app.prefix;
  const page = fs
    .readFileSync(path.join(dir, 'index.html'), 'utf8')
    .replaceAll('%BASE%', escapeAttribute(base))
    .replaceAll('%API_BASE%', escapeAttribute(`${base}${options.apiPrefix}`));

  const secure = (reply: FastifyReply) =>
    reply.header('content-security-policy', CONSOLE_CSP).header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');

  const index = async (_request: unknown, reply: FastifyReply) =>
    secure(reply).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  // A page for people, not part of the API: left out of the OpenAPI document.
  const hide = { schema: { hide: true } };
  app.get('/admin', hide, index);
  app.get('/admin/', hide, index);
  app.get<{ Params: { file: string } }>('/admin/:file', hide, async (request, reply) => {
    const { file } = request.params;
    if (!assets.has(file)) throw Errors.NOT_FOUND(`admin console file ${JSON.stringify(file)}`);
    return webAsset(secure(reply), path.join('admin', file));
  });
}

function escapeAttribute(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
