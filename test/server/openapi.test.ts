/**
 * The OpenAPI document is the REST contract: every route plughost declares is
 * in it (except the ones listed below as deliberately hidden), and real answers
 * of a running server validate against its response schemas. Response schemas
 * also serialize, so answers are compared with the runtime's own values: a
 * field the schema forgot would be silently dropped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import Fastify, { type RouteOptions } from 'fastify';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { plughostRoutes } from '../../src/server';
import { errorBody } from '../../src/server/replies';
import { PlughostError } from '../../src/errors';
import { tempDir } from '../helpers';
import { AUTH, TOKEN, pluginBundle, testServer, upload, type TestServer } from './helpers';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };

/** Routes left out of the document on purpose, as `METHOD url` (url as declared, with the app's prefix). */
const HIDDEN = [
  // A plugin's own HTTP routes: its contract, not plughost's.
  'ALL /ext/plugins/:id',
  'ALL /ext/plugins/:id/*',
  // Static files answer every method, as they always did; only GET (and its HEAD) is the contract.
  'OTHER /ext/plugins/:id/public/*',
  // The admin console's pages are for people.
  'GET /ext/admin',
  'GET /ext/admin/',
  'GET /ext/admin/:file',
];

/** `/a/:id/*` as the document writes it: `/a/{id}/{*}`. */
const docPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');

describe('every route is in the document', () => {
  test('walks the routes of plughostRoutes, mounted under a prefix, and finds each in the document or in HIDDEN', async () => {
    const work = tempDir();
    const host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }) });
    const app = Fastify();
    const routes: RouteOptions[] = [];
    app.addHook('onRoute', (route) => {
      routes.push(route);
    });
    try {
      await app.register(plughostRoutes, { host, adminToken: TOKEN, prefix: '/ext' });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/ext/api/v1/openapi.json`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as Doc;
      const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
      const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
      const missing: string[] = [];
      const hidden = new Set<string>();
      for (const route of routes) {
        const methods = ([] as string[]).concat(route.method);
        // Fastify adds a HEAD route beside each GET; the GET stands for both.
        if (methods.length === 1 && methods[0] === 'HEAD' && gets.has(route.url)) continue;
        const key = methods.length > 2 ? (methods.includes('GET') ? 'ALL' : 'OTHER') : methods.join(',');
        if (HIDDEN.includes(`${key} ${route.url}`)) {
          hidden.add(`${key} ${route.url}`);
          continue;
        }
        for (const m of methods) if (!documented.has(`${m} ${docPath(route.url)}`)) missing.push(`${m} ${route.url}`);
      }
      expect(missing).toEqual([]);
      // Every entry of HIDDEN is a real route, so the list cannot hide a typo.
      expect([...hidden].sort()).toEqual([...HIDDEN].sort());
      // And nothing hidden leaked into the document.
      expect(Object.keys(doc.paths)).not.toContain('/ext/plugins/{id}/{*}');
    } finally {
      await app.close();
      await host.close();
      work.cleanup();
    }
  });
});

describe('real answers against the document', () => {
  let server: TestServer;
  let bundle: string;
  let doc: Doc;
  const ajv = new Ajv({ strict: false, allErrors: true });
  const ID = 'com.test.openapi';

  beforeAll(async () => {
    server = await testServer();
    bundle = await pluginBundle(server.work, ID, 'runtime/contract-plugin.js', {
      description: 'a plugin with a description',
      settings_schema: { settings: [{ key: 'greeting', type: 'text', default: 'hi' }, { key: 'token', type: 'secret' }, { key: 'count', type: 'number' }] },
    });
    doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as Doc;
  });
  afterAll(() => server.stop());

  /** Sends a request, validates the answer against the document's schema for its path, method and status, and returns its body. */
  async function call(method: string, template: string, url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${server.url}${url}`, { method, ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
    const text = await res.text();
    const body = text ? JSON.parse(text) : undefined;
    const responses = doc.paths[template]?.[method.toLowerCase()]?.responses;
    expect([method, template, responses !== undefined]).toEqual([method, template, true]);
    const entry = responses[String(res.status)] ?? responses[`${String(res.status)[0]}XX`];
    expect([method, url, res.status, entry !== undefined]).toEqual([method, url, res.status, true]);
    const schema = entry.content?.['application/json']?.schema;
    if (res.status === 204) expect(text).toBe('');
    else {
      expect([url, schema !== undefined]).toEqual([url, true]);
      const validate = ajv.compile(schema!);
      expect([method, url, validate(body) ? 'valid' : validate.errors]).toEqual([method, url, 'valid']);
    }
    return { status: res.status, body };
  }
  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** What the runtime returned, as JSON.stringify (no schema) would send it. */
  const plain = (value: unknown) => JSON.parse(JSON.stringify(value));
  /** A plugin as the runtime has it; updatedAt moves on its own while a plugin starts. */
  const asInfo = (value: unknown) => ({ ...plain(value), updatedAt: expect.any(Number) });

  test('the Plugin schema has every field of a running plugin, and the id rule of the manifest', async () => {
    const res = await upload(server.url, bundle);
    expect(res.status).toBe(201);
    await server.host.enable(ID);
    const info = plain(await server.host.get(ID));
    const schema = doc.paths['/api/v1/plugins/{id}'].get.responses['200'].content!['application/json'].schema as {
      properties: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(schema.properties).sort()).toEqual(expect.arrayContaining(Object.keys(info).sort()));
    expect(Object.keys(info)).toEqual(expect.arrayContaining(['description', 'hasServer', 'hasWebapp', 'installedAt', 'updatedAt', 'pid']));
    expect(schema.properties.id).toMatchObject({ minLength: 3, maxLength: 190, pattern: '^[a-zA-Z0-9._-]+$' });
    await server.host.remove(ID);
  });

  test('install, list, get, enable, config get/put, logs, disable, remove, and errors: valid, and nothing dropped', async () => {
    const installed = await call('POST', '/api/v1/plugins', '/api/v1/plugins', { body: form(bundle) });
    expect(installed.status).toBe(201);
    expect(installed.body).toEqual({ ...asInfo(await server.host.get(ID)), warnings: [] });

    const enabled = await call('POST', '/api/v1/plugins/{id}/enable', `/api/v1/plugins/${ID}/enable`);
    expect(enabled.body).toEqual(asInfo(await server.host.get(ID)));
    expect((enabled.body as { pid?: number }).pid).toEqual(expect.any(Number));
    expect((await call('GET', '/api/v1/plugins', '/api/v1/plugins')).body).toEqual((await server.host.list()).map(asInfo));
    const detail = (await call('GET', '/api/v1/plugins/{id}', `/api/v1/plugins/${ID}`)).body;
    expect(detail).toEqual(asInfo(await server.host.describe(ID)));
    expect(detail).toMatchObject({ state: 'running', nodes: [{ nodeId: server.host.nodeId, state: 'running', lastError: null, updatedAt: expect.any(Number) }] });

    const saved = await call('PUT', '/api/v1/plugins/{id}/config', `/api/v1/plugins/${ID}/config`, json({ greeting: 'yo', token: 'sekrit', count: 3 }));
    expect(saved.body).toEqual(plain(await server.host.getConfig(ID)));
    expect(Object.keys(saved.body as object).sort()).toEqual(['count', 'greeting', 'token']);
    expect((await call('GET', '/api/v1/plugins/{id}/config', `/api/v1/plugins/${ID}/config`)).body).toEqual(saved.body);

    const logs = await call('GET', '/api/v1/plugins/{id}/logs', `/api/v1/plugins/${ID}/logs?limit=100`);
    expect(logs.body).toEqual(plain(server.host.logs(ID, 100)));
    expect((logs.body as unknown[]).length).toBeGreaterThan(0);

    // An error with details: the body is the catalog's, details and all.
    const bad = { greeting: 5, nope: true };
    const refused = await call('PUT', '/api/v1/plugins/{id}/config', `/api/v1/plugins/${ID}/config`, json(bad));
    expect(refused.status).toBe(400);
    const direct = await server.host.setConfig(ID, bad).then(() => null, (err: PlughostError) => plain(errorBody(err)));
    expect(refused.body).toEqual(direct);
    expect((refused.body as { error: { details: { problems: unknown[] } } }).error.details.problems.length).toBeGreaterThan(0);

    expect((await call('POST', '/api/v1/plugins', '/api/v1/plugins', { body: form(bundle) })).status).toBe(409);
    expect((await call('GET', '/api/v1/plugins/{id}', '/api/v1/plugins/com.test.nobody')).status).toBe(404);
    expect((await call('GET', '/api/v1/plugins/{id}/logs', `/api/v1/plugins/${ID}/logs?limit=0`)).status).toBe(400);
    expect((await call('POST', '/api/v1/plugins/install-from-url', '/api/v1/plugins/install-from-url', json({}))).status).toBe(400);
    expect((await call('GET', '/api/v1/plugins', '/api/v1/plugins', { headers: { authorization: 'Bearer nope' } })).status).toBe(403);

    expect((await call('POST', '/api/v1/plugins/{id}/disable', `/api/v1/plugins/${ID}/disable`)).body).toEqual(asInfo(await server.host.get(ID)));
    expect((await call('DELETE', '/api/v1/plugins/{id}', `/api/v1/plugins/${ID}`)).status).toBe(204);
  });

  test('GET /cluster: this node, listed with its version and a fresh heartbeat; admin token required', async () => {
    const { body } = await call('GET', '/api/v1/cluster', '/api/v1/cluster');
    expect(body).toEqual({
      nodeId: server.host.nodeId,
      nodes: [{ nodeId: server.host.nodeId, version: server.host.hostVersion, startedAt: server.host.startedAt, heartbeatAgeMs: expect.any(Number) }],
    });
    expect((body as { nodes: Array<{ heartbeatAgeMs: number }> }).nodes[0].heartbeatAgeMs).toBeLessThan(60_000);
    expect((await call('GET', '/api/v1/cluster', '/api/v1/cluster', { headers: { authorization: 'Bearer nope' } })).status).toBe(403);
  });

  test('hook calls, notify, filter, publishing and filtered logs: answers and errors valid, and nothing dropped', async () => {
    expect((await call('POST', '/api/v1/plugins', '/api/v1/plugins', { body: form(bundle) })).status).toBe(201);
    await server.host.enable(ID);
    const hook = (name: string) => `/api/v1/plugins/${ID}/hooks/${name}`;
    const called = await call('POST', '/api/v1/plugins/{id}/hooks/{hook}', hook('Append'), json({ payload: { text: 'a' }, context: { userId: 'u', values: { k: 'v' } } }));
    expect(called.body).toEqual(plain(await server.host.callHook(ID, 'Append', { text: 'a' })));
    const notified = await call('POST', '/api/v1/hooks/{hook}/notify', '/api/v1/hooks/Notify/notify', json({ payload: {} }));
    expect(notified.body).toEqual({ outcomes: [{ pluginId: ID, ok: true, durationMs: expect.any(Number) }] });
    const filtered = await call('POST', '/api/v1/hooks/{hook}/filter', '/api/v1/hooks/Append/filter', json({ payload: { text: 'reject-me' } }));
    expect(filtered.body).toEqual({ ...plain(await server.host.filter('Append', { text: 'reject-me' })), steps: [{ pluginId: ID, outcome: 'rejected', durationMs: expect.any(Number) }] });
    expect((await call('POST', '/api/v1/events', '/api/v1/events', json({ topic: 'docs.checked', payload: [1] }))).body).toEqual({ topic: 'docs.checked', nodeId: server.host.nodeId });
    const logs = await call('GET', '/api/v1/plugins/{id}/logs', `/api/v1/plugins/${ID}/logs?level=info&limit=5`);
    expect(logs.body).toEqual(plain(server.host.logs(ID).filter((e) => e.level !== 'trace' && e.level !== 'debug').slice(-5)));

    expect((await call('POST', '/api/v1/plugins/{id}/hooks/{hook}', hook('Nope'), json({ payload: 1 }))).status).toBe(404);
    expect((await call('POST', '/api/v1/plugins/{id}/hooks/{hook}', hook('Append'), json({ context: {} }))).status).toBe(400);
    expect((await call('POST', '/api/v1/events', '/api/v1/events', json({ topic: 'x' }))).status).toBe(400);
    await server.host.disable(ID);
    expect((await call('POST', '/api/v1/plugins/{id}/hooks/{hook}', hook('Append'), json({ payload: 1 }))).status).toBe(409);
    await server.host.remove(ID);
  });

  test('the health and web-side answers validate too', async () => {
    expect((await call('GET', '/healthz', '/healthz')).body).toMatchObject({ status: 'ok' });
    await call('GET', '/api/v1/plugins/webapp', '/api/v1/plugins/webapp');
    await call('POST', '/api/v1/events/ticket', '/api/v1/events/ticket');
  });
});

function form(bundle: string): FormData {
  const f = new FormData();
  f.append('plugin', new Blob([fs.readFileSync(bundle)]), path.basename(bundle));
  return f;
}
