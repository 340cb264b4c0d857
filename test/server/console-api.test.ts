/**
 * What the admin console asks of the server beside the plugin routes: the host's signature
 * policy (GET /server), who signed an installed bundle, the manifest's icon at an immutable URL,
 * log paging (?before=), log records on the event feed only when asked for (?logs=), and an
 * upload refusal that names the file its user chose.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fingerprint, generateKeyPair, packBundle, signBundle } from '../../src/bundle';
import { openStream } from '../web/helpers';
import { AUTH, pluginBundle, testServer, type TestServer } from './helpers';

const keys = [generateKeyPair(), generateKeyPair()];
let server: TestServer;

beforeAll(async () => {
  server = await testServer({ hostOptions: { trustedKeys: keys.map((k) => k.publicKey) } });
});
afterAll(() => server.stop());

const api = (p: string, init: RequestInit = {}) => fetch(`${server.url}/api/v1${p}`, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });

/** A webapp-only plugin (no process) with an icon and links. */
async function iconBundle(id: string, icon: { name: string; body: string }): Promise<string> {
  const dir = path.join(server.work, `icon-${id}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(path.join(dir, 'assets'), { recursive: true });
  const manifest = { id, name: id, version: '1.0.0', icon_path: `assets/${icon.name}`, homepage_url: 'https://example.com/', webapp: { bundle_path: 'main.js' } };
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'main.js'), 'export default function activate() {}\n');
  fs.writeFileSync(path.join(dir, 'assets', icon.name), icon.body);
  // Planted: the bundle may not claim a signer for itself.
  fs.writeFileSync(path.join(dir, '.plughost-signature.json'), JSON.stringify({ signed: true, keyIndex: 0, fingerprint: 'forged' }));
  await packBundle(dir, `${dir}.tar.gz`);
  return `${dir}.tar.gz`;
}

function form(file: string, name: string, signature?: Buffer): FormData {
  const f = new FormData();
  f.append('plugin', new Blob([fs.readFileSync(file)]), name);
  if (signature) f.append('signature', new Blob([signature]), `${name}.sig`);
  return f;
}

test('GET /server shows the signature policy read-only, with the trusted keys by fingerprint', async () => {
  const res = await api('/server');
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    nodeId: server.host.nodeId,
    version: server.host.hostVersion,
    clustered: false,
    requireSignature: false,
    trustedKeys: keys.map((k) => ({ fingerprint: fingerprint(k.publicKey) })),
  });
  expect((await fetch(`${server.url}/api/v1/server`)).status).toBe(401);
});

test('a plugin detail says which trusted key signed its bundle, or that none did, whatever the bundle planted', async () => {
  const signedFile = await iconBundle('com.test.signed', { name: 'icon.png', body: 'not really a png' });
  const res = await api('/plugins', { method: 'POST', body: form(signedFile, 'signed.tar.gz', signBundle(signedFile, keys[1].privateKey)) });
  expect(res.status).toBe(201);
  const signed = await (await api('/plugins/com.test.signed')).json();
  expect(signed.signature).toEqual({ signed: true, keyIndex: 1, fingerprint: fingerprint(keys[1].publicKey) });

  const plainFile = await iconBundle('com.test.unsigned', { name: 'icon.png', body: 'x' });
  expect((await api('/plugins', { method: 'POST', body: form(plainFile, 'plain.tar.gz') })).status).toBe(201);
  expect((await (await api('/plugins/com.test.unsigned')).json()).signature).toEqual({ signed: false });
});

test("the manifest's icon is served at a content-addressed URL with the bundle's immutable headers; an SVG only as a picture", async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><script>alert(1)</script><rect width="8" height="8"/></svg>';
  const file = await iconBundle('com.test.icon', { name: 'logo.svg', body: svg });
  expect((await api('/plugins', { method: 'POST', body: form(file, 'icon.tar.gz') })).status).toBe(201);
  const detail = await (await api('/plugins/com.test.icon')).json();
  expect(detail.iconUrl).toBe(`/api/v1/plugins/com.test.icon/icon/${detail.bundleSha256.slice(0, 20)}.svg`);
  // No token: an <img> cannot send one.
  const res = await fetch(`${server.url}${detail.iconUrl}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/svg+xml');
  expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(res.headers.get('content-security-policy')).toContain('sandbox');
  expect(await res.text()).toBe(svg);

  const stale = await fetch(`${server.url}/api/v1/plugins/com.test.icon/icon/00000000000000000000.svg`);
  expect(stale.status).toBe(404);
  expect(stale.headers.get('cache-control')).toBe('no-store');
  expect((await stale.json()).error.message).toContain(`it is ${detail.bundleSha256.slice(0, 20)}.svg`);
  const noIcon = await pluginBundle(server.work, 'com.test.noicon', 'runtime/contract-plugin.js');
  expect((await api('/plugins', { method: 'POST', body: form(noIcon, 'noicon.tar.gz') })).status).toBe(201);
  expect((await (await api('/plugins/com.test.noicon')).json()).iconUrl).toBeUndefined();
});

test('a refused upload names the file as the user chose it', async () => {
  const res = await api('/plugins', { method: 'POST', body: (() => {
    const f = new FormData();
    f.append('plugin', new Blob(['just some notes\n']), 'my notes.txt');
    return f;
  })() });
  expect(res.status).toBe(400);
  const { error } = await res.json();
  expect(error.code).toBe('PLUGHOST_ERR_BUNDLE_NOT_GZIP');
  expect(error.message).toContain('bundle "my notes.txt"');
});

test('logs page back with ?before= without gaps or repeats, and log records reach only the feeds that asked', async () => {
  const ID = 'com.test.logs';
  const file = await pluginBundle(server.work, ID, 'runtime/contract-plugin.js');
  expect((await api('/plugins', { method: 'POST', body: form(file, 'logs.tar.gz') })).status).toBe(201);

  const open = async (query: string) => {
    const { ticket } = await (await api('/events/ticket', { method: 'POST' })).json();
    const { reader } = await openStream(`${server.url}/api/v1/events?ticket=${ticket}${query}`);
    await reader!.next('ready');
    return reader!;
  };
  const plain = await open('');
  const one = await open(`&logs=${ID}`);
  const all = await open('&logs=1');
  const other = await open('&logs=com.test.nobody');
  try {
    for (let i = 0; i < 3; i++) {
      await server.host.enable(ID);
      await server.host.disable(ID);
    }
    const activated = (await one.next('log')) as Record<string, unknown>;
    expect(activated).toEqual({ pluginId: ID, level: 'info', message: 'activated', fields: { version: server.host.hostVersion }, time: expect.any(Number), source: 'api' });
    await all.next('log');
    await plain.next('state', 5);
    await other.next('state', 5);
    expect(plain.count('log')).toBe(0);
    expect(other.count('log')).toBe(0);
  } finally {
    await Promise.all([plain, one, all, other].map((r) => r.close()));
  }

  const everything = await (await api(`/plugins/${ID}/logs`)).json();
  expect(everything.length).toBeGreaterThanOrEqual(3);
  expect(everything.map((r: { seq: number }) => r.seq)).toEqual(everything.map((_: unknown, i: number) => everything[0].seq + i));
  const pages: unknown[][] = [];
  let before = '';
  for (;;) {
    const page = await (await api(`/plugins/${ID}/logs?limit=2${before}`)).json();
    if (page.length === 0) break;
    pages.unshift(page);
    before = `&before=${page[0].seq}`;
  }
  expect(pages.flat()).toEqual(everything);
  expect((await api(`/plugins/${ID}/logs?before=0`)).status).toBe(400);
});
