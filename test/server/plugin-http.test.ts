import * as http from 'node:http';
import { AUTH, pluginBundle, testServer, upload, type TestServer } from './helpers';

let server: TestServer;
const ID = 'com.test.http';

beforeAll(async () => {
  server = await testServer({
    routes: { authenticate: (request) => (request.headers['x-test-user'] as string | undefined) ?? null },
    hostOptions: { defaults: { restartBackoffMs: 100 } },
  });
  expect((await upload(server.url, await pluginBundle(server.work, ID, 'server/http-plugin.js'))).status).toBe(201);
  expect((await fetch(`${server.url}/api/v1/plugins/${ID}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
});
afterAll(() => server.stop());

const route = (p: string) => `${server.url}/plugins/${ID}${p}`;

async function waitRunning(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await server.host.get(ID)).state === 'running') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('plugin did not come back');
}

test('method, path, query, body and headers reach the plugin; credentials and a spoofed user id do not', async () => {
  const res = await fetch(route('/echo?x=1&y=2'), {
    method: 'POST',
    headers: { ...AUTH, cookie: 'session=abc', 'plughost-user-id': 'admin', 'x-custom': 'kept', 'x-test-user': 'alice' },
    body: 'hello body',
  });
  expect(res.status).toBe(200);
  const seen = await res.json();
  expect(seen).toMatchObject({ method: 'POST', path: '/echo', query: '?x=1&y=2', user: 'alice', body: 'hello body' });
  expect(seen.headers['x-custom']).toBe('kept');
  expect(seen.headers.authorization).toBeUndefined();
  expect(seen.headers.cookie).toBeUndefined();
  expect(seen.headers['plughost-user-id']).toBe('alice');

  const anonymous = await (await fetch(route('/echo'), { headers: { 'plughost-user-id': 'admin' } })).json();
  expect(anonymous.user).toBe('');
  expect(anonymous.headers['plughost-user-id']).toBeUndefined();
});

test('the plugin\'s own status codes pass through; unknown plugin is 404', async () => {
  expect((await fetch(route('/nowhere'))).status).toBe(404);
  const res = await fetch(`${server.url}/plugins/com.test.nobody/echo`);
  expect(res.status).toBe(404);
  expect((await res.json()).error.code).toBe('PLUGHOST_ERR_PLUGIN_NOT_FOUND');
});

test('server-sent events are flushed as the plugin writes them', async () => {
  const res = await fetch(route('/sse'));
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  // The plugin holds the second event until released: the first arrived on its own.
  expect(first).toBe('data: one\n\n');
  await server.host.callHook(ID, 'Release', {});
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  expect(rest).toBe('data: two\n\n');
});

test('100 MiB up and 100 MiB down stream through without a whole-body buffer', async () => {
  const before = process.memoryUsage().rss;
  const total = 100 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 98);
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
  const up = await fetch(route('/count'), { method: 'POST', body, duplex: 'half' } as RequestInit);
  expect(await up.json()).toEqual({ bytes: total });

  const down = await fetch(route('/big?mb=100'));
  let received = 0;
  for await (const part of down.body as unknown as AsyncIterable<Uint8Array>) received += part.length;
  expect(received).toBe(total);
  // Bodies stream in bounded chunks: holding either body whole would add at least its 100 MiB
  // (client and host share this process, so the bound leaves room for GC timing, not for a body).
  expect(process.memoryUsage().rss - before).toBeLessThan(total);
});

test('a client that goes away cancels the plugin\'s stream', async () => {
  await new Promise<void>((resolve, reject) => {
    const req = http.get(route('/hang'), (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => (err.message.includes('socket hang up') ? undefined : reject(err)));
  });
  for (let i = 0; i < 100; i++) {
    if (server.host.logs(ID).some((l) => l.message === 'client went away')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(server.host.logs(ID).some((l) => l.message === 'client went away')).toBe(true);
});

test('a plugin crashing mid-response ends that response; the server stays up and the plugin comes back', async () => {
  const res = await fetch(route('/crash'));
  expect(res.status).toBe(200);
  await expect(res.text()).rejects.toThrow();
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  await waitRunning();
  expect((await fetch(route('/echo'))).status).toBe(200);
});

test('a disabled plugin answers 503 JSON that says how to enable it', async () => {
  await server.host.disable(ID);
  try {
    const res = await fetch(route('/echo'));
    expect(res.status).toBe(503);
    expect((await res.json()).error).toEqual({
      code: 'PLUGHOST_ERR_PLUGIN_DISABLED',
      message: `plugin "${ID}" is disabled, so it serves no requests; enable it with POST /api/v1/plugins/${ID}/enable or \`plughost plugin enable ${ID}\``,
      details: { id: ID, state: 'not_running' },
    });
  } finally {
    await server.host.enable(ID);
  }
});

test('public/ files are served, and nothing outside public/ is reachable', async () => {
  let res = await fetch(route('/public/index.html'));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/html');
  expect(await res.text()).toBe('<h1>static</h1>');
  expect((await fetch(route('/public/css/site.css'))).headers.get('content-type')).toContain('text/css');
  for (const evil of ['/public/../plugin.json', '/public/%2e%2e/plugin.json', '/public/..%2fmain.js', '/public/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/public/css/../../plugin.json', '/public/missing.txt', '/public/%00']) {
    const r = await new Promise<number>((resolve) => http.get(route(evil), (x) => { x.resume(); resolve(x.statusCode!); }));
    expect([r, evil]).toEqual([404, evil]);
  }
});

test('a plugin that ends its response without a head answers 502 naming the plugin; an unknown route is 404', async () => {
  const id = 'com.test.nohead';
  expect((await upload(server.url, await pluginBundle(server.work, id, 'conformance/http-no-head.js'))).status).toBe(201);
  expect((await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  const res = await fetch(`${server.url}/plugins/${id}/page`);
  expect(res.status).toBe(502);
  expect((await res.json()).error).toMatchObject({
    code: 'PLUGHOST_ERR_HOOK_FAILED',
    message: `hook ServeHTTP of plugin "${id}" failed: the plugin answered /page without a head in its first part`,
  });
  const missing = await fetch(`${server.url}/nowhere`);
  expect(missing.status).toBe(404);
  expect((await missing.json()).error).toMatchObject({ code: 'PLUGHOST_ERR_NOT_FOUND', message: 'route GET /nowhere was not found' });
});
