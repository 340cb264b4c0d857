/**
 * Plugin HTTP through a real server, a real SDK plugin process and real gRPC, over both
 * transports: every exchange multiplexed on one ServeHTTPStream, and one ServeHTTP stream per
 * request. Bodies are checked by hash; flow control by how far a plugin got, not by timing.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { AUTH, pluginBundle, pollUntil as until, testServer, upload, type TestServer } from './helpers';

// The fixture's download bytes, recomputed here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { bytesAt } = require('../fixtures/server/stream-plugin.js') as { bytesAt(seed: number, offset: number, n: number): Buffer };

const ID = 'com.test.httpstream';
const MiB = 1024 * 1024;
/** A small window, so that flow control shows within a few MiB. */
const WINDOW = 256 * 1024;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const expectedDownload = (seed: number, bytes: number) => sha(bytesAt(seed, 0, bytes));

/** A GET that reads nothing after the head until `resume()`; `bytes()` says how much arrived. */
function pausedDownload(url: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest; bytes(): number; rest(): Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.pause();
      const chunks: Buffer[] = [];
      let n = 0;
      resolve({
        res,
        req,
        bytes: () => n,
        rest: () =>
          new Promise((done, fail) => {
            res.on('data', (c: Buffer) => {
              chunks.push(c);
              n += c.length;
            });
            res.on('end', () => done(Buffer.concat(chunks)));
            res.on('error', fail);
            res.resume();
          }),
      });
    });
    req.on('error', reject);
  });
}

describe.each([['stream'], ['per-request']] as const)('plugin HTTP over %s', (transport) => {
  let server: TestServer;
  const route = (p: string) => `${server.url}/plugins/${ID}${p}`;
  const hook = <T>(name: string, payload: unknown = {}) => server.host.callHook(ID, name, payload).then((r) => r.payload as T);

  beforeAll(async () => {
    server = await testServer({ hostOptions: { defaults: { httpTransport: transport, flowControlWindowBytes: WINDOW, restartBackoffMs: 100 } } });
    expect((await upload(server.url, await pluginBundle(server.work, ID, 'server/stream-plugin.js'))).status).toBe(201);
    expect((await fetch(`${server.url}/api/v1/plugins/${ID}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  });
  afterAll(() => server.stop());

  test('many exchanges at once, each body intact both ways, on one stream or one stream each', async () => {
    const before = await hook<{ ServeHTTP: number; ServeHTTPStream: number }>('Streams');
    const uploads = Array.from({ length: 24 }, (_, i) => randomBytes((i * 37_813) % 700_000));
    const jobs = [
      ...uploads.map(async (body, i) => {
        const res = await fetch(route(i % 2 ? '/hash' : '/echo'), { method: 'POST', body });
        expect(res.status).toBe(200);
        if (i % 2) expect(await res.json()).toEqual({ bytes: body.length, sha256: sha(body) });
        else expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(sha(body));
      }),
      ...Array.from({ length: 16 }, async (_, i) => {
        const bytes = (i + 1) * 97_001;
        const res = await fetch(route(`/produce?bytes=${bytes}&seed=${i}&chunk=${1000 + i * 5000}`));
        expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(expectedDownload(i, bytes));
      }),
    ];
    await Promise.all(jobs);
    const after = await hook<{ ServeHTTP: number; ServeHTTPStream: number }>('Streams');
    if (transport === 'stream') {
      expect(after.ServeHTTP).toBe(before.ServeHTTP);
      // Opened by the first request of this suite, then shared by every exchange.
      expect(after.ServeHTTPStream).toBe(1);
    } else {
      expect(after.ServeHTTP - before.ServeHTTP).toBe(jobs.length);
      expect(after.ServeHTTPStream).toBe(0);
    }
  });

  test('32 MiB up and 32 MiB down at the same time, hash-checked', async () => {
    const body = randomBytes(32 * MiB);
    const [up, down] = await Promise.all([
      fetch(route('/hash'), { method: 'POST', body }).then((r) => r.json()),
      fetch(route(`/produce?bytes=${32 * MiB}&seed=9&chunk=${MiB}`)).then(async (r) => sha(new Uint8Array(await r.arrayBuffer()))),
    ]);
    expect(up).toEqual({ bytes: body.length, sha256: sha(body) });
    expect(down).toBe(expectedDownload(9, 32 * MiB));
  });

  test('a client that stops reading holds up its own exchange only', async () => {
    const total = 64 * MiB;
    const slow = await pausedDownload(route(`/produce?bytes=${total}&seed=3&tag=slow`));
    const produced = async () => (await hook<{ bytes: number }>('Produced', { tag: 'slow' })).bytes;
    // While the slow client reads nothing, fast downloads on the same plugin get all their bytes,
    // until the slow exchange stops making progress between two of them: the plugin produced what
    // the window and the sockets hold, never the whole body on its behalf.
    let before = -1;
    let now = await produced();
    for (let seed = 10; now !== before && seed < 40; seed++) {
      const fast = await fetch(route(`/produce?bytes=${4 * MiB}&seed=${seed}`));
      expect(sha(new Uint8Array(await fast.arrayBuffer()))).toBe(expectedDownload(seed, 4 * MiB));
      before = now;
      now = await produced();
    }
    expect(now).toBe(before);
    expect(now).toBeLessThan(total);
    // Reading again, the slow client gets every byte, intact.
    expect(sha(await slow.rest())).toBe(expectedDownload(3, total));
  });

  test('a client that goes away mid-body: the plugin sees the abort, other exchanges go on', async () => {
    const other = fetch(route(`/produce?bytes=${8 * MiB}&seed=5`)).then(async (r) => sha(new Uint8Array(await r.arrayBuffer())));
    // An upload that stops after 1 MiB of the 10 MiB it announced.
    const up = http.request(route('/hash?tag=gone-up'), { method: 'POST', headers: { 'content-length': String(10 * MiB) } });
    up.on('error', () => undefined);
    up.write(randomBytes(MiB), () => setImmediate(() => up.destroy()));
    // A download whose client leaves after the first bytes.
    const down = await pausedDownload(route(`/produce?bytes=${64 * MiB}&tag=gone-down`));
    down.req.on('error', () => undefined);
    down.req.destroy();
    const aborted = await until(
      () => hook<{ tags: string[] }>('Aborted'),
      (r) => r.tags.includes('gone-up') && r.tags.includes('gone-down'),
      'the plugin to see both clients go away',
    );
    expect(aborted.tags).toEqual(expect.arrayContaining(['gone-up', 'gone-down']));
    expect(await other).toBe(expectedDownload(5, 8 * MiB));
  });

  test('a plugin crash fails every exchange in flight at once with the 502 error shapes, then the plugin serves again', async () => {
    const waiting = Array.from({ length: 5 }, (_, i) => fetch(route(`/wait?tag=w${i}`)));
    const midBody = await pausedDownload(route(`/produce?bytes=${64 * MiB}&seed=6`));
    // Every waiting exchange has reached the plugin before it goes.
    await until(() => hook<{ tags: string[] }>('Waiting'), (r) => r.tags.length === 5, 'the waiting requests to reach the plugin');
    await hook('Crash');
    for (const res of await Promise.all(waiting)) {
      expect(res.status).toBe(502);
      const { error } = await res.json();
      expect(['PLUGHOST_ERR_HOOK_FAILED', 'PLUGHOST_ERR_PLUGIN_NOT_RUNNING']).toContain(error.code);
      expect(error.message).toContain(ID);
    }
    // A response already under way is cut, so its client sees it incomplete.
    await expect(midBody.rest()).rejects.toThrow();
    await until(async () => (await server.host.get(ID)).state, (s) => s === 'running', 'the plugin to come back');
    const body = randomBytes(300_000);
    expect(await (await fetch(route('/hash'), { method: 'POST', body })).json()).toEqual({ bytes: body.length, sha256: sha(body) });
  });
});

test('a plugin on the raw contract without ServeHTTPStream serves over ServeHTTP, request parts within 64 KiB', async () => {
  const server = await testServer();
  try {
    const id = 'com.test.rawhttp';
    expect((await upload(server.url, await pluginBundle(server.work, id, 'server/raw-http-plugin.js'))).status).toBe(201);
    expect((await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
    const body = randomBytes(5 * MiB + 17);
    const res = await fetch(`${server.url}/plugins/${id}/up`, { method: 'POST', body });
    expect(await res.json()).toEqual({ bytes: body.length, sha256: sha(body), largest: 64 * 1024 });
    const down = await fetch(`${server.url}/plugins/${id}/down?bytes=${3 * MiB}`);
    expect((await down.arrayBuffer()).byteLength).toBe(3 * MiB);
  } finally {
    await server.stop();
  }
});
