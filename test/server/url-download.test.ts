/**
 * install-from-url against real loopback file servers: internal addresses are
 * refused after resolution and on every redirect unless allow-listed, and
 * errors describe what came back without quoting it.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AUTH, pluginBundle, testServer, type TestServer } from './helpers';

let open: TestServer;
let allowing: TestServer;
let files: http.Server;
let base: string;
let bundle: string;
const SECRET = 'internal-only-page-marker-7f3a';
const HTML = `<html><body>${SECRET} ${'x'.repeat(1000)}</body></html>`;

beforeAll(async () => {
  open = await testServer({ routes: { urlTimeoutMs: 5000 } });
  allowing = await testServer({ routes: { urlTimeoutMs: 5000, installFromUrl: { allowHosts: ['127.0.0.1'], maxRedirects: 3 } } });
  bundle = await pluginBundle(open.work, 'com.test.url', 'runtime/contract-plugin.js');
  files = http.createServer((req, res) => {
    const redirect = /^\/to\/(.+)$/.exec(req.url ?? '');
    if (req.url === '/b.tar.gz') fs.createReadStream(bundle).pipe(res);
    else if (req.url === '/page') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(HTML);
    else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (redirect) res.writeHead(302, { location: decodeURIComponent(redirect[1]) }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  base = `127.0.0.1:${(files.address() as { port: number }).port}`;
});
afterAll(async () => {
  files.closeAllConnections();
  await new Promise((r) => files.close(r));
  await open.stop();
  await allowing.stop();
});

const install = (server: TestServer, body: Record<string, unknown>) =>
  fetch(`${server.url}/api/v1/plugins/install-from-url`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function refusal(res: Response): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  expect(res.status).toBe(400);
  return (await res.json()).error;
}

describe('without an allow-list, internal addresses are refused', () => {
  test.each([
    ['a loopback address', () => `http://${base}/b.tar.gz`, '127.0.0.1', 'loopback'],
    ['a name that resolves to loopback', () => `http://localhost:${base.split(':')[1]}/b.tar.gz`, /^(127\.0\.0\.1|::1)$/, 'loopback'],
    ['IPv6 loopback', () => `http://[::1]:${base.split(':')[1]}/b.tar.gz`, '::1', 'loopback'],
    ['the IPv4-mapped IPv6 form of loopback', () => `http://[::ffff:127.0.0.1]:${base.split(':')[1]}/b.tar.gz`, '::ffff:7f00:1', 'loopback'],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'cloud metadata'],
    ['a private address', () => 'http://10.1.2.3/b.tar.gz', '10.1.2.3', 'private'],
    ['loopback written as one decimal number', () => 'http://2130706433:1/b.tar.gz', '127.0.0.1', 'loopback'],
    ['the unspecified address', () => 'http://0:1/b.tar.gz', '0.0.0.0', 'unspecified'],
  ])('%s', async (_name, url, address, kind) => {
    const error = await refusal(await install(open, { url: url() }));
    expect(error.code).toBe('PLUGHOST_ERR_URL_ADDRESS_REFUSED');
    expect(error.message).toContain(`in the ${kind} range`);
    expect(error.message).toContain('installFromUrl.allowHosts');
    expect(error.details).toMatchObject({ address: expect.stringMatching(address), address_class: kind });
    expect(await open.host.list()).toEqual([]);
  });
});

describe('with 127.0.0.1 allow-listed', () => {
  test('a bundle from the allowed address installs', async () => {
    const res = await install(allowing, { url: `http://${base}/b.tar.gz` });
    expect(res.status).toBe(201);
    expect((await res.json()).id).toBe('com.test.url');
    expect((await fetch(`${allowing.url}/api/v1/plugins/com.test.url`, { method: 'DELETE', headers: AUTH })).status).toBe(204);
  });

  test.each([
    ['another loopback address', 'http://127.0.0.2:1/b.tar.gz', '127.0.0.2', 'loopback'],
    ['the metadata address', 'http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'cloud metadata'],
    ['IPv6 loopback', 'http://[::1]:1/b.tar.gz', '::1', 'loopback'],
  ])('a redirect from the allowed host to %s is refused', async (_name, target, address, kind) => {
    const error = await refusal(await install(allowing, { url: `http://${base}/to/${encodeURIComponent(target)}` }));
    expect(error.code).toBe('PLUGHOST_ERR_URL_ADDRESS_REFUSED');
    expect(error.message).toContain(`in the ${kind} range`);
    expect(error.details).toMatchObject({ address: expect.stringMatching(address) });
  });

  test('signature_url is held to the same rule', async () => {
    const error = await refusal(await install(allowing, { url: `http://${base}/b.tar.gz`, signature_url: 'http://169.254.169.254/b.sig' }));
    expect(error.code).toBe('PLUGHOST_ERR_URL_ADDRESS_REFUSED');
    expect(await allowing.host.list()).toEqual([]);
  });

  test('redirects are capped', async () => {
    const res = await install(allowing, { url: `http://${base}/loop` });
    expect(res.status).toBe(502);
    expect((await res.json()).error.message).toMatch(/more than 3 redirects \(the installFromUrl\.maxRedirects limit\)/);
  });

  test('an HTML answer is described, not quoted', async () => {
    const res = await install(allowing, { url: `http://${base}/page` });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('<html');
    const { error } = JSON.parse(text);
    expect(error.code).toBe('PLUGHOST_ERR_DOWNLOAD_NOT_BUNDLE');
    expect(error.message).toContain(`is not a gzip bundle (content-type text/html, ${Buffer.byteLength(HTML)} bytes)`);
  });
});

test('a host name on the allow-list permits what it resolves to', async () => {
  const byName = await testServer({ routes: { installFromUrl: { allowHosts: ['LocalHost'] } } });
  try {
    const res = await install(byName, { url: `http://localhost:${base.split(':')[1]}/b.tar.gz` });
    expect(res.status).toBe(201);
    // The name is allowed, not the address behind it.
    expect((await refusal(await install(byName, { url: `http://${base}/b.tar.gz`, force: true }))).code).toBe('PLUGHOST_ERR_URL_ADDRESS_REFUSED');
  } finally {
    await byName.stop();
  }
});

test('a bad allow-list entry stops the server from starting, naming the entry', async () => {
  await expect(testServer({ routes: { installFromUrl: { allowHosts: ['10.0.0.0/99'] } } })).rejects.toMatchObject({
    code: 'PLUGHOST_ERR_BAD_ALLOW_HOST',
    message: expect.stringContaining('"10.0.0.0/99"'),
  });
});

test('an unknown body field is refused with 400 naming it, and nothing is fetched', async () => {
  let fetched = 0;
  const counter = http.createServer((_req, res) => { fetched++; res.end(); });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(counter.address() as { port: number }).port}/b.tar.gz`;
    const res = await install(allowing, { url, forse: true });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('PLUGHOST_ERR_BAD_BODY');
    expect(error.message).toContain('"forse"');
    expect(fetched).toBe(0);
  } finally {
    await new Promise((r) => counter.close(r));
  }
});
