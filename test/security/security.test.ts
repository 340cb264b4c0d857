/**
 * Who can do what: the admin API needs the token; a plugin reaches only its
 * own KV, only the methods its manifest lists, and nothing of the admin API;
 * hostile bundles leave nothing behind; static files stay inside public/; the
 * user id a plugin sees comes from the integrator, never from the client.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { HOSTILE_CASES } from '../fixtures/bundles/hostile';
import { DEFAULT_INHERITED_ENV } from '../../src/protocol/process';
import { AUTH, TOKEN, testServer, upload, type TestServer } from '../server/helpers';
import { misbehavingBundle } from '../reliability/helpers';

const A = 'com.test.tenant-a';
const B = 'com.test.tenant-b';
const HOST_SECRET = 'db-password-that-plugins-must-not-see';
let server: TestServer;
const saved = { token: process.env.PLUGHOST_ADMIN_TOKEN, secret: process.env.PLUGHOST_TEST_DB_PASSWORD };

beforeAll(async () => {
  // As deployed: the token, and other secrets, live in the host's environment.
  process.env.PLUGHOST_ADMIN_TOKEN = TOKEN;
  process.env.PLUGHOST_TEST_DB_PASSWORD = HOST_SECRET;
  server = await testServer({
    // The refusal table below sends 40 bad tokens from one address; the throttle is tested in test/server/auth-throttle.test.ts.
    routes: { authenticate: (request) => (request.headers['x-session'] === 'valid-session' ? 'alice' : null), authThrottle: { maxFailures: 1000 } },
    hostOptions: { api: { 'notes.read': () => ({ notes: [] }), 'notes.delete': () => ({ deleted: true }) } },
  });
  for (const [id, permissions] of [[A, ['notes.read']], [B, []]] as const) {
    expect((await upload(server.url, await misbehavingBundle(server.work, id, { permissions: [...permissions], env: { FROM_MANIFEST: 'yes' } }))).status).toBe(201);
    expect((await admin(`/plugins/${id}/enable`, { method: 'POST' })).status).toBe(200);
  }
});
afterAll(async () => {
  await server.stop();
  for (const [key, value] of [['PLUGHOST_ADMIN_TOKEN', saved.token], ['PLUGHOST_TEST_DB_PASSWORD', saved.secret]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

function admin(p: string, init: RequestInit = {}, headers: Record<string, string> = AUTH): Promise<Response> {
  return fetch(`${server.url}/api/v1${p}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
}
const hook = (id: string, name: string, payload: unknown) => server.host.callHook(id, name, payload).then((r) => r.payload as Record<string, unknown>);

/** GET with the path sent exactly as written (fetch would normalise dot segments). */
function rawGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('the admin API', () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/plugins'],
    ['GET', `/plugins/${A}`],
    ['POST', `/plugins/${A}/disable`],
    ['POST', `/plugins/${A}/enable`],
    ['DELETE', `/plugins/${A}`],
    ['GET', `/plugins/${A}/config`],
    ['PUT', `/plugins/${A}/config`, {}],
    ['GET', `/plugins/${A}/logs`],
    ['POST', '/plugins/install-from-url', { url: 'http://127.0.0.1:9/x.tar.gz' }],
    ['POST', '/plugins'],
  ];
  test.each([
    ['no token', {}, 401],
    ['a wrong token', { authorization: `Bearer ${TOKEN}x` }, 403],
    ['the token in another scheme', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, 401],
    ['the token as a query parameter', {}, 401],
  ])('with %s every route is refused and nothing changes', async (name, headers: Record<string, string>, status) => {
    const query = name.includes('query') ? `?token=${TOKEN}&access_token=${TOKEN}` : '';
    for (const [method, p, body] of routes) {
      const res = await admin(`${p}${query}`, body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, headers);
      expect([method, p, res.status]).toEqual([method, p, status]);
    }
    expect((await server.host.list()).map((p) => [p.id, p.enabled, p.state])).toEqual([
      [A, true, 'running'],
      [B, true, 'running'],
    ]);
  });
});

describe('plugin isolation', () => {
  test("A cannot read or overwrite B's KV: the same key is a different entry per plugin", async () => {
    await hook(B, 'Kv', { op: 'set', key: 'secret', value: 'b-only' });
    expect(await hook(A, 'Kv', { op: 'get', key: 'secret' })).toEqual({ found: false, value: null });
    await hook(A, 'Kv', { op: 'set', key: 'secret', value: 'a-wrote' });
    expect(await hook(B, 'Kv', { op: 'get', key: 'secret' })).toEqual({ found: true, value: 'b-only' });
    // Keys that look like another plugin's namespace are just keys.
    for (const key of [`${B}/secret`, `../${B}/secret`, `${B}:secret`, '\u0000secret']) {
      expect(await hook(A, 'Kv', { op: 'get', key })).toMatchObject({ found: false });
    }
  });

  test('Invoke: a method the manifest does not list is PERMISSION_DENIED with the reason; a listed one works', async () => {
    expect(await hook(A, 'Invoke', { method: 'notes.read' })).toEqual({ ok: true });
    const denied = await hook(A, 'Invoke', { method: 'notes.delete' });
    expect(denied.code).toBe(7);
    expect(denied.error).toMatch(/notes\.delete/);
    expect(await hook(B, 'Invoke', { method: 'notes.read' })).toMatchObject({ code: 7 });
    expect(await hook(A, 'Invoke', { method: 'no.such.method' })).toMatchObject({ code: expect.any(Number) });
    expect((await hook(A, 'Invoke', { method: 'no.such.method' })).ok).toBeUndefined();
  });

  test("a plugin's environment is a safe allowlist: no admin token, no host secrets", async () => {
    const env = (await hook(A, 'Env', {})) as Record<string, string>;
    const allowed = new Set([
      ...DEFAULT_INHERITED_ENV,
      'PLUGHOST_PLUGIN',
      'PLUGIN_PROTOCOL_VERSIONS',
      'PLUGIN_MIN_PORT',
      'PLUGIN_MAX_PORT',
      'PLUGIN_UNIX_SOCKET_DIR',
      'PLUGIN_CLIENT_CERT',
      'PLUGHOST_PLUGIN_NETWORK',
      'PLUGHOST_INSTANCE',
      'PLUGHOST_MAX_MESSAGE_BYTES',
      'PLUGHOST_FLOW_CONTROL_WINDOW_BYTES',
      'FROM_MANIFEST',
    ]);
    expect(Object.keys(env).filter((k) => !allowed.has(k))).toEqual([]);
    expect(env.FROM_MANIFEST).toBe('yes');
    const values = Object.values(env).join('\n');
    expect(values).not.toContain(TOKEN);
    expect(values).not.toContain(HOST_SECRET);
  });

  test('with everything in its environment as a bearer token, a plugin gets nothing from the admin API', async () => {
    const { tries } = (await hook(A, 'Admin', { url: server.url })) as { tries: number[] };
    expect(tries.length).toBeGreaterThan(5);
    expect(tries.filter((s) => s !== 401 && s !== 403)).toEqual([]);
  });

  test('the plugin socket folder is private: mode 0700, owned by the host user', async () => {
    const env = (await hook(A, 'Env', {})) as Record<string, string>;
    const st = fs.statSync(env.PLUGIN_UNIX_SOCKET_DIR);
    expect(st.isDirectory()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe('700');
    expect(st.uid).toBe(process.getuid!());
  });
});

describe('plugin HTTP', () => {
  test('a spoofed Plughost-User-Id never reaches the plugin; the integrator-authenticated user does', async () => {
    const seen = async (headers: Record<string, string>) => {
      const head = await (await fetch(`${server.url}/plugins/${A}/head`, { headers })).json();
      const ids = (head.headers as Array<{ name: string; values: string[] }>).filter((h) => h.name.toLowerCase() === 'plughost-user-id').flatMap((h) => h.values);
      return { user: head.user_id as string, ids, authz: head.headers.some((h: { name: string }) => /^(authorization|cookie)$/i.test(h.name)) };
    };
    for (const spoof of ['Plughost-User-Id', 'PLUGHOST-USER-ID', 'plughost-user-id']) {
      expect(await seen({ [spoof]: 'admin' })).toEqual({ user: '', ids: [], authz: false });
      expect(await seen({ [spoof]: 'admin', 'x-session': 'valid-session', ...AUTH, cookie: 's=1' })).toEqual({ user: 'alice', ids: ['alice'], authz: false });
    }
  });

  test('path traversal through /plugins/:id/public/ reaches nothing outside public/', async () => {
    const dir = server.host.pluginDir(A);
    // A link the plugin itself could plant in its public folder, pointing at the admin token's folder.
    fs.symlinkSync(path.join(server.work, 'data'), path.join(dir, 'public', 'data-link'));
    fs.symlinkSync('/etc/passwd', path.join(dir, 'public', 'passwd-link'));
    expect((await rawGet(`${server.url}/plugins/${A}/public/index.html`)).status).toBe(200);
    const attempts = [
      '/public/../plugin.json',
      '/public/..%2fplugin.json',
      '/public/%2e%2e/plugin.json',
      '/public/%252e%252e/plugin.json',
      '/public/..%5cplugin.json',
      '/public/%c0%ae%c0%ae/plugin.json',
      '/public//etc/passwd',
      '/public/%2fetc%2fpasswd',
      '/public/../../../../../../etc/passwd',
      '/public/index.html%00.txt',
      '/public/data-link/plughost.db',
      '/public/passwd-link',
      `/public/../../${B}/plugin.json`,
    ];
    for (const attempt of attempts) {
      const res = await rawGet(`${server.url}/plugins/${A}${attempt}`);
      // 404, or 400 for a path that is not valid UTF-8 once decoded.
      expect([attempt, [400, 404].includes(res.status)]).toEqual([attempt, true]);
      expect(res.body).not.toContain('root:');
      expect(res.body).not.toContain('"permissions"');
      expect(res.body).not.toContain('SQLite format');
    }
  });
});

describe('the hostile bundle corpus through REST', () => {
  const servers = new Map<string, TestServer>();
  afterAll(async () => {
    for (const s of servers.values()) await s.stop();
  });
  async function serverFor(limits: object | undefined): Promise<TestServer> {
    if (!limits) return server;
    const key = JSON.stringify(limits);
    if (!servers.has(key)) servers.set(key, await testServer({ hostOptions: { bundleLimits: limits } }));
    return servers.get(key)!;
  }

  test.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('%s: refused with its code, nothing left on disk', async (_name, c) => {
    const s = await serverFor(c.limits);
    const file = path.join(s.work, `hostile-${c.name.replace(/\W+/g, '-')}.tar.gz`);
    fs.writeFileSync(file, c.bytes());
    const before = (await s.host.list()).map((p) => p.id);
    const res = await upload(s.url, file);
    expect([400, 413]).toContain(res.status);
    expect((await res.json()).error.code).toBe(c.code);
    expect((await s.host.list()).map((p) => p.id)).toEqual(before);
    const data = path.join(s.work, 'data');
    expect(fs.readdirSync(path.join(data, 'staging'))).toEqual([]);
    expect(fs.readdirSync(path.join(data, 'plugins')).sort()).toEqual([...before].sort());
  });
});
