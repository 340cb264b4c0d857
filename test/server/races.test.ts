/**
 * Twenty clients race enable, disable, remove, install and configuration of one plugin over
 * REST while others use its HTTP route. Every answer must be one a client can act on: the
 * operation's success, 404 PLUGIN_NOT_FOUND, 409 busy/exists, 503 disabled or 502 naming the
 * plugin's state. Never a 500, never a store's own error code.
 */
import { until } from '../helpers';
import { AUTH, pluginBundle, testServer, upload, type TestServer } from './helpers';

const ID = 'com.test.race';
const CLIENTS = 20;
const ROUNDS = 4;

const ALLOWED: Record<string, string[]> = {
  enable: ['200', '404 PLUGHOST_ERR_PLUGIN_NOT_FOUND'],
  disable: ['200', '404 PLUGHOST_ERR_PLUGIN_NOT_FOUND'],
  remove: ['204', '404 PLUGHOST_ERR_PLUGIN_NOT_FOUND', '409 PLUGHOST_ERR_PLUGIN_BUSY'],
  install: ['201', '409 PLUGHOST_ERR_PLUGIN_EXISTS', '409 PLUGHOST_ERR_PLUGIN_BUSY'],
  force: ['201', '409 PLUGHOST_ERR_PLUGIN_BUSY'],
  config: ['200', '404 PLUGHOST_ERR_PLUGIN_NOT_FOUND'],
  route: ['200', '404 PLUGHOST_ERR_PLUGIN_NOT_FOUND', '503 PLUGHOST_ERR_PLUGIN_DISABLED', '502 PLUGHOST_ERR_PLUGIN_NOT_RUNNING'],
};
const OPS = ['route', 'enable', 'route', 'disable', 'route', 'remove', 'route', 'install', 'route', 'force', 'route', 'config'];

let server: TestServer;
let bundle: string;

beforeAll(async () => {
  server = await testServer({ hostOptions: { defaults: { restartBackoffMs: 50 } } });
  bundle = await pluginBundle(server.work, ID, 'server/http-plugin.js');
  expect((await upload(server.url, bundle)).status).toBe(201);
  expect((await fetch(`${server.url}/api/v1/plugins/${ID}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
});
afterAll(() => server.stop());

test('a request in progress when its plugin is disabled finishes with the plugin and its API still up', async () => {
  const id = 'com.test.drain';
  expect((await upload(server.url, await pluginBundle(server.work, id, 'server/http-plugin.js'))).status).toBe(201);
  expect((await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  const visit = fetch(`${server.url}/plugins/${id}/visit?ms=300`);
  await until(() => server.host.logs(id).some((l) => l.message === 'visit waiting'), 'the request to reach the plugin');
  const disabled = fetch(`${server.url}/api/v1/plugins/${id}/disable`, { method: 'POST', headers: AUTH });
  const res = await visit;
  expect([res.status, await res.json()]).toEqual([200, { visits: 1 }]);
  expect((await disabled).status).toBe(200);
  expect((await server.host.get(id)).state).toBe('not_running');
});

async function perform(op: string): Promise<Response> {
  const api = (path: string, init: RequestInit) => fetch(`${server.url}/api/v1/plugins/${ID}${path}`, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
  switch (op) {
    case 'enable':
    case 'disable':
      return api(`/${op}`, { method: 'POST' });
    case 'remove':
      return api('', { method: 'DELETE' });
    case 'install':
      return upload(server.url, bundle);
    case 'force':
      return upload(server.url, bundle, '?force=true');
    case 'config':
      return api('/config', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    default:
      return fetch(`${server.url}/plugins/${ID}/visit?ms=20`);
  }
}

async function outcome(res: Response): Promise<string> {
  if (res.ok) {
    await res.arrayBuffer();
    return String(res.status);
  }
  const text = await res.text();
  try {
    return `${res.status} ${(JSON.parse(text) as { error: { code: string } }).error.code}`;
  } catch {
    return `${res.status} ${text.slice(0, 80)}`;
  }
}

test(`${CLIENTS} clients × ${ROUNDS} rounds of lifecycle operations and route requests on one plugin get only answers a client can act on`, async () => {
  const unexpected: string[] = [];
  const seen = new Set<string>();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let round = 0; round < ROUNDS; round++) {
        const op = OPS[(client * 5 + round) % OPS.length];
        const got = await outcome(await perform(op));
        seen.add(`${op} ${got}`);
        if (!ALLOWED[op].includes(got)) unexpected.push(`${op} → ${got}`);
      }
    }),
  );
  expect(unexpected).toEqual([]);
  expect([...seen].filter((s) => / 5\d\d /.test(`${s} `) && !/ 50[23] /.test(`${s} `))).toEqual([]);
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
}, 240_000);
