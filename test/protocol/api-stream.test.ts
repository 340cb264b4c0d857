/**
 * API.CallStream on the wire and end to end in one process: batches are the
 * frames of their calls laid end to end, byte for byte what protobufjs makes
 * of the whole message (fuzzed, both directions); a batch never crosses the
 * message limit; over real gRPC against the runtime's own API service (the
 * conformance double), every call answers as its unary form does, calls in
 * flight are independent, and a stream the host ends or loses fails its calls
 * at once.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import descriptors from '../../src/gen/descriptors.json';
import { createApiDouble, type ApiDouble } from '../../src/conformance/api-double';
import type { Manifest } from '../../src/manifest';
import { ApiStream, apiStreamMember, emptyApiResponse, resultFrame } from '../../src/protocol/api-stream';
import { contract, type APIClient } from '../../src/protocol/contract';
import { TurnBatch } from '../../src/protocol/turn-batch';
import { prng, sample } from '../helpers/proto-samples';

const root = protobuf.Root.fromJSON(descriptors.root as protobuf.INamespace).resolveAll();
const service = contract().API.service as unknown as Record<string, grpc.MethodDefinition<object, object>>;
const unaryMethods = Object.entries(service).filter(([, d]) => !d.requestStream && !d.responseStream).map(([name]) => name);

describe('the wire', () => {
  test('every unary API method has a member of the same snake-case name in both oneofs', () => {
    for (const typeName of ['plughost.v1.APICall', 'plughost.v1.APIResult']) {
      const members = root.lookupType(typeName).oneofs.method.fieldsArray.map((f) => f.name).sort();
      expect(members).toEqual(unaryMethods.map(apiStreamMember).sort());
    }
    expect(apiStreamMember('KVDeleteAll')).toBe('kv_delete_all');
    expect(apiStreamMember('GetHostVersion')).toBe('get_host_version');
  });

  test('a batch (API.CallStream, Hooks.RunHookBatchStream) is its calls\' frames end to end: the bytes protobufjs makes of the whole message, and the same decoded message (fuzzed)', () => {
    const stream = service.CallStream;
    const hooks = (contract().Hooks.service as unknown as Record<string, grpc.MethodDefinition<object, object>>).RunHookBatchStream;
    for (const [typeName, element, serialize, deserialize] of [
      ['plughost.v1.APIStreamRequest', 'calls', stream.requestSerialize, stream.requestDeserialize],
      ['plughost.v1.APIStreamResponse', 'results', stream.responseSerialize, stream.responseDeserialize],
      ['plughost.v1.RunHookBatch', 'calls', hooks.requestSerialize, hooks.requestDeserialize],
      ['plughost.v1.RunHookBatchResult', 'results', hooks.responseSerialize, hooks.responseDeserialize],
    ] as const) {
      const type = root.lookupType(typeName);
      for (let seed = 1; seed <= 200; seed++) {
        const rnd = prng(seed * 104729);
        const whole = sample(type, rnd);
        const elements = (whole[element] as object[] | undefined) ?? [];
        const frames = elements.map((e) => serialize({ [element]: [e] }));
        const batched = Buffer.concat(frames);
        const where = `${typeName} seed ${seed}`;
        expect({ where, hex: batched.toString('hex') }).toEqual({ where, hex: Buffer.from(type.encode(type.fromObject(whole)).finish()).toString('hex') });
        expect({ where, decoded: deserialize(batched) }).toEqual({ where, decoded: deserialize(serialize(whole)) });
      }
    }
  });

  test('TurnBatch keeps the order, writes once per turn, and starts a new message before one would cross the limit', async () => {
    const writes: Buffer[] = [];
    const batch = new TurnBatch((m) => writes.push(m), 10);
    const frames = [3, 4, 2, 5, 12, 1].map((n, i) => Buffer.alloc(n, i));
    for (const f of frames) batch.push(f);
    expect(writes.map((w) => w.length)).toEqual([9, 5, 12]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.map((w) => w.length)).toEqual([9, 5, 12, 1]);
    expect(Buffer.concat(writes)).toEqual(Buffer.concat(frames));
    batch.push(Buffer.alloc(2));
    batch.discard();
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(4);
  });

  test('an answer frame carries the member named after its method; an unset member means the method\'s defaults', () => {
    const decoded = service.CallStream.responseDeserialize(resultFrame({ call_id: 7, kv_get: { found: true, value: Buffer.from('x') } })) as { results: Array<Record<string, unknown>> };
    expect(decoded.results[0]).toMatchObject({ call_id: 7, method: 'kv_get', kv_get: { found: true, value: Buffer.from('x') } });
    expect(emptyApiResponse('KVList')).toEqual({ keys: [], next_page_token: '' });
  });
});

describe('over gRPC, against the runtime\'s API service', () => {
  const manifest = { id: 'com.example.stream', name: 'stream', version: '1.0.0', server: { executable: 'x' }, permissions: [] } as unknown as Manifest;
  let server: grpc.Server;
  let double: ApiDouble;
  let client: APIClient;
  let stream: ApiStream;

  async function serve(): Promise<void> {
    double = createApiDouble(manifest, '9.9.9');
    server = new grpc.Server();
    server.addService(double.registration.definition, double.registration.implementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new (contract().API)(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as APIClient;
    stream = new ApiStream(client, 4 * 1024 * 1024);
  }

  beforeEach(serve);
  afterEach(async () => {
    stream.close('the test ended');
    client.close();
    await double.close();
    server.forceShutdown();
  });

  type Outcome = { res?: unknown; code?: number; details?: string };
  const viaUnary = (method: string, request: object): Promise<Outcome> =>
    new Promise((resolve) =>
      (client as unknown as Record<string, (r: object, cb: (e: grpc.ServiceError | null, r?: object) => void) => void>)[method](request, (err, res) =>
        resolve(err ? { code: err.code, details: err.details } : { res }),
      ),
    );
  const viaStream = (method: string, request: object): Promise<Outcome> =>
    stream.call({ method, request }, 10_000).then(
      (res) => ({ res: res ?? emptyApiResponse(method) }),
      (err: grpc.ServiceError) => ({ code: err.code, details: err.details }),
    );
  /** Clock readings differ between two runs; everything else must not. */
  const timeless = (o: Outcome): Outcome => JSON.parse(JSON.stringify(o, (k, v) => (/_ms$/.test(k) ? 'T' : v)));

  test('every method answers over the stream exactly as unary: results, refusals, gRPC codes and messages', async () => {
    const script: Array<[string, object]> = [
      ['KVSet', { key: 'a', value: Buffer.from('"1"') }],
      ['KVSet', { key: 'a', value: Buffer.from('"2"'), compare: true, expected_absent: true }],
      ['KVGet', { key: 'a' }],
      ['KVGet', { key: 'missing' }],
      ['KVSet', { key: '', value: Buffer.from('1') }],
      ['KVSet', { key: 'big', value: Buffer.alloc(1024 * 1024 + 1) }],
      ['KVList', { prefix: '', page_size: 5000 }],
      ['KVList', { prefix: 'a' }],
      ['KVDelete', { key: 'a' }],
      ['KVDeleteAll', {}],
      ['GetConfiguration', {}],
      ['SaveConfiguration', { configuration: Buffer.from('{nope') }],
      ['GetManifest', {}],
      ['GetHostVersion', {}],
      ['Log', { level: 'warn', message: 'hi', fields: Buffer.from('{"x":1}') }],
      ['PublishEvent', { topic: 'host.started', payload: Buffer.from('{}') }],
      ['PublishEvent', { topic: 'notes.saved', payload: Buffer.from('{}') }],
      ['CallPlugin', { plugin_id: 'com.other', hook: 'X', payload: Buffer.from('{}') }],
      ['Invoke', { method: 'secret.method', payload: Buffer.from('{}') }],
      ['LockAcquire', { name: 'leader', ttl_ms: '60000', wait_ms: '0' }],
      ['LockAcquire', { name: 'leader', ttl_ms: '60000', wait_ms: '0' }],
      ['LockRefresh', { name: 'leader', token: '9', ttl_ms: '1000' }],
      ['LockRelease', { name: 'leader', token: '1' }],
      ['LockAcquire', { name: '', ttl_ms: '1000' }],
      // A week's period, so the current period the refusal names is the same in both runs.
      ['JobClaim', { name: 'job', period: '1', every_ms: '604800000', ttl_ms: '1000' }],
      ['ClusterTime', {}],
    ];
    const unary: Outcome[] = [];
    for (const [method, request] of script) unary.push(timeless(await viaUnary(method, request)));
    const unaryCalls = double.calls.map((c) => `${c.method}:${c.outcome}`);
    stream.close('switching doubles');
    client.close();
    await double.close();
    server.forceShutdown();
    await serve();
    const streamed: Outcome[] = [];
    for (const [method, request] of script) streamed.push(timeless(await viaStream(method, request)));
    expect(streamed).toEqual(unary);
    // The double saw the same calls with the same outcomes: the stream ran the unary methods' code.
    expect(double.calls.map((c) => `${c.method}:${c.outcome}`)).toEqual(unaryCalls);
    expect(unary.filter((o) => o.code !== undefined).length).toBeGreaterThan(8);
  });

  test('500 calls in flight at once all answer correctly', async () => {
    const n = 500;
    const sets = await Promise.all(Array.from({ length: n }, (_, i) => viaStream('KVSet', { key: `k${i}`, value: Buffer.from(String(i)) })));
    expect(sets.every((o) => (o.res as { ok: boolean }).ok)).toBe(true);
    const gets = await Promise.all(Array.from({ length: n }, (_, i) => viaStream('KVGet', { key: `k${i}` })));
    expect(gets.map((o) => Buffer.from((o.res as { value: Buffer }).value).toString())).toEqual(Array.from({ length: n }, (_, i) => String(i)));
  });

  test('a slow call does not hold back calls sent after it; ending the host side fails it at once, with the reason', async () => {
    expect(await viaStream('LockAcquire', { name: 'busy', ttl_ms: '600000', wait_ms: '0' })).toMatchObject({ res: { acquired: true } });
    let slowSettled = false;
    // Waits up to 20 s for a lock nobody will release.
    const slow = viaStream('LockAcquire', { name: 'busy', ttl_ms: '1000', wait_ms: '20000' }).finally(() => {
      slowSettled = true;
    });
    expect(await viaStream('KVSet', { key: 'after', value: Buffer.from('1') })).toEqual({ res: { ok: true } });
    expect(await viaStream('ClusterTime', {})).toMatchObject({ res: { now_ms: expect.any(String) } });
    expect(slowSettled).toBe(false);
    await double.close();
    expect(await slow).toEqual({ code: grpc.status.UNAVAILABLE, details: 'the API stream to the host broke (UNAVAILABLE: the conformance run ended)' });
    expect(stream.open).toBe(false);
    // Later calls on the ended stream fail at once with the same reason.
    expect(await viaStream('KVGet', { key: 'after' })).toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  test('a host that goes away mid-call fails the calls in flight at once; a new stream to a live host works', async () => {
    const pending = [viaStream('LockAcquire', { name: 'x', ttl_ms: '1000', wait_ms: '0' }), viaStream('LockAcquire', { name: 'x', ttl_ms: '1000', wait_ms: '20000' })];
    await pending[0];
    server.forceShutdown();
    const outcome = await pending[1];
    // Long before its 30 s deadline: how the connection ended, not DEADLINE_EXCEEDED.
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain(outcome.code);
    expect(outcome.details).toMatch(/^the API stream to the host broke \((CANCELLED|UNAVAILABLE): /);
    client.close();
    await double.close();
    await serve();
    expect(await viaStream('GetHostVersion', {})).toEqual({ res: { version: '9.9.9' } });
  });

  test('a call over the message limit fails alone before it is sent; the stream goes on', async () => {
    const small = new ApiStream(client, 1024);
    try {
      expect(() => small.call({ method: 'KVSet', request: { key: 'k', value: Buffer.alloc(2048) } }, 5000)).toThrow(/KVSet: the request is \d+ bytes, over the message size limit of 1024 bytes/);
      expect(await small.call({ method: 'KVSet', request: { key: 'k', value: Buffer.from('1') } }, 5000)).toEqual({ ok: true });
    } finally {
      small.close('done');
    }
  });
});
