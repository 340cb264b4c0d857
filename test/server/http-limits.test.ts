/**
 * Connection hygiene with real sockets: slow and idle clients are closed by the
 * server's timeouts, the connection cap holds, every error written before
 * routing has the catalog's shape, and close() never waits on a stalled client.
 */
import * as net from 'node:net';
import { AUTH, pluginBundle, testServer, upload, type TestServer } from './helpers';

/** A raw client: what the server wrote, and whether the server closed the socket. */
class RawClient {
  readonly socket: net.Socket;
  text = '';
  closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d) => { this.text += d.toString('latin1'); });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve()));
  }

  connected(): Promise<void> {
    return new Promise((resolve) => (this.socket.connecting ? this.socket.once('connect', () => resolve()) : resolve()));
  }

  /** The JSON body of the first answer on this socket. */
  body(): { error: { code: string; message: string; details: Record<string, unknown> } } {
    const start = this.text.indexOf('\r\n\r\n');
    const head = this.text.slice(0, start);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    return JSON.parse(this.text.slice(start + 4, start + 4 + length));
  }

  status(): number {
    return Number(this.text.slice(9, 12));
  }
}

const portOf = (s: TestServer) => Number(new URL(s.url).port);

/** Waits for `p`, failing with `what` past `ms` (a bound on a wait, not a performance check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

describe('timeouts close slow clients', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer({ connections: { headersTimeoutMs: 800, requestTimeoutMs: 1500, keepAliveTimeoutMs: 500 } });
  });
  afterAll(() => server.stop());

  test('connect-only, partial head and slow body each get a 408 in the catalog shape and are closed', async () => {
    const connectOnly = new RawClient(portOf(server));
    const partialHead = new RawClient(portOf(server));
    await partialHead.connected();
    partialHead.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const slowBody = new RawClient(portOf(server));
    await slowBody.connected();
    slowBody.socket.write(`POST /api/v1/plugins/x/config HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
    // Keep the body trickling, so only the whole-request deadline can end it.
    const trickle = setInterval(() => slowBody.socket.writable && slowBody.socket.write(' '), 200);
    try {
      await within(Promise.all([connectOnly.closed, partialHead.closed, slowBody.closed]), 20_000, 'the server closing all three');
    } finally {
      clearInterval(trickle);
    }
    for (const c of [connectOnly, partialHead, slowBody]) {
      expect(c.status()).toBe(408);
      expect(c.body().error.code).toBe('PLUGHOST_ERR_REQUEST_TIMEOUT');
      expect(c.body().error.message).toContain('connections.requestTimeoutMs');
    }
  });

  test('an idle kept-alive connection is closed after the keep-alive timeout', async () => {
    const c = new RawClient(portOf(server));
    await c.connected();
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(c.closed, 20_000, 'the server closing the idle connection');
    expect(c.status()).toBe(200);
  });

  test('a streamed response outlives the request timeout', async () => {
    const bundle = await pluginBundle(server.work, 'com.test.limits', 'server/http-plugin.js');
    expect((await upload(server.url, bundle)).status).toBe(201);
    expect((await fetch(`${server.url}/api/v1/plugins/com.test.limits/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
    const res = await fetch(`${server.url}/plugins/com.test.limits/sse`);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: one');
    // Three request timeouts pass while the response stays open.
    await new Promise((r) => setTimeout(r, 4500));
    await server.host.callHook('com.test.limits', 'Release', {});
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
    expect(rest).toContain('data: two');
  });
});

describe('the connection cap', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer({ connections: { maxConnections: 4, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 } });
  });
  afterAll(() => server.stop());

  test('a connection past the cap is closed at once; service resumes when holders leave', async () => {
    const holders = Array.from({ length: 4 }, () => new RawClient(portOf(server)));
    await Promise.all(holders.map((h) => h.connected()));
    for (const h of holders) h.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // Let the server accept all four before the fifth arrives.
    await new Promise((r) => setTimeout(r, 300));
    const extra = new RawClient(portOf(server));
    await extra.connected();
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(extra.closed, 10_000, 'the server closing the connection past the cap');
    expect(extra.text).toBe('');
    for (const h of holders) h.socket.destroy();
    await Promise.all(holders.map((h) => h.closed));
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await fetch(`${server.url}/healthz`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});

describe('errors raised before routing have the catalog shape', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer();
  });
  afterAll(() => server.stop());

  const cases: Array<[string, string, number, string]> = [
    ['bad percent-encoding', 'GET /api/v1/plugins/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'PLUGHOST_ERR_BAD_REQUEST_PATH'],
    ['a NUL in a header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', 400, 'PLUGHOST_ERR_BAD_HTTP'],
    ['bad chunked encoding', 'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n', 400, 'PLUGHOST_ERR_BAD_HTTP'],
    ['Content-Length with chunked', 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 400, 'PLUGHOST_ERR_BAD_HTTP'],
    ['a path segment past the parameter limit', `GET /api/v1/plugins/${'a'.repeat(400)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 414, 'PLUGHOST_ERR_REQUEST_PATH_TOO_LONG'],
    ['a head over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431, 'PLUGHOST_ERR_HEADERS_TOO_LARGE'],
  ];
  test.each(cases)('%s', async (_name, raw, status, code) => {
    const c = new RawClient(portOf(server));
    await c.connected();
    c.socket.write(raw);
    await within(c.closed.then(() => undefined).catch(() => undefined), 10_000, 'an answer').catch(() => undefined);
    if (!c.socket.destroyed) c.socket.destroy();
    expect(c.status()).toBe(status);
    const body = c.body();
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    expect(body.error.details).toEqual(expect.any(Object));
  });
});

describe('shutdown never waits on a client', () => {
  test('a refused upload closes its connection instead of reading the rest of the body', async () => {
    const server = await testServer({ routes: { maxUploadBytes: 64 * 1024 } });
    try {
      const c = new RawClient(portOf(server));
      await c.connected();
      const boundary = 'xyz';
      c.socket.write(`POST /api/v1/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${60 * 1024 * 1024}\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="plugin"; filename="big.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`);
      c.socket.write(Buffer.alloc(256 * 1024, 1));
      // The client stops sending but keeps the socket open: only the server can end it.
      await within(c.closed, 20_000, 'the server closing the refused upload');
      expect(c.status()).toBe(413);
      expect(c.text.toLowerCase()).toContain('connection: close');
    } finally {
      await server.stop();
    }
  });

  test('close() ends a stalled upload after the grace period', async () => {
    const server = await testServer({ connections: { closeGraceMs: 500 } });
    const c = new RawClient(portOf(server));
    await c.connected();
    c.socket.write(`POST /api/v1/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n` +
      'Content-Type: application/gzip\r\nContent-Length: 1000000\r\n\r\n');
    c.socket.write(Buffer.alloc(1000, 1));
    await new Promise((r) => setTimeout(r, 300));
    await within(server.stop(), 30_000, 'close() with a stalled upload open');
    await within(c.closed, 5_000, 'the stalled connection closing');
  });
});

describe('bad multipart bodies are 400s', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer();
  });
  afterAll(() => server.stop());

  const post = (contentType: string, body: string) =>
    fetch(`${server.url}/api/v1/plugins`, { method: 'POST', headers: { ...AUTH, 'content-type': contentType }, body });

  test('multipart/form-data without a boundary', async () => {
    const res = await post('multipart/form-data', '--x\r\n\r\n');
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('PLUGHOST_ERR_UPLOAD_NO_BOUNDARY');
  });

  test('a multipart body cut short', async () => {
    const res = await post('multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="plugin"; filename="a.tar.gz"\r\n\r\nabc');
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('PLUGHOST_ERR_UPLOAD_INCOMPLETE');
  });
});
