/**
 * The host's hand-written codec for RunHookBatchStream against protobufjs, the
 * reference: a call's frame is byte for byte what protobufjs makes of the same
 * RunHookBatch, and answers read from any RunHookBatchResult protobufjs makes
 * are the ones protobufjs reads (fuzzed, with non-ASCII strings, map entries,
 * and lengths past one varint byte); fields it does not know are skipped;
 * bytes that are not a message throw. One difference, on purpose: a lone
 * surrogate is written as U+FFFD, as Buffer writes it (valid UTF-8, which Go's
 * proto3 decoder insists on), where protobufjs writes the surrogate's own bytes.
 */
import type * as grpc from '@grpc/grpc-js';
import { contract } from '../../src/protocol/contract';
import { prng as rng } from '../helpers/proto-samples';
import { decodeHookAnswers, decodeHookCalls, encodeHookAnswer, encodeHookCall } from '../../src/protocol/hook-codec';

const method = (contract().Hooks.service as unknown as Record<string, grpc.MethodDefinition<object, object>>).RunHookBatchStream;

const ALPHABET = ['a', 'Z', '0', '-', '.', ' ', 'é', 'ß', '€', '中', '😀', '\u0000', '"'];

function str(r: () => number, max: number): string {
  const len = r() < 0.3 ? 0 : Math.floor(r() * max);
  let s = '';
  for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function bytes(r: () => number, max: number): Buffer {
  const b = Buffer.alloc(Math.floor(r() * max));
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  return b;
}

test('a call frame is the bytes protobufjs makes of RunHookBatch { calls: [that call] } (fuzzed)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const values: Record<string, string> = {};
    const entries = Math.floor(r() * 4);
    for (let i = 0; i < entries; i++) values[`${str(r, 6)}${i}`] = str(r, 40);
    const request = {
      hook: str(r, 20),
      payload: bytes(r, r() < 0.2 ? 400 : 40),
      context: { request_id: str(r, 30), user_id: str(r, 30), values, caller_plugin_id: str(r, 30) },
    };
    const callId = r() < 0.5 ? 1 + Math.floor(r() * 200) : Math.floor(r() * 0xffff_ffff) + 1;
    const timeoutMs = Math.floor(r() * (r() < 0.5 ? 100 : 0xffff_ffff));
    const ours = encodeHookCall(callId, request, timeoutMs);
    const reference = method.requestSerialize({ calls: [{ call_id: callId, request, timeout_ms: timeoutMs }] });
    expect({ seed, hex: ours.toString('hex') }).toEqual({ seed, hex: reference.toString('hex') });
  }
});

test('answers read from a RunHookBatchResult are those protobufjs reads (fuzzed)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const results = Array.from({ length: 1 + Math.floor(r() * 5) }, () => {
      const res: Record<string, unknown> = { call_id: String(1 + Math.floor(r() * 0xffff_ffff)) };
      if (r() < 0.6) res.response = { payload: bytes(r, r() < 0.2 ? 400 : 40), rejected: r() < 0.3, reason: str(r, 30) };
      if (r() < 0.3) {
        res.error = str(r, 60);
        res.error_code = Math.floor(r() * 17);
      }
      return res;
    });
    const message = method.responseSerialize({ results });
    const reference = (method.responseDeserialize(message) as { results: Array<{ call_id: string; response: unknown; error: string; error_code: number }> }).results.map((x) => ({
      callId: Number(x.call_id),
      response: x.response ?? undefined,
      error: x.error,
      code: x.error_code,
    }));
    expect({ seed, answers: decodeHookAnswers(message) }).toEqual({ seed, answers: reference });
  }
});

/** A uint64 call id as a decimal string: small, around 2^32, or past 2^53. */
function callIdOf(r: () => number): string {
  const pick = r();
  if (pick < 0.5) return String(1 + Math.floor(r() * 300));
  if (pick < 0.8) return String(Math.floor(r() * 0xffff_ffff) + 1);
  return (BigInt(Math.floor(r() * 0xffff_ffff)) * 0x1_0000_0000n + BigInt(Math.floor(r() * 0xffff_ffff))).toString();
}

test('a plugin reads the calls of a RunHookBatch as protobufjs reads them (fuzzed, several calls a message)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const calls = Array.from({ length: 1 + Math.floor(r() * 4) }, () => {
      const values: Record<string, string> = {};
      for (let i = 0; i < Math.floor(r() * 3); i++) values[`${str(r, 5)}${i}`] = str(r, 20);
      const call: Record<string, unknown> = { call_id: callIdOf(r), timeout_ms: Math.floor(r() * 0xffff_ffff) };
      if (r() < 0.9) {
        const request: Record<string, unknown> = { hook: str(r, 20), payload: bytes(r, r() < 0.2 ? 400 : 40) };
        if (r() < 0.8) request.context = { request_id: str(r, 30), user_id: str(r, 30), values, caller_plugin_id: str(r, 30) };
        call.request = request;
      }
      return call;
    });
    const message = method.requestSerialize({ calls });
    const reference = (method.requestDeserialize(message) as { calls: unknown[] }).calls;
    expect({ seed, calls: decodeHookCalls(message) }).toEqual({ seed, calls: reference });
  }
});

test('a plugin writes an answer frame that is the bytes protobufjs makes of RunHookBatchResult { results: [that answer] } (fuzzed)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const answer: { call_id: string; response?: { payload: Buffer; rejected: boolean; reason: string }; error?: string; error_code?: number } = { call_id: callIdOf(r) };
    if (r() < 0.7) answer.response = { payload: bytes(r, r() < 0.2 ? 400 : 40), rejected: r() < 0.3, reason: str(r, 30) };
    else {
      answer.error = str(r, 200);
      answer.error_code = Math.floor(r() * 17);
    }
    expect({ seed, hex: encodeHookAnswer(answer).toString('hex') }).toEqual({ seed, hex: method.responseSerialize({ results: [answer] }).toString('hex') });
  }
});

test('a lone surrogate is written as U+FFFD, the length protobufjs gives it', () => {
  const request = { hook: 'a\ud800b', payload: Buffer.alloc(0), context: { request_id: '', user_id: '', values: {}, caller_plugin_id: '' } };
  const ours = encodeHookCall(1, request, 5);
  const reference = method.requestSerialize({ calls: [{ call_id: 1, request, timeout_ms: 5 }] });
  expect(ours.length).toBe(reference.length);
  expect(ours.includes(Buffer.from('a\ufffdb'))).toBe(true);
});

test('fields the codec does not know are skipped; bytes that are not a message throw', () => {
  const known = method.responseSerialize({ results: [{ call_id: '9', response: { payload: Buffer.from('{"a":1}'), rejected: true, reason: 'no' } }] });
  // An unknown varint field (15), a fixed64 (14) and a length-delimited one (13) inside the answer, and one beside the results.
  const answer = Buffer.concat([known.subarray(2), Buffer.from([0x78, 0x96, 0x01, 0x71, 1, 2, 3, 4, 5, 6, 7, 8, 0x6a, 0x02, 0x68, 0x69])]);
  const withUnknown = Buffer.concat([Buffer.from([0x0a, answer.length]), answer, Buffer.from([0x10, 0x05])]);
  expect(decodeHookAnswers(withUnknown)).toEqual([{ callId: 9, response: { payload: Buffer.from('{"a":1}'), rejected: true, reason: 'no' }, error: '', code: 0 }]);
  expect(() => decodeHookAnswers(Buffer.from([0x0a, 0x05, 0x08]))).toThrow(/runs past the end/);
  expect(() => decodeHookAnswers(Buffer.from([0x0a, 0x02, 0x08, 0x80]))).toThrow(/varint runs past the end/);
  expect(() => decodeHookAnswers(Buffer.from([0x0b]))).toThrow(/wire type 3/);
});
