/**
 * Property-based runs over bundle extraction (mutated and truncated bundles)
 * and over REST bodies sent to a real server. Fixed seeds; every case must end
 * in success or one of our errors, never a crash, a 500, or files left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { PlughostError } from '../../src/errors';
import { extractBundle, packBundle } from '../../src/bundle';
import { tempDir } from '../helpers';
import { AUTH, testServer, type TestServer } from '../server/helpers';

let work: { dir: string; cleanup(): void };
let good: Buffer;

beforeAll(async () => {
  work = tempDir();
  const src = path.join(work.dir, 'src');
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'plugin.json'), JSON.stringify({ id: 'com.fuzz.x', name: 'x', version: '1.0.0', server: { executable: 'bin/run' } }));
  fs.writeFileSync(path.join(src, 'bin', 'run'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.writeFileSync(path.join(src, 'README.md'), 'fuzz '.repeat(200));
  await packBundle(src, path.join(work.dir, 'good.tar.gz'));
  good = fs.readFileSync(path.join(work.dir, 'good.tar.gz'));
});
afterAll(() => work.cleanup());

test('mutated and truncated bundles: extracted whole or refused in our words, and nothing left on failure', async () => {
  const mutation = fc.record({
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
  });
  let n = 0;
  await fc.assert(
    fc.asyncProperty(mutation, async ({ flips, cut }) => {
      const bytes = Buffer.from(good);
      for (const [at, x] of flips) bytes[at % bytes.length] ^= x;
      const data = cut === undefined ? bytes : bytes.subarray(0, cut % bytes.length);
      const file = path.join(work.dir, `case-${n}.tar.gz`);
      const dest = path.join(work.dir, 'out', `case-${n++}`);
      fs.writeFileSync(file, data);
      try {
        const result = await extractBundle(file, dest, { maxUncompressedBytes: 1024 * 1024 });
        expect(result.manifest.id.length).toBeGreaterThanOrEqual(3);
        expect(fs.existsSync(path.join(dest, 'plugin.json'))).toBe(true);
        fs.rmSync(dest, { recursive: true, force: true });
      } catch (err) {
        if (!(err instanceof PlughostError)) throw err;
        expect(fs.existsSync(dest)).toBe(false);
      } finally {
        fs.rmSync(file, { force: true });
      }
      const parent = path.join(work.dir, 'out');
      if (fs.existsSync(parent)) expect(fs.readdirSync(parent).filter((f) => f.includes('staging'))).toEqual([]);
    }),
    { seed: 1127, numRuns: 600 },
  );
});

describe('REST bodies', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer();
  });
  afterAll(() => server.stop());

  const jsonValue = fc.jsonValue({ maxDepth: 3 });

  test('install-from-url with any JSON body: a 4xx/5xx in our error shape, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(jsonValue, fc.record({ url: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('file:///etc/passwd', 'ftp://x', 'http://', 'javascript:1')) })), async (body) => {
        const res = await fetch(`${server.url}/api/v1/plugins/install-from-url`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        expect(res.status).not.toBe(500);
        expect(res.status).toBeGreaterThanOrEqual(400);
        const payload = await res.json();
        expect(typeof payload.error.code).toBe('string');
        expect(payload.error.code.startsWith('PLUGHOST_ERR_')).toBe(true);
      }),
      { seed: 5, numRuns: 300 },
    );
  });

  test('plugin config and uploads with arbitrary bytes: never a 500', async () => {
    const bytes = fc.uint8Array({ maxLength: 600 });
    const type = fc.constantFrom('application/json', 'application/gzip', 'multipart/form-data; boundary=x', 'text/plain', '');
    await fc.assert(
      fc.asyncProperty(bytes, type, fc.constantFrom('/plugins', '/plugins/com.none/config'), async (body, contentType, route) => {
        const method = route.endsWith('/config') ? 'PUT' : 'POST';
        const headers: Record<string, string> = { ...AUTH };
        if (contentType) headers['content-type'] = contentType;
        const res = await fetch(`${server.url}/api/v1${route}`, { method, headers, body });
        expect(res.status).not.toBe(500);
        expect(res.status).toBeGreaterThanOrEqual(400);
        await res.arrayBuffer();
      }),
      { seed: 6, numRuns: 400 },
    );
    expect(fs.readdirSync(path.join(server.work, 'data', 'plugins'))).toEqual([]);
  });
});
