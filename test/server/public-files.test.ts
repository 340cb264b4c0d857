/**
 * A plugin's public/ folder over HTTP: validators and conditional requests,
 * ranges, and types beyond a short hand-made list. Traversal and planted
 * symlinks are covered in plugin-http.test.ts and test/security.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pluginBundle, testServer, upload, type TestServer } from './helpers';

let server: TestServer;
const ID = 'com.test.public';
const TEXT = 'abcdefghijklmnopqrstuvwxyz';

beforeAll(async () => {
  server = await testServer();
  // Installed, not enabled: public/ files are served from the bundle whatever the plugin's state.
  expect((await upload(server.url, await pluginBundle(server.work, ID, 'server/http-plugin.js'))).status).toBe(201);
  const dir = path.join(server.host.pluginDir(ID), 'public');
  fs.writeFileSync(path.join(dir, 'letters.txt'), TEXT);
  for (const name of ['image.avif', 'image.webp', 'module.wasm', 'font.woff', 'doc.pdf', 'clip.mp4']) fs.writeFileSync(path.join(dir, name), Buffer.alloc(16));
});
afterAll(() => server.stop());

const file = (p: string) => `${server.url}/plugins/${ID}/public/${p}`;

test('an answer carries an ETag and Last-Modified; If-None-Match with it is 304 with no body', async () => {
  const res = await fetch(file('index.html'));
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('<h1>static</h1>');
  const etag = res.headers.get('etag');
  expect(etag).toMatch(/^(W\/)?".+"$/);
  expect(res.headers.get('last-modified')).toBeTruthy();
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');

  // As a browser revalidates: fetch() alone would add "Cache-Control: no-cache" to a conditional request, which asks for the full answer.
  const revalidate = (tag: string) => fetch(file('index.html'), { headers: { 'if-none-match': tag, 'cache-control': 'max-age=0' } });
  const again = await revalidate(etag!);
  expect(again.status).toBe(304);
  expect(await again.text()).toBe('');
  expect((await revalidate('"something-else"')).status).toBe(200);
});

test('Range: 206 with Content-Range and just those bytes; a range past the end is 416 naming the file and its size', async () => {
  const res = await fetch(file('letters.txt'), { headers: { range: 'bytes=2-5' } });
  expect(res.status).toBe(206);
  expect(res.headers.get('content-range')).toBe(`bytes 2-5/${TEXT.length}`);
  expect(res.headers.get('accept-ranges')).toBe('bytes');
  expect(await res.text()).toBe('cdef');
  const tail = await fetch(file('letters.txt'), { headers: { range: 'bytes=-3' } });
  expect([tail.status, await tail.text()]).toEqual([206, 'xyz']);
  const outside = await fetch(file('letters.txt'), { headers: { range: 'bytes=100-200' } });
  expect(outside.status).toBe(416);
  expect(outside.headers.get('content-range')).toBe(`bytes */${TEXT.length}`);
  expect((await outside.json()).error).toEqual({
    code: 'PLUGHOST_ERR_RANGE_NOT_SATISFIABLE',
    message: `the range "bytes=100-200" is outside static file "letters.txt", which is ${TEXT.length} bytes`,
    details: {},
  });
});

test('If-Match with another ETag is 412 naming the file', async () => {
  const res = await fetch(file('letters.txt'), { headers: { 'if-match': '"not-this-one"' } });
  expect(res.status).toBe(412);
  expect((await res.json()).error).toMatchObject({ code: 'PLUGHOST_ERR_PRECONDITION_FAILED', message: expect.stringContaining('"letters.txt"') });
});

test.each([
  ['image.avif', 'image/avif'],
  ['image.webp', 'image/webp'],
  ['module.wasm', 'application/wasm'],
  ['font.woff', 'font/woff'],
  ['doc.pdf', 'application/pdf'],
  ['clip.mp4', 'video/mp4'],
  ['index.html', 'text/html; charset=utf-8'],
  ['css/site.css', 'text/css; charset=utf-8'],
])('%s is served as %s', async (name, type) => {
  const res = await fetch(file(name));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(type);
  await res.arrayBuffer();
});

test('HEAD answers the headers and no body', async () => {
  const res = await fetch(file('letters.txt'), { method: 'HEAD' });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-length')).toBe(String(TEXT.length));
  expect(await res.text()).toBe('');
});

test('an unknown plugin and a missing file are 404 in the error shape', async () => {
  let res = await fetch(`${server.url}/plugins/com.test.nobody/public/index.html`);
  expect(res.status).toBe(404);
  expect((await res.json()).error.code).toBe('PLUGHOST_ERR_PLUGIN_NOT_FOUND');
  res = await fetch(file('missing.txt'));
  expect(res.status).toBe(404);
  expect((await res.json()).error).toMatchObject({ code: 'PLUGHOST_ERR_NOT_FOUND', details: {} });
});
