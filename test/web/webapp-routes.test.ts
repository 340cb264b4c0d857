/**
 * The web side over HTTP, without a browser: the client bundle list and its
 * cache-safe URLs, a webapp-only plugin end to end, the event feed and its
 * tickets, the bundle stream, listener cleanup, and the console's files.
 */
import * as crypto from 'node:crypto';
import Fastify from 'fastify';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { webappRoutes, type WebappBundle } from '../../src/server/webapp-routes';
import { tempDir } from '../helpers';
import { AUTH, testServer, upload, type TestServer } from '../server/helpers';
import { eventually, openStream, slotBundleSource, webappBundle } from './helpers';

const ID = 'com.example.webonly';
const BUNDLE_URL = new RegExp(`^/plugins/${ID.replace(/\./g, '\\.')}/webapp/[0-9a-f]{20}\\.js$`);

let server: TestServer;
/** Listeners on the host before any stream is open. */
let baseline = 0;

beforeAll(async () => {
  server = await testServer({ routes: { heartbeatMs: 200 } });
  baseline = server.host.listenerCount('state');
});
afterAll(async () => server.stop());

const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}/api/v1${path}`, { ...init, headers: { ...AUTH, ...init.headers } });
const webappList = async (): Promise<WebappBundle[]> => (await fetch(`${server.url}/api/v1/plugins/webapp`)).json() as Promise<WebappBundle[]>;

async function install(version: string, text = 'hi'): Promise<string> {
  const source = slotBundleSource('greeting', text);
  const res = await upload(server.url, await webappBundle(server.work, ID, version, source), '?force=true');
  expect(res.status).toBe(201);
  return source;
}

describe('client bundles', () => {
  afterAll(async () => {
    await api(`/plugins/${ID}`, { method: 'DELETE' });
  });

  test('a webapp-only plugin runs with no process, and its bundle is listed and served immutable', async () => {
    const source = await install('1.0.0');
    expect(await webappList()).toEqual([]);
    const enabled = await (await api(`/plugins/${ID}/enable`, { method: 'POST' })).json();
    expect(enabled).toMatchObject({ id: ID, state: 'running', hasServer: false, hasWebapp: true });
    expect(enabled.pid).toBeUndefined();

    const list = await webappList();
    expect(list).toEqual([{ id: ID, version: '1.0.0', bundleUrl: expect.stringMatching(BUNDLE_URL) }]);
    const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 20);
    expect(list[0].bundleUrl.endsWith(`/${hash}.js`)).toBe(true);

    const res = await fetch(server.url + list[0].bundleUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(source);
  });

  test('the list needs no token; a stale or malformed hash is 404 and not cached', async () => {
    const [before] = await webappList();
    await install('1.1.0', 'upgraded');
    await eventually(async () => (await webappList())[0]?.version === '1.1.0', 10_000, 'upgrade listed');
    const [after] = await webappList();
    expect(after.bundleUrl).not.toBe(before.bundleUrl);

    const stale = await fetch(server.url + before.bundleUrl);
    expect(stale.status).toBe(404);
    expect(stale.headers.get('cache-control')).toBe('no-store');
    expect((await stale.json()).error).toMatchObject({ code: 'PLUGHOST_ERR_NOT_FOUND', message: expect.stringContaining(after.bundleUrl.split('/').pop()!) });
    expect((await fetch(`${server.url}/plugins/${ID}/webapp/nothex.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/plugins/com.example.nobody/webapp/${'0'.repeat(20)}.js`)).status).toBe(404);
    expect((await fetch(server.url + after.bundleUrl)).status).toBe(200);
  });

  test('a disabled plugin is not listed and its bundle is not served', async () => {
    const [current] = await webappList();
    await api(`/plugins/${ID}/disable`, { method: 'POST' });
    expect(await webappList()).toEqual([]);
    expect((await fetch(server.url + current.bundleUrl)).status).toBe(404);
  });
});

describe('the event feed', () => {
  test('needs the token for a ticket; a ticket works once; a bad one is refused', async () => {
    expect((await fetch(`${server.url}/api/v1/events/ticket`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${server.url}/api/v1/events`)).status).toBe(401);
    expect((await openStream(`${server.url}/api/v1/events?ticket=made-up`)).status).toBe(403);

    const res = await api('/events/ticket', { method: 'POST' });
    expect(res.status).toBe(201);
    const { ticket, expiresAt } = (await res.json()) as { ticket: string; expiresAt: number };
    expect(expiresAt).toBeGreaterThan(Date.now());
    const first = await openStream(`${server.url}/api/v1/events?ticket=${ticket}`);
    expect(first).toMatchObject({ status: 200, type: 'text/event-stream; charset=utf-8' });
    await first.reader!.next('ready');
    expect((await openStream(`${server.url}/api/v1/events?ticket=${ticket}`)).status).toBe(403);
    await first.reader!.close();
  });

  test('tells installed, enabled, state, config (without values), disabled, removed; heartbeats; lets go of the host', async () => {
    await eventually(() => server.host.listenerCount('state') === baseline, 5_000, 'earlier streams gone');
    const { reader } = await openStream(`${server.url}/api/v1/events`, AUTH);
    const stream = reader!;
    // The node the stream speaks for: in a cluster, state changes of every node arrive, each with its node id.
    expect(await stream.next('ready')).toMatchObject({ nodeId: server.host.nodeId });
    expect(server.host.listenerCount('state')).toBe(baseline + 1);

    const id = 'com.example.events';
    const schema = { settings: [{ key: 'password', type: 'secret' }] };
    const bundle = await webappBundle(server.work, id, '1.0.0', slotBundleSource('x', 'y'), { settings_schema: schema });
    expect((await upload(server.url, bundle)).status).toBe(201);
    expect(await stream.next('installed')).toEqual({ pluginId: id, version: '1.0.0', state: 'not_running', enabled: false });
    await api(`/plugins/${id}/enable`, { method: 'POST' });
    expect(await stream.next('enabled')).toEqual({ pluginId: id });
    expect(await stream.next('state', 1)).toEqual({ pluginId: id, state: 'running', lastError: null, nodeId: server.host.nodeId });
    await api(`/plugins/${id}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'hunter2' }) });
    expect(await stream.next('config')).toEqual({ pluginId: id });
    await api(`/plugins/${id}/disable`, { method: 'POST' });
    expect(await stream.next('disabled')).toEqual({ pluginId: id });
    await api(`/plugins/${id}`, { method: 'DELETE' });
    expect(await stream.next('removed')).toEqual({ pluginId: id });
    await stream.next('comment');
    expect(JSON.stringify(stream.events)).not.toContain('hunter2');
    const order = stream.events.filter((e) => e.event !== 'comment').map((e) => e.event);
    expect(order.indexOf('enabled')).toBeLessThan(order.indexOf('state'));

    await stream.close();
    await eventually(() => server.host.listenerCount('state') === baseline, 5_000, 'listeners removed');
  });

  test('the bundle stream sends the list at once and again when it changes', async () => {
    const { reader, status } = await openStream(`${server.url}/api/v1/plugins/webapp/events`);
    expect(status).toBe(200);
    const stream = reader!;
    expect(await stream.next('webapp')).toEqual([]);
    const id = 'com.example.streamed';
    await upload(server.url, await webappBundle(server.work, id, '1.0.0', slotBundleSource('x', 'y')));
    await api(`/plugins/${id}/enable`, { method: 'POST' });
    expect(await stream.next('webapp', 1)).toEqual([{ id, version: '1.0.0', bundleUrl: expect.stringContaining(`/plugins/${id}/webapp/`) }]);
    await api(`/plugins/${id}`, { method: 'DELETE' });
    expect(await stream.next('webapp', 2)).toEqual([]);
    await stream.close();
  });
});

test('close() ends open streams instead of waiting for them', async () => {
  const own = await testServer();
  const { reader } = await openStream(`${own.url}/api/v1/events`, AUTH);
  const { reader: bundles } = await openStream(`${own.url}/api/v1/plugins/webapp/events`);
  await reader!.next('ready');
  await bundles!.next('webapp');
  const started = Date.now();
  await own.stop();
  expect(Date.now() - started).toBeLessThan(3_000);
  await reader!.close();
  await bundles!.close();
});

test('webappAccess guards the list, the stream and the bundles, and makes bundles private', async () => {
  const work = tempDir();
  const host = await PluginHost.open({ dataDir: work.dir, logger: pino({ level: 'silent' }) });
  const app = Fastify();
  await app.register(webappRoutes, { host, webappAccess: (request) => request.headers.cookie === 'session=ok' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(base + path, { headers });
  const ok = { cookie: 'session=ok' };
  try {
    const info = await host.install(await webappBundle(work.dir, ID, '1.0.0', slotBundleSource('g', 't')));
    await host.enable(info.id);
    expect((await get('/api/v1/plugins/webapp')).status).toBe(403);
    expect((await get('/api/v1/plugins/webapp/events')).status).toBe(403);
    const [entry] = (await (await get('/api/v1/plugins/webapp', ok)).json()) as WebappBundle[];
    expect((await get(entry.bundleUrl)).status).toBe(403);
    const bundle = await get(entry.bundleUrl, ok);
    expect(bundle.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(await bundle.text()).toContain('registerSlot');
  } finally {
    await app.close();
    await host.close();
    work.cleanup();
  }
});

describe('served files', () => {
  test('the browser module', async () => {
    const res = await fetch(`${server.url}/webapp/plughost.js`);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await res.text()).toContain('export function startPlugins');
  });

  test('the console page, locked down, and only its own files', async () => {
    const page = await fetch(`${server.url}/admin`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    expect(html).toContain('<meta name="plughost-api-base" content="/api/v1">');
    expect(html).toContain('src="/admin/console.js"');
    expect((await fetch(`${server.url}/admin/console.js`)).status).toBe(200);
    expect((await fetch(`${server.url}/admin/index.html`)).status).toBe(404);
    expect((await fetch(`${server.url}/admin/..%2Fplughost.mjs`)).status).toBe(404);
  });
});
