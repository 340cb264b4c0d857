/**
 * Large plugin HTTP bodies over side channels (one-use unix sockets beside ServeHTTPStream),
 * through a real server, real SDK plugin processes and real sockets. Bodies are checked by
 * hash; which path a body took by the plugin's own count of the channels it opened; cancels
 * and crashes by what the client and the plugin saw. No timing thresholds: waits are bounded
 * polls of state.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import pino from 'pino';
import { Errors } from '../../src/errors';
import { PluginHost } from '../../src/runtime';
import { tempDir } from '../helpers';
import { AUTH, pluginBundle, pollUntil as until, testServer, upload, type TestServer } from './helpers';

// The fixture's download bytes, recomputed here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { bytesAt } = require('../fixtures/server/side-channel-plugin.js') as { bytesAt(seed: number, offset: number, n: number): Buffer };

const ID = 'com.test.sidechannel';
const UNLISTED = 'com.test.sidechannel.unlisted';
const DEAF = 'com.test.sidechannel.deaf';
const MiB = 1024 * 1024;

type Channels = { listened: number; connected: number };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A download read to its end: the bytes' hash and count, or how the body broke off. */
function download(url: string): Promise<{ status: number; bytes: number; sha256: string; contentLength: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, sha256: hash.digest('hex'), contentLength: res.headers['content-length'] }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`aborted after ${bytes} bytes`)));
    }).on('error', reject);
  });
}

/** POSTs `body` in 1 MiB writes; resolves with the JSON answer. */
function post(url: string, body: Buffer): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode!, json: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode!, json: text });
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    for (let at = 0; at < body.length; at += MiB) req.write(body.subarray(at, at + MiB));
    req.end();
  });
}

describe('plugin HTTP side channels', () => {
  let server: TestServer;
  const route = (p: string, id = ID) => `${server.url}/plugins/${id}${p}`;
  const hook = <T>(name: string, id = ID) => server.host.callHook(id, name, {}).then((r) => r.payload as T);
  const channels = (id = ID) => hook<Channels>('Channels', id);
  const leftovers = async () => (await hook<{ files: string[] }>('SocketDir')).files;

  beforeAll(async () => {
    server = await testServer({ hostOptions: { defaults: { restartBackoffMs: 100 } } });
    for (const [id, extra] of [[ID, {}], [UNLISTED, { env: { SIDE_FIXTURE_MODE: 'unlisted' } }], [DEAF, { env: { SIDE_FIXTURE_MODE: 'deaf' } }]] as const) {
      expect((await upload(server.url, await pluginBundle(server.work, id, 'server/side-channel-plugin.js', extra))).status).toBe(201);
      expect((await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
    }
  });
  afterAll(() => server.stop());

  test('a 12 MiB upload goes over a side channel, byte for byte', async () => {
    const before = await channels();
    const body = randomBytes(12 * MiB);
    const res = await post(route('/hash'), body);
    expect(res).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } });
    expect(await channels()).toEqual({ ...before, connected: before.connected + 1 });
    expect(await leftovers()).toEqual([]);
  });

  test('a 12 MiB download of a declared length and one of bytes go over side channels, byte for byte', async () => {
    const before = await channels();
    const bytes = 12 * MiB + 77;
    const want = sha(bytesAt(5, 0, bytes));
    expect(await download(route(`/produce?bytes=${bytes}&seed=5`))).toEqual({ status: 200, bytes, sha256: want, contentLength: String(bytes) });
    expect(await download(route(`/bytes?bytes=${bytes}&seed=5`))).toEqual({ status: 200, bytes, sha256: want, contentLength: String(bytes) });
    expect(await channels()).toEqual({ ...before, listened: before.listened + 2 });
    expect(await leftovers()).toEqual([]);
  });

  test('small bodies, and a large stream of unknown length, stay on the stream', async () => {
    const before = await channels();
    const body = randomBytes(MiB - 1);
    expect(await post(route('/hash'), body)).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } });
    const small = 512 * 1024;
    expect((await download(route(`/produce?bytes=${small}&seed=2`))).sha256).toBe(sha(bytesAt(2, 0, small)));
    const unknown = 9 * MiB;
    const got = await download(route(`/produce?bytes=${unknown}&seed=3&sized=0`));
    expect(got).toEqual({ status: 200, bytes: unknown, sha256: sha(bytesAt(3, 0, unknown)), contentLength: undefined });
    expect(await channels()).toEqual(before);
  });

  test('several large exchanges at once, both ways, each intact', async () => {
    const before = await channels();
    const uploads = [9, 10, 11].map((m) => randomBytes(m * MiB + m));
    const sizes = [8 * MiB + 1, 9 * MiB + 3, 10 * MiB + 5];
    const results = await Promise.all([
      ...uploads.map(async (body) => expect(await post(route('/hash'), body)).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } })),
      ...sizes.map(async (bytes, i) => expect((await download(route(`/produce?bytes=${bytes}&seed=${10 + i}`))).sha256).toBe(sha(bytesAt(10 + i, 0, bytes)))),
    ]);
    expect(results).toHaveLength(6);
    expect(await channels()).toEqual({ listened: before.listened + 3, connected: before.connected + 3 });
    expect(await leftovers()).toEqual([]);
  });

  test("the plugin's socket folder is private (0700) and keeps no channel files", async () => {
    const dir = await hook<{ dir: string; mode: number; files: string[] }>('SocketDir');
    expect(dir.mode).toBe(0o700);
    expect((fs.statSync(dir.dir).mode & 0o777).toString(8)).toBe('700');
    expect(dir.files).toEqual([]);
  });

  test('a client that goes away mid-upload: the plugin sees the abort, nothing is left, both keep serving', async () => {
    const before = await channels();
    const req = http.request(route('/hash?tag=gone-up'), { method: 'POST', headers: { 'content-length': 32 * MiB } });
    req.on('error', () => undefined);
    req.write(randomBytes(4 * MiB));
    // The plugin has connected to the channel: the upload is under way on it.
    await until(channels, (c) => c.connected > before.connected, 'the plugin connecting to the request channel');
    req.destroy();
    const seen = await until(() => hook<{ aborted: string[]; failed: string[] }>('Aborted'), (a) => a.aborted.includes('gone-up'), 'the plugin seeing the abort');
    expect(seen.failed.some((f) => f.startsWith('gone-up:'))).toBe(true);
    await until(leftovers, (files) => files.length === 0, 'channel files left');
    const body = randomBytes(2 * MiB);
    expect(await post(route('/hash'), body)).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } });
  });

  test('a client that goes away mid-download: the plugin sees the abort, nothing is left, both keep serving', async () => {
    await new Promise<void>((resolve, reject) => {
      http.get(route(`/produce?bytes=${64 * MiB}&tag=gone-down`), (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      }).on('error', reject);
    });
    await until(() => hook<{ aborted: string[] }>('Aborted'), (a) => a.aborted.includes('gone-down'), 'the plugin seeing the abort');
    await until(leftovers, (files) => files.length === 0, 'channel files left');
    const bytes = 8 * MiB;
    expect((await download(route(`/produce?bytes=${bytes}&seed=4`))).sha256).toBe(sha(bytesAt(4, 0, bytes)));
  });

  test('a plugin that does not list the capability and names a side channel anyway gets the stream', async () => {
    const before = await channels(UNLISTED);
    const body = randomBytes(9 * MiB);
    expect(await post(route('/hash', UNLISTED), body)).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } });
    const bytes = 9 * MiB;
    expect(await download(route(`/produce?bytes=${bytes}&seed=6`, UNLISTED))).toEqual({ status: 200, bytes, sha256: sha(bytesAt(6, 0, bytes)), contentLength: String(bytes) });
    expect(await channels(UNLISTED)).toEqual(before);
  });

  test("a plugin that never reaches the request's channel: the exchange fails with the host's 502, and the listener's file is gone", async () => {
    const res = await post(route('/hash?tag=deaf', DEAF), randomBytes(3 * MiB));
    expect(res.status).toBe(502);
    expect(JSON.stringify(res.json)).toMatch(/side channel/);
    expect((await hook<{ files: string[] }>('SocketDir', DEAF)).files).toEqual([]);
    expect((await channels(DEAF)).connected).toBe(1);
    // The plugin keeps serving what stays on the stream.
    const small = randomBytes(1000);
    expect(await post(route('/hash', DEAF), small)).toEqual({ status: 200, json: { bytes: small.length, sha256: sha(small) } });
  });

  test('the plugin killed mid-download: the client sees an aborted body, never a short complete one', async () => {
    const { pid } = await hook<{ pid: number }>('Pid');
    const outcome = await new Promise<string>((resolve) => {
      http.get(route(`/produce?bytes=${256 * MiB}&tag=killed`), (res) => {
        let bytes = 0;
        res.once('data', () => process.kill(pid, 'SIGKILL'));
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve(`complete after ${bytes} bytes`));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      }).on('error', () => resolve('aborted'));
    });
    expect(outcome).toBe('aborted');
    // The host restarts the plugin, and it serves large bodies again.
    const bytes = 8 * MiB;
    const got = await until(
      () => download(route(`/produce?bytes=${bytes}&seed=7`)).catch((err: Error) => ({ status: 0, sha256: err.message })),
      (r) => r.status === 200,
      'the restarted plugin serving',
    );
    expect(got.sha256).toBe(sha(bytesAt(7, 0, bytes)));
  });
});

describe('plugin HTTP with defaults.httpSideChannel false', () => {
  let server: TestServer;
  const route = (p: string) => `${server.url}/plugins/${ID}${p}`;

  beforeAll(async () => {
    server = await testServer({ hostOptions: { defaults: { httpSideChannel: false } } });
    expect((await upload(server.url, await pluginBundle(server.work, ID, 'server/side-channel-plugin.js'))).status).toBe(201);
    expect((await fetch(`${server.url}/api/v1/plugins/${ID}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  });
  afterAll(() => server.stop());

  test('large bodies both ways stay on the stream, intact', async () => {
    const body = randomBytes(9 * MiB);
    expect(await post(route('/hash'), body)).toEqual({ status: 200, json: { bytes: body.length, sha256: sha(body) } });
    const bytes = 9 * MiB;
    expect((await download(route(`/produce?bytes=${bytes}&seed=8`))).sha256).toBe(sha(bytesAt(8, 0, bytes)));
    expect((await server.host.callHook(ID, 'Channels', {})).payload).toEqual({ listened: 0, connected: 0 });
  });
});

test('a side-channel size that is not a whole number from 1 to 2^32-1 is refused when the host opens, naming the option', async () => {
  const work = tempDir();
  try {
    for (const bad of [0, 1.5, 2 ** 32]) {
      await expect(
        PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }), defaults: { httpSideChannelMinBytes: bad } }),
      ).rejects.toMatchObject({ code: Errors.HOST_BAD_OPTION.code, message: expect.stringContaining('defaults.httpSideChannelMinBytes') });
    }
  } finally {
    work.cleanup();
  }
});
