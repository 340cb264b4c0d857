/**
 * The web side of plughost for the integrator's front end: the list of client
 * bundles of running plugins, each bundle at a URL carrying a hash of its
 * content (so browsers may keep it forever), a stream of that list as it
 * changes, and the browser module (`plughost/webapp`) that loads them.
 * `webSide` adds the operator's parts too: the event feed and the admin console.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Errors } from '../errors';
import type { PluginHost } from '../runtime';
import type { PluginInfo } from '../runtime/types';
import { adminConsole, webAsset } from './admin-console';
import type { AdminAuthenticator } from './auth';
import { DEFAULT_HEARTBEAT_MS, EventStreams, eventRoutes, type EventStream } from './events-route';
import { follow } from './host-followers';
import { nonJson, WebappBundleSchema } from './schemas';

/** Hex digits of the content's SHA-256 in a bundle URL: 80 bits, plenty to tell versions apart. */
export const BUNDLE_HASH_LENGTH = 20;
const IMMUTABLE = 'max-age=31536000, immutable';

/** Who may read the client bundles; true lets the request through. */
export type WebappAccess = (request: FastifyRequest) => boolean | Promise<boolean>;

export interface WebappRoutesOptions {
  host: PluginHost;
  /** Where the list and its stream live. Default "/api/v1". */
  apiPrefix?: string;
  /**
   * Default: everyone. The list names only ids, versions and script URLs that
   * every page of the front end loads anyway, and end users hold no admin
   * token. An integrator whose front end is private passes its session check
   * here; bundles are then cached as `private`.
   */
  webappAccess?: WebappAccess;
  /** Heartbeat interval of the event streams. Default 15 s. */
  heartbeatMs?: number;
}

/** One entry of `GET /api/v1/plugins/webapp`. */
export interface WebappBundle {
  id: string;
  version: string;
  /** Absolute path of the bundle on this server, ending in `<content hash>.js`. */
  bundleUrl: string;
}

/**
 * Client bundle list, bundle files, their change stream and the browser module.
 * These routes may be registered alone, under the integrator's own error
 * handler, so their schemas describe successes only.
 */
export async function webappRoutes(app: FastifyInstance, options: WebappRoutesOptions): Promise<void> {
  const { host } = options;
  const apiPrefix = options.apiPrefix ?? '/api/v1';
  const prefix = app.prefix;
  const hashes = new BundleHashes(host);
  const streams = new EventStreams(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  app.addHook('preClose', async () => streams.closeAll());

  const checkAccess = async (request: FastifyRequest) => {
    if (options.webappAccess && !(await options.webappAccess(request))) throw Errors.WEBAPP_FORBIDDEN();
  };
  const list = async (): Promise<WebappBundle[]> => {
    const out: WebappBundle[] = [];
    for (const p of await host.list()) {
      if (!servesBundle(p)) continue;
      const hash = await hashes.of(p).catch((err: unknown) => {
        app.log.warn({ plugin_id: p.id, err: String(err) }, 'client bundle unreadable; left out of the list');
        return null;
      });
      if (hash) out.push({ id: p.id, version: p.version, bundleUrl: `${prefix}/plugins/${encodeURIComponent(p.id)}/webapp/${hash}.js` });
    }
    return out;
  };

  app.get(`${apiPrefix}/plugins/webapp`, {
    schema: { summary: "Client bundles of running plugins (public unless the integrator's webappAccess refuses)", security: [], response: { 200: Type.Array(WebappBundleSchema) } },
  }, async (request, reply) => {
    await checkAccess(request);
    return reply.header('cache-control', 'no-store').send(await list());
  });

  app.get(`${apiPrefix}/plugins/webapp/events`, {
    schema: { summary: 'Server-sent events: the client bundle list, again whenever it changes', security: [], response: nonJson(200, 'event: webapp, data: the list', 'text/event-stream') },
  }, async (request, reply) => {
    await checkAccess(request);
    followBundles(host, streams.start(request, reply), list);
  });

  app.get<{ Params: { id: string; file: string } }>('/plugins/:id/webapp/:file', {
    schema: { summary: 'A client bundle, at the content-hashed URL the list gives', security: [], response: nonJson(200, 'The bundle', 'text/javascript') },
  }, async (request, reply) => {
    await checkAccess(request);
    const { id, file } = request.params;
    const info = await host.get(id);
    const wanted = new RegExp(`^([0-9a-f]{${BUNDLE_HASH_LENGTH}})\\.js$`).exec(file)?.[1];
    const current = servesBundle(info) ? await hashes.of(info) : null;
    if (!wanted || wanted !== current) {
      // A stale hash is refused rather than redirected: an old page must not run a version it never asked for.
      reply.header('cache-control', 'no-store');
      throw Errors.NOT_FOUND(`client bundle ${JSON.stringify(file)} of plugin ${JSON.stringify(id)} (it is ${current ? `${current}.js now` : 'not served while the plugin is not running'})`);
    }
    const cache = options.webappAccess ? 'private' : 'public';
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', `${cache}, ${IMMUTABLE}`)
      .header('x-content-type-options', 'nosniff')
      .send(fs.createReadStream(hashes.fileOf(info)));
  });

  app.get<{ Params: { id: string; file: string } }>(`${apiPrefix}/plugins/:id/icon/:file`, {
    schema: {
      summary: "The manifest's icon, at the URL GET /plugins/:id gives as iconUrl (changes with each install)",
      security: [],
      response: nonJson(200, 'The icon, typed by its extension', 'image/*'),
    },
  }, async (request, reply) => {
    await checkAccess(request);
    const { id, file } = request.params;
    const info = await host.get(id);
    const current = iconName(info);
    if (file !== current) {
      reply.header('cache-control', 'no-store');
      throw Errors.NOT_FOUND(`icon ${JSON.stringify(file)} of plugin ${JSON.stringify(id)} (it is ${current ?? 'not declared by the manifest'})`);
    }
    const cache = options.webappAccess ? 'private' : 'public';
    return reply
      .header('content-type', ICON_TYPES[path.extname(current)])
      .header('cache-control', `${cache}, ${IMMUTABLE}`)
      .header('x-content-type-options', 'nosniff')
      // An SVG opened on its own would run its scripts with this origin's rights: it may only be a picture.
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox")
      .send(fs.createReadStream(insidePluginDir(host, info, info.manifest.icon_path ?? '')));
  });

  app.get('/webapp/plughost.js', {
    schema: { summary: 'The browser module that loads client bundles', security: [], response: nonJson(200, 'An ES module', 'text/javascript') },
  }, async (_request, reply) => webAsset(reply, 'plughost.mjs'));
}

/**
 * Everything the web side offers, for `plughostRoutes`: the client bundles, the
 * operator's feed and the console. The caller's options arrive nested as
 * `routes`, because their own `prefix` (a register option) must not apply twice.
 */
export async function webSide(
  app: FastifyInstance,
  options: { routes: Omit<WebappRoutesOptions, 'apiPrefix'>; apiPrefix: string; authenticate: AdminAuthenticator },
): Promise<void> {
  const { host, webappAccess, heartbeatMs } = options.routes;
  const { apiPrefix, authenticate } = options;
  await app.register(webappRoutes, { host, apiPrefix, webappAccess, heartbeatMs });
  await app.register(eventRoutes, { host, authenticate, apiPrefix, heartbeatMs });
  await app.register(adminConsole, { apiPrefix });
}

/** Icon types served; the content type comes from here, never from the bundle. */
const ICON_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
};

/**
 * The icon's file name in its URL: the installed bundle's hash (the icon is part of it, so it
 * changes only with a new install) and the icon's extension; null when there is no icon of a
 * served type.
 */
export function iconName(p: PluginInfo): string | null {
  const ext = path.extname(p.manifest.icon_path ?? '').toLowerCase();
  return ICON_TYPES[ext] ? `${p.bundleSha256.slice(0, BUNDLE_HASH_LENGTH)}${ext}` : null;
}

/** A file of the plugin's folder named by its manifest (checked at install); never outside the folder. */
function insidePluginDir(host: PluginHost, p: PluginInfo, relative: string): string {
  const root = host.pluginDir(p.id);
  const file = path.resolve(root, relative);
  if (!file.startsWith(root + path.sep)) throw Errors.NOT_FOUND(`file ${JSON.stringify(relative)} of plugin ${JSON.stringify(p.id)}`);
  return file;
}

function servesBundle(p: PluginInfo): boolean {
  return p.enabled && p.state === 'running' && Boolean(p.manifest.webapp?.bundle_path);
}

/** Content hashes, computed once per installed bundle (the bundle's own SHA-256 names the install). */
class BundleHashes {
  private readonly known = new Map<string, { install: string; hash: string }>();

  constructor(private readonly host: PluginHost) {}

  fileOf(p: PluginInfo): string {
    return insidePluginDir(this.host, p, p.manifest.webapp?.bundle_path ?? '');
  }

  async of(p: PluginInfo): Promise<string> {
    const seen = this.known.get(p.id);
    if (seen && seen.install === p.bundleSha256) return seen.hash;
    const digest = crypto.createHash('sha256').update(await fs.promises.readFile(this.fileOf(p))).digest('hex');
    const hash = digest.slice(0, BUNDLE_HASH_LENGTH);
    this.known.set(p.id, { install: p.bundleSha256, hash });
    return hash;
  }
}

/**
 * Sends the bundle list on connect and again whenever it changes. Sending the
 * whole list (it is short) lets a page that missed events while reconnecting
 * converge from the next message alone.
 */
function followBundles(host: PluginHost, stream: EventStream, list: () => Promise<WebappBundle[]>): void {
  let last = '';
  let queue: Promise<void> = Promise.resolve();
  const refresh = () => {
    queue = queue
      .then(async () => {
        const bundles = await list();
        const text = JSON.stringify(bundles);
        if (text !== last) stream.send('webapp', bundles);
        last = text;
      })
      .catch(() => undefined);
  };
  refresh();
  const stops = (['state', 'installed', 'removed'] as const).map((e) => follow(host, e, refresh));
  stream.onClose(() => {
    for (const stop of stops) stop();
  });
}
