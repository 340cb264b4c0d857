import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { AUTH, pluginBundle, testServer, upload, type TestServer } from './helpers';

let server: TestServer;
let bundle: string;

beforeAll(async () => {
  // The file servers of the install-from-url test are on loopback, which only the allow-list opens.
  server = await testServer({ routes: { maxUploadBytes: 256 * 1024, urlTimeoutMs: 1000, installFromUrl: { allowHosts: ['127.0.0.1'] } } });
  bundle = await pluginBundle(server.work, 'com.test.web', 'runtime/contract-plugin.js', {
    settings_schema: { settings: [{ key: 'greeting', type: 'text', default: 'hi' }, { key: 'token', type: 'secret' }, { key: 'count', type: 'number' }] },
  });
});
afterAll(() => server.stop());

const api = (p: string, init: RequestInit = {}) => fetch(`${server.url}/api/v1${p}`, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('auth', () => {
  test.each([
    ['no token', {}, 401, 'PLUGHOST_ERR_AUTH_MISSING'],
    ['wrong token', { authorization: 'Bearer nope' }, 403, 'PLUGHOST_ERR_AUTH_WRONG'],
    ['not a bearer token', { authorization: 'Basic dXNlcjpwYXNz' }, 401, 'PLUGHOST_ERR_AUTH_MISSING'],
  ])('%s', async (_n, headers, status, code) => {
    const res = await fetch(`${server.url}/api/v1/plugins`, { headers });
    expect(res.status).toBe(status);
    expect((await res.json()).error.code).toBe(code);
  });

  test('the OpenAPI document and /healthz need no token', async () => {
    const doc = await (await fetch(`${server.url}/api/v1/openapi.json`)).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/plugins/{id}/config', '/api/v1/plugins/webapp', '/api/v1/events', '/api/v1/events/ticket']));
    expect(await (await fetch(`${server.url}/healthz`)).json()).toMatchObject({ status: 'ok' });
  });
});

describe('plugin lifecycle over REST', () => {
  test('install (multipart), list, show, enable, config, logs, disable, remove', async () => {
    let res = await upload(server.url, bundle);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ id: 'com.test.web', state: 'not_running', enabled: false });

    res = await upload(server.url, bundle);
    expect(res.status).toBe(409);
    expect((await res.json()).error.code).toBe('PLUGHOST_ERR_PLUGIN_EXISTS');

    expect((await (await api('/plugins')).json()).map((p: { id: string }) => p.id)).toEqual(['com.test.web']);
    res = await api('/plugins/com.test.web/enable', { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await res.json()).state).toBe('running');
    expect((await (await api('/plugins/com.test.web')).json()).hooks).toContain('Append');

    res = await api('/plugins/com.test.web/config', { method: 'PUT', ...json({ greeting: 'yo', token: 'sekrit', count: 3 }) });
    expect(res.status).toBe(200);
    const masked = await res.json();
    expect(masked.greeting).toBe('yo');
    expect(masked.token).not.toBe('sekrit');
    expect(await (await api('/plugins/com.test.web/config')).json()).toEqual(masked);
    expect((await server.host.callHook('com.test.web', 'Config', {})).payload).toEqual({ greeting: 'yo', token: 'sekrit', count: 3 });

    const logs = await (await api('/plugins/com.test.web/logs?limit=50')).json();
    expect(logs.some((l: { message: string; source: string }) => l.source === 'api' && l.message === 'activated')).toBe(true);

    res = await api('/plugins/com.test.web/disable', { method: 'POST' });
    expect((await res.json()).state).toBe('not_running');
    res = await api('/plugins/com.test.web', { method: 'DELETE' });
    expect(res.status).toBe(204);
    res = await api('/plugins/com.test.web');
    expect(res.status).toBe(404);
    expect((await res.json()).error).toMatchObject({ code: 'PLUGHOST_ERR_PLUGIN_NOT_FOUND', message: 'no plugin with id "com.test.web" is installed' });
  });

  test('install as a raw application/gzip body, and replace with ?force=true', async () => {
    const raw = () => api('/plugins', { method: 'POST', headers: { 'content-type': 'application/gzip' }, body: fs.readFileSync(bundle) });
    expect((await raw()).status).toBe(201);
    expect((await raw()).status).toBe(409);
    expect((await upload(server.url, bundle, '?force=true')).status).toBe(201);
    expect((await api('/plugins/com.test.web', { method: 'DELETE' })).status).toBe(204);
  });

  test('a second install without force says whether the bundle is the same version, an upgrade or a downgrade', async () => {
    const versioned = (version: string) => pluginBundle(server.work, 'com.test.versions', 'runtime/contract-plugin.js', { version });
    expect((await upload(server.url, await versioned('0.2.0'))).status).toBe(201);
    const refused = async (version: string) => {
      const res = await upload(server.url, await versioned(version));
      expect(res.status).toBe(409);
      return (await res.json()).error;
    };
    const force = '; use force (?force=true, plughost plugin add --force) to';
    expect(await refused('0.3.0')).toEqual({
      code: 'PLUGHOST_ERR_PLUGIN_EXISTS',
      message: `plugin "com.test.versions": 0.2.0 is installed; this bundle is 0.3.0 (an upgrade)${force} replace it`,
      details: { id: 'com.test.versions', installed_version: '0.2.0', bundle_version: '0.3.0', change: 'upgrade' },
    });
    expect(await refused('0.1.0')).toMatchObject({
      message: `plugin "com.test.versions": 0.2.0 is installed; this bundle is 0.1.0 (a downgrade)${force} replace it`,
      details: { installed_version: '0.2.0', bundle_version: '0.1.0', change: 'downgrade' },
    });
    expect(await refused('0.2.0')).toMatchObject({
      message: `plugin "com.test.versions" 0.2.0 is already installed and this bundle is the same version${force} reinstall it`,
      details: { change: 'same' },
    });
    expect((await api('/plugins/com.test.versions', { method: 'DELETE' })).status).toBe(204);
  });

  test('the same id installed twice at once: one 201, one 409', async () => {
    const results = await Promise.all([upload(server.url, bundle), upload(server.url, bundle)]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect((await api('/plugins/com.test.web', { method: 'DELETE' })).status).toBe(204);
  });

  test('install-from-url: http only, a working download, and a dead URL', async () => {
    const files = http.createServer((req, res) => {
      if (req.url === '/b.tar.gz') fs.createReadStream(bundle).pipe(res);
      else if (req.url === '/huge') res.end(Buffer.alloc(300 * 1024));
      else if (req.url === '/huge-chunked') {
        res.write(Buffer.alloc(200 * 1024));
        res.end(Buffer.alloc(200 * 1024));
      } else if (req.url === '/stall') res.write(Buffer.alloc(10));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const port = (files.address() as { port: number }).port;
    try {
      let res = await api('/plugins/install-from-url', { method: 'POST', ...json({ url: `http://127.0.0.1:${port}/b.tar.gz` }) });
      expect(res.status).toBe(201);
      res = await api('/plugins/install-from-url', { method: 'POST', ...json({ url: `http://127.0.0.1:${port}/missing` }) });
      expect(res.status).toBe(502);
      expect((await res.json()).error.message).toMatch(/answered 404/);
      for (const big of ['huge', 'huge-chunked']) {
        res = await api('/plugins/install-from-url', { method: 'POST', ...json({ url: `http://127.0.0.1:${port}/${big}` }) });
        expect(res.status).toBe(413);
        expect((await res.json()).error.message).toMatch(/larger than the limit of 262144 bytes/);
      }
      res = await api('/plugins/install-from-url', { method: 'POST', ...json({ url: `http://127.0.0.1:${port}/stall` }) });
      expect(res.status).toBe(502);
      expect((await res.json()).error.message).toMatch(/no complete answer within 1000 ms/);
      res = await api('/plugins/install-from-url', { method: 'POST', ...json({ url: 'file:///etc/passwd' }) });
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(/only http and https/);
    } finally {
      files.closeAllConnections();
      files.close();
      await api('/plugins/com.test.web', { method: 'DELETE' });
    }
  });
});

describe('bad bodies', () => {
  test('wrong content type', async () => {
    const res = await api('/plugins', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect([400, 415]).toContain(res.status);
    expect((await res.json()).error.message).toMatch(/text\/plain/);
  });

  test('a bundle over the upload limit is 413 naming the limit, and nothing is installed', async () => {
    const big = path.join(server.work, 'big.tar.gz');
    fs.writeFileSync(big, Buffer.concat([fs.readFileSync(bundle), Buffer.alloc(300 * 1024)]));
    const res = await upload(server.url, big);
    expect(res.status).toBe(413);
    expect((await res.json()).error.message).toMatch(/limit of 262144 bytes/);
    expect(await (await api('/plugins')).json()).toEqual([]);
  });

  test('a truncated multipart body', async () => {
    const boundary = 'XyZ';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="plugin"; filename="a.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n\x1f\x8b\x08\x00partial`;
    const res = await api('/plugins', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toMatch(/PLUGHOST_ERR_(UPLOAD_INCOMPLETE|BUNDLE_CORRUPT|BUNDLE_NOT_GZIP)/);
  });

  test('a multipart form without the plugin field', async () => {
    const form = new FormData();
    form.append('other', 'x');
    const res = await api('/plugins', { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('PLUGHOST_ERR_UPLOAD_MISSING');
  });

  test('invalid JSON config, and a config that breaks the settings schema', async () => {
    expect((await upload(server.url, bundle)).status).toBe(201);
    try {
      let res = await api('/plugins/com.test.web/config', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"greeting": ' });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('PLUGHOST_ERR_BAD_JSON');
      res = await api('/plugins/com.test.web/config', { method: 'PUT', ...json({ greeting: 5, nope: true }) });
      expect(res.status).toBe(400);
      const err = (await res.json()).error;
      expect(err.code).toBe('PLUGHOST_ERR_CONFIG_INVALID');
      expect(err.message).toMatch(/greeting/);
      res = await api('/plugins/com.test.web/config', { method: 'PUT', ...json(['not', 'an', 'object']) });
      expect(res.status).toBe(400);
    } finally {
      await api('/plugins/com.test.web', { method: 'DELETE' });
    }
  });

  test('a hostile bundle through REST is refused and leaves nothing', async () => {
    const evil = path.join(server.work, 'evil.tar.gz');
    fs.writeFileSync(evil, Buffer.from('not a gzip at all'));
    const res = await upload(server.url, evil);
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('PLUGHOST_ERR_BUNDLE_NOT_GZIP');
    expect(fs.readdirSync(path.join(server.work, 'data', 'plugins'))).toEqual([]);
  });
});
