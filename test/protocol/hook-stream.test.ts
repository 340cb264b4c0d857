/**
 * How hook calls and their answers are cut into messages on
 * RunHookBatchStream: a call alone in flight, and the last answer of a turn,
 * go at once (no loop turn of waiting); calls made while others are in flight
 * still share one message per turn, and so do answers. Real gRPC between a
 * HookStream and a server answering through StreamAnswers; the observables are
 * the messages each side receives, never timings.
 */
import * as grpc from '@grpc/grpc-js';
import { contract, type HooksClient } from '../../src/protocol/contract';
import { HookStream } from '../../src/protocol/hook-stream';
import { StreamAnswers, withRawAnswers } from '../../src/protocol/stream-answers';
import { TurnBatch } from '../../src/protocol/turn-batch';
import type { RunHookBatch__Output } from '../../src/gen/plughost/v1/RunHookBatch';

const LIMIT = 4 * 1024 * 1024;

test('TurnBatch: a frame pushed as the last of its turn is written at once, with what was queued before it', () => {
  const writes: Buffer[] = [];
  const batch = new TurnBatch((m) => writes.push(m), 1024);
  batch.push(Buffer.from('a'), true);
  // Written inside push: no turn of the loop has passed.
  expect(writes.map(String)).toEqual(['a']);
  batch.push(Buffer.from('b'));
  batch.push(Buffer.from('c'));
  expect(writes).toHaveLength(1);
  batch.push(Buffer.from('d'), true);
  expect(writes.map(String)).toEqual(['a', 'bcd']);
  batch.discard();
});

describe('over gRPC', () => {
  let server: grpc.Server;
  let client: HooksClient;
  let stream: HookStream;
  /** Calls per message the server received. */
  let received: number[];
  /** Answers per message the caller received, counted from the answers' own stream. */
  let answered: number[];
  /** The server answers nothing until it holds this many calls, then answers them all in one turn. */
  let holdUntil: number;

  const frame = (callId: string, payload: Buffer): Buffer =>
    (contract().Hooks.service as unknown as Record<string, grpc.MethodDefinition<object, object>>).RunHookBatchStream.responseSerialize({
      results: [{ call_id: callId, response: { payload, rejected: false, reason: '' } }],
    });

  beforeEach(async () => {
    received = [];
    answered = [];
    holdUntil = 1;
    server = new grpc.Server();
    server.addService(withRawAnswers(contract().Hooks.service, 'RunHookBatchStream'), {
      RunHookBatchStream: (call: grpc.ServerDuplexStream<RunHookBatch__Output, Buffer>) => {
        const answers = new StreamAnswers(call as unknown as grpc.ServerDuplexStream<unknown, Buffer>, LIMIT, () => Buffer.alloc(0));
        let held: RunHookBatch__Output['calls'] = [];
        call.on('data', (msg: RunHookBatch__Output) => {
          received.push(msg.calls.length);
          for (let i = 0; i < msg.calls.length; i++) answers.begin();
          held = [...held, ...msg.calls];
          if (held.length < holdUntil) return;
          const now = held;
          held = [];
          for (const c of now) answers.answer(Number(c.call_id), frame(c.call_id, c.request!.payload));
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new (contract().Hooks)(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HooksClient;
    stream = new HookStream(client, undefined, LIMIT);
    // Every message the caller receives passes through here: the stream's own duplex, read beside HookStream.
    (stream as unknown as { duplex: grpc.ClientDuplexStream<unknown, unknown[]> }).duplex.on('data', (answers) => answered.push(answers.length));
  });

  afterEach(() => {
    stream.close('the test ended');
    client.close();
    server.forceShutdown();
  });

  const call = (i: number) =>
    stream.call({ hook: 'H', payload: Buffer.from(String(i)), context: { request_id: '', user_id: '', values: {}, caller_plugin_id: '' } }, 10_000).then((r) => String(r.payload));

  test('sequential calls: one message each way per call', async () => {
    for (let i = 0; i < 5; i++) expect(await call(i)).toBe(String(i));
    expect(received).toEqual([1, 1, 1, 1, 1]);
    expect(answered).toEqual([1, 1, 1, 1, 1]);
  });

  test('under load calls still share a message: the first of a burst goes alone, the rest of its turn together; answers given in one turn go as one message', async () => {
    holdUntil = 50;
    const burst = Array.from({ length: 50 }, (_, i) => call(i));
    // The first call found nothing in flight and went at once; the 49 made beside it waited for the turn's end.
    expect(await Promise.all(burst)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(received).toEqual([1, 49]);
    // The server answered all 50 in one turn: the last answer took the other 49 with it.
    expect(answered).toEqual([50]);

    // With calls in flight, a new call waits for its turn's end with the others of that turn.
    holdUntil = 31;
    const first = call(100);
    await new Promise((resolve) => setImmediate(resolve));
    const more = Array.from({ length: 30 }, (_, i) => call(101 + i));
    expect(await Promise.all([first, ...more])).toEqual(Array.from({ length: 31 }, (_, i) => String(100 + i)));
    expect(received).toEqual([1, 49, 1, 30]);
    expect(answered).toEqual([50, 31]);
  });
});
