/**
 * The host's direct HTTP/2 connection to a plugin: a gRPC server (grpc-js, on a
 * real TCP or unix socket) answers HookStream calls made over it as it
 * answers grpc-js's; the call's status comes from the trailers; a stream
 * that breaks fails its calls at once; a connection that cannot be opened
 * says why, and HookTransport then keeps the grpc-js channel.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { contract, statusError, type HooksClient } from '../../src/protocol/contract';
import { decodeHookCalls, encodeHookAnswer } from '../../src/protocol/hook-codec';
import { HookStream } from '../../src/protocol/hook-stream';
import { HookTransport, type HookRequest } from '../../src/protocol/hook-transport';
import { Http2Connection, type Http2Target } from '../../src/protocol/http2-connection';
import { StreamAnswers, withRawAnswers } from '../../src/protocol/stream-answers';
import type { RunHookStreamRequest__Output } from '../../src/gen/plughost/v1/RunHookStreamRequest';
import { tempDir, trackTimers } from '../helpers';

const timers = trackTimers();
const LIMIT = 4 * 1024 * 1024;

const request = (payload: string): HookRequest => ({ hook: 'H', payload: Buffer.from(payload), context: { request_id: '', user_id: '', values: {}, caller_plugin_id: '' } });
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'answered', (err: unknown) => err);

/**
 * A Hooks server whose RunHookBatchStream echoes each call's payload, reversed
 * in order within a message; a payload "hold" is never answered, "break" ends
 * the stream with RESOURCE_EXHAUSTED, "big:N" answers N bytes.
 */
async function startServer(address: string): Promise<{ server: grpc.Server; target: Http2Target; agents: string[] }> {
  const agents: string[] = [];
  const server = new grpc.Server();
  server.addService(withRawAnswers(contract().Hooks.service, 'RunHookBatchStream', decodeHookCalls), {
    RunHookBatchStream: (call: grpc.ServerDuplexStream<RunHookStreamRequest__Output[], Buffer>) => {
      agents.push(String(call.metadata.get('user-agent')[0] ?? 'none').split('/')[0]);
      const answers = new StreamAnswers(call as unknown as grpc.ServerDuplexStream<unknown, Buffer>, LIMIT, () => Buffer.alloc(0));
      call.on('data', (calls: RunHookStreamRequest__Output[]) => {
        for (const c of [...calls].reverse()) {
          const text = String(c.request!.payload);
          if (text === 'break') return answers.fail(statusError(grpc.status.RESOURCE_EXHAUSTED, 'the server gave up'));
          answers.begin();
          if (text === 'hold') continue;
          const payload = text.startsWith('big:') ? Buffer.alloc(Number(text.slice(4)), 'b') : Buffer.from(text);
          answers.answer(Number(c.call_id), encodeHookAnswer({ call_id: c.call_id, response: { payload, rejected: false, reason: '' } }));
        }
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const target: Http2Target = address.startsWith('unix:')
    ? { network: 'unix', address: address.slice(5), tls: null, windowBytes: 8 * 1024 * 1024, maxMessageBytes: LIMIT }
    : { network: 'tcp', address: `127.0.0.1:${port}`, tls: null, windowBytes: 8 * 1024 * 1024, maxMessageBytes: LIMIT };
  return { server, target, agents };
}

afterAll(() => expect(timers.pendingFrom('/src/')).toEqual([]));

describe.each(['tcp', 'unix'])('HookStream over a direct connection (%s)', (network) => {
  let work: ReturnType<typeof tempDir>;
  let server: grpc.Server;
  let target: Http2Target;
  let agents: string[];
  let conn: Http2Connection;

  beforeEach(async () => {
    work = tempDir();
    ({ server, target, agents } = await startServer(network === 'tcp' ? '127.0.0.1:0' : `unix:${path.join(work.dir, 's.sock')}`));
    conn = await Http2Connection.open(target, 5_000);
  });

  afterEach(() => {
    conn.destroy();
    server.forceShutdown();
    work.cleanup();
  });

  test('200 calls in flight, answered out of order, each get their own answer; a 3 MiB answer arrives whole; grpc-js never took part', async () => {
    const stream = new HookStream({} as HooksClient, undefined, LIMIT, conn);
    const texts = Array.from({ length: 200 }, (_, i) => `call ${i}`);
    const answers = await Promise.all(texts.map((t) => stream.call(request(t), 10_000)));
    expect(answers.map((a) => String(a.payload))).toEqual(texts);
    const big = await stream.call(request(`big:${3 * 1024 * 1024}`), 10_000);
    expect(big.payload.equals(Buffer.alloc(3 * 1024 * 1024, 'b'))).toBe(true);
    expect(agents).toEqual(['none']);
    stream.close('the test ended');
  });

  test('a stream the server ends mid-call fails every call in flight at once with its status; the connection carries the next stream', async () => {
    let ended: grpc.ServiceError | undefined;
    const stream = new HookStream({} as HooksClient, (err) => (ended = err), LIMIT, conn);
    const held = Array.from({ length: 5 }, () => failure(stream.call(request('hold'), 60_000)));
    // Answered calls are not held, so the server has read the held ones.
    expect(String((await stream.call(request('x'), 60_000)).payload)).toBe('x');
    const breaking = failure(stream.call(request('break'), 60_000));
    for (const outcome of await Promise.all([...held, breaking])) {
      expect(outcome).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, message: expect.stringContaining('the server gave up') });
    }
    expect(ended).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    expect(stream.open).toBe(false);
    const next = new HookStream({} as HooksClient, undefined, LIMIT, conn);
    expect(String((await next.call(request('again'), 10_000)).payload)).toBe('again');
    next.close('the test ended');
  });

  test('destroying the connection (as at a plugin stop) fails the calls in flight at once, and it is no longer usable', async () => {
    const stream = new HookStream({} as HooksClient, undefined, LIMIT, conn);
    const held = failure(stream.call(request('hold'), 60_000));
    expect(String((await stream.call(request('x'), 60_000)).payload)).toBe('x');
    conn.destroy();
    expect(await held).toMatchObject({ code: grpc.status.UNAVAILABLE, message: expect.stringContaining('the hook stream to the plugin broke') });
    expect(conn.usable).toBe(false);
  });

  test('an answer over the message limit ends the stream with RESOURCE_EXHAUSTED naming both sizes, as grpc-js does', async () => {
    const small = await Http2Connection.open({ ...target, maxMessageBytes: 1024 }, 5_000);
    try {
      const stream = new HookStream({} as HooksClient, undefined, LIMIT, small);
      expect(await failure(stream.call(request('big:2048'), 10_000))).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, message: expect.stringMatching(/larger than max \(\d+ vs\. 1024\)/) });
    } finally {
      small.destroy();
    }
  });

  test('a method the server does not have ends with its UNIMPLEMENTED status (a trailers-only answer)', async () => {
    const stream = conn.stream('/plughost.v1.Hooks/NoSuchMethod', (b) => b);
    const status = await new Promise<grpc.StatusObject>((resolve) => stream.once('status', resolve));
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});

describe('opening a direct connection', () => {
  let work: ReturnType<typeof tempDir>;
  const servers: net.Server[] = [];
  beforeEach(() => {
    work = tempDir();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
    work.cleanup();
  });

  const target = (address: string): Http2Target => ({ network: 'unix', address, tls: null, windowBytes: 65_535, maxMessageBytes: LIMIT });
  /** A unix socket server that does `onConnection` with every connection, and its path. */
  const rawServer = async (onConnection: (socket: net.Socket) => void): Promise<string> => {
    const socketPath = path.join(work.dir, `raw${servers.length}.sock`);
    const server = net.createServer(onConnection);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return socketPath;
  };

  test('fails with the socket error when nothing listens there', async () => {
    const missing = path.join(work.dir, 'missing.sock');
    expect(fs.existsSync(missing)).toBe(false);
    await expect(Http2Connection.open(target(missing), 5_000)).rejects.toThrow(/ENOENT/);
  });

  test('fails when the peer closes the connection before its HTTP/2 settings', async () => {
    const socketPath = await rawServer((socket) => socket.destroy());
    await expect(Http2Connection.open(target(socketPath), 5_000)).rejects.toThrow(/closed the connection before its HTTP\/2 settings|ECONNRESET|EPIPE/);
  });

  test('fails after its timeout when the peer never speaks HTTP/2', async () => {
    const sockets: net.Socket[] = [];
    const socketPath = await rawServer((socket) => sockets.push(socket));
    await expect(Http2Connection.open(target(socketPath), 200)).rejects.toThrow('no HTTP/2 settings from the plugin within 200 ms');
    for (const s of sockets) s.destroy();
  });
});

describe('HookTransport', () => {
  let server: grpc.Server;
  let target: Http2Target;
  let agents: string[];
  let client: HooksClient;

  beforeEach(async () => {
    ({ server, target, agents } = await startServer('127.0.0.1:0'));
    client = new (contract().Hooks)(target.address, grpc.credentials.createInsecure()) as unknown as HooksClient;
  });
  afterEach(() => {
    client.close();
    server.forceShutdown();
  });

  const transport = (openHttp2: (timeoutMs: number) => Promise<Http2Connection>, onStreamEnded: () => void = () => undefined): HookTransport =>
    new HookTransport(client, { streamed: true, batched: true, maxMessageBytes: LIMIT, openHttp2, onStreamOpened: () => undefined, onStreamEnded });

  test('keeps the grpc-js channel, and says why, when the direct connection cannot be opened', async () => {
    const t = transport((ms) => Http2Connection.open({ ...target, address: '127.0.0.1:1' }, ms));
    expect(await t.prepare(5_000)).toMatch(/ECONNREFUSED/);
    expect(String((await t.call(request('via grpc-js'), 10_000)).payload)).toBe('via grpc-js');
    expect(agents).toEqual(['grpc-node-js']);
    t.close('the test ended');
  });

  test('uses the direct connection once prepared, and the grpc-js channel for the next stream once it is gone', async () => {
    let conn: Http2Connection | undefined;
    let broke!: () => void;
    const streamBroke = new Promise<void>((resolve) => (broke = resolve));
    const t = transport(async (ms) => (conn = await Http2Connection.open(target, ms)), () => broke());
    expect(await t.prepare(5_000)).toBeUndefined();
    expect(String((await t.call(request('direct'), 10_000)).payload)).toBe('direct');
    conn!.destroy();
    // The stream on it broke; the next call opens one on the channel.
    await streamBroke;
    expect(String((await t.call(request('channel'), 10_000)).payload)).toBe('channel');
    expect(agents).toEqual(['none', 'grpc-node-js']);
    t.close('the test ended');
  });
});
