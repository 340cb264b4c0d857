/**
 * A hand-written codec for Hooks.RunHookBatchStream, the hottest messages
 * there are. The host writes one call's frame (an element of RunHookBatch.calls)
 * straight into one buffer and reads RunHookBatchResult straight into answers;
 * a plugin (the SDK) reads RunHookBatch into calls and writes one answer's
 * frame. protobufjs builds an object tree on the way each way (fromObject,
 * then encode; decode, then toObject with its Long conversions); this writes
 * and reads the bytes alone. The bytes are those protobufjs makes of the same
 * message, field for field, and what is read is what protobufjs reads
 * (test/protocol/hook-codec.test.ts checks both, fuzzed).
 */
import type { HookContext__Output } from '../gen/plughost/v1/HookContext';
import type { RunHookRequest, RunHookRequest__Output } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import type { RunHookStreamRequest__Output } from '../gen/plughost/v1/RunHookStreamRequest';
import type { RunHookStreamResponse } from '../gen/plughost/v1/RunHookStreamResponse';

/** One answer as a plugin writes it: the call's id as it came (a decimal string). */
export type HookStreamAnswer = RunHookStreamResponse & { call_id: string };

/** One answer of a RunHookBatchResult: a response (absent: "unchanged"), or an error message and its gRPC code. */
export interface HookAnswer {
  callId: number;
  response: RunHookResponse__Output | undefined;
  error: string;
  code: number;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** UTF-8 length without a call into C++ (hook names and ids are short: the call costs more than the count). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2;
      i++;
    } else n += 2;
  }
  return n;
}

/** A string field's size: tag, length and UTF-8 bytes. */
function stringFieldSize(s: string): number {
  const n = utf8Length(s);
  return 1 + varintSize(n) + n;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  string(tag: number, s: string): void {
    this.buf[this.pos++] = tag;
    const n = utf8Length(s);
    this.varint(n);
    if (n === s.length) {
      // ASCII: byte for char.
      for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
    } else {
      this.pos += this.buf.write(s, this.pos);
    }
  }

  /** A uint64 given as its decimal string (as call ids travel in a plugin): exact past 2^53 too. */
  varint64(decimal: string): void {
    if (decimal.length < 16) return this.varint(Number(decimal));
    let n = BigInt(decimal);
    while (n >= 0x80n) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  bytes(tag: number, b: Uint8Array): void {
    this.buf[this.pos++] = tag;
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/**
 * The bytes of `{ calls: [{ call_id, request, timeout_ms }] }` as a
 * RunHookBatch: what TurnBatch lays end to end. Fields are written when
 * present, as protobufjs writes them (an empty string too).
 */
export function encodeHookCall(callId: number, request: RunHookRequest, timeoutMs: number): Buffer {
  const ctx = request.context;
  let ctxSize = 0;
  if (ctx) {
    if (ctx.request_id != null) ctxSize += stringFieldSize(ctx.request_id);
    if (ctx.user_id != null) ctxSize += stringFieldSize(ctx.user_id);
    if (ctx.values) for (const k in ctx.values) {
      const entry = stringFieldSize(k) + stringFieldSize(ctx.values[k]);
      ctxSize += 1 + varintSize(entry) + entry;
    }
    if (ctx.caller_plugin_id != null) ctxSize += stringFieldSize(ctx.caller_plugin_id);
  }
  let reqSize = 0;
  if (request.hook != null) reqSize += stringFieldSize(request.hook);
  if (request.payload != null) reqSize += 1 + varintSize(request.payload.length) + request.payload.length;
  if (ctx) reqSize += 1 + varintSize(ctxSize) + ctxSize;
  const callSize = 1 + varintSize(callId) + 1 + varintSize(reqSize) + reqSize + 1 + varintSize(timeoutMs);
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(callSize) + callSize));
  w.buf[w.pos++] = 0x0a; // RunHookBatch.calls
  w.varint(callSize);
  w.buf[w.pos++] = 0x08; // call_id
  w.varint(callId);
  w.buf[w.pos++] = 0x12; // request
  w.varint(reqSize);
  if (request.hook != null) w.string(0x0a, request.hook);
  if (request.payload != null) w.bytes(0x12, request.payload as Uint8Array);
  if (ctx) {
    w.buf[w.pos++] = 0x1a; // context
    w.varint(ctxSize);
    if (ctx.request_id != null) w.string(0x0a, ctx.request_id);
    if (ctx.user_id != null) w.string(0x12, ctx.user_id);
    if (ctx.values) for (const k in ctx.values) {
      w.buf[w.pos++] = 0x1a; // values: a map entry
      w.varint(stringFieldSize(k) + stringFieldSize(ctx.values[k]));
      w.string(0x0a, k);
      w.string(0x12, ctx.values[k]);
    }
    if (ctx.caller_plugin_id != null) w.string(0x22, ctx.caller_plugin_id);
  }
  w.buf[w.pos++] = 0x18; // timeout_ms
  w.varint(timeoutMs);
  return w.buf;
}

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    pos: number,
    readonly end: number,
  ) {
    this.pos = pos;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('a varint runs past the end of its message');
      const b = this.buf[this.pos++];
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 128;
    }
    throw new RangeError('a varint is longer than 10 bytes');
  }

  /** A uint64 as its decimal string, exact past 2^53 (protobufjs with longs as strings reads it so). */
  varint64(): string {
    const start = this.pos;
    const n = this.varint();
    if (this.pos - start < 8) return String(n);
    let big = 0n;
    for (let i = this.pos - 1; i >= start; i--) big = (big << 7n) | BigInt(this.buf[i] & 0x7f);
    return BigInt.asUintN(64, big).toString();
  }

  /** The bounds of a length-delimited field's value, the position moved past it. */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new RangeError(`a field of ${len} bytes runs past the end of its message`);
    this.pos += len;
    return [start, this.pos];
  }

  string(): string {
    const [start, end] = this.span();
    return this.buf.toString('utf8', start, end);
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_LEN) this.span();
    else if (wire === WIRE_I64 || wire === WIRE_I32) {
      this.pos += wire === WIRE_I64 ? 8 : 4;
      if (this.pos > this.end) throw new RangeError('a fixed-size field runs past the end of its message');
    } else throw new RangeError(`wire type ${wire} is not one this message can hold`);
  }
}

/**
 * Reads the fields of the message in buf[start, end): `known` reads the ones
 * it knows from `r` and says so; the others are skipped.
 */
function eachField(buf: Buffer, start: number, end: number, known: (r: Reader, field: number, wire: number) => boolean): void {
  const r = new Reader(buf, start, end);
  while (r.pos < end) {
    const tag = r.varint();
    const wire = tag & 7;
    if (!known(r, Math.floor(tag / 8), wire)) r.skip(wire);
  }
}

/** The elements of the batch's repeated field 1 (RunHookBatch.calls, RunHookBatchResult.results), each read by `read`. */
function eachElement<T>(buf: Buffer, read: (start: number, end: number) => T): T[] {
  const out: T[] = [];
  eachField(buf, 0, buf.length, (r, field, wire) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    const [s, e] = r.span();
    out.push(read(s, e));
    return true;
  });
  return out;
}

/**
 * The answers of one RunHookBatchResult message. Throws on bytes that are not
 * one (grpc-js turns a deserializer's throw into the stream's INTERNAL error).
 */
export function decodeHookAnswers(buf: Buffer): HookAnswer[] {
  return eachElement(buf, (start, end) => {
    const answer: HookAnswer = { callId: 0, response: undefined, error: '', code: 0 };
    eachField(buf, start, end, (r, field, wire) => {
      if (field === 1 && wire === WIRE_VARINT) answer.callId = r.varint();
      else if (field === 2 && wire === WIRE_LEN) answer.response = readResponse(buf, ...r.span());
      else if (field === 3 && wire === WIRE_LEN) answer.error = r.string();
      // uint32: the low 32 bits, as protobufjs reads it.
      else if (field === 4 && wire === WIRE_VARINT) answer.code = r.varint() >>> 0;
      else return false;
      return true;
    });
    return answer;
  });
}

function readResponse(buf: Buffer, start: number, end: number): RunHookResponse__Output {
  const res: { payload: Buffer; rejected: boolean; reason: string } = { payload: Buffer.alloc(0), rejected: false, reason: '' };
  eachField(buf, start, end, (r, field, wire) => {
    if (field === 1 && wire === WIRE_LEN) res.payload = buf.subarray(...r.span());
    else if (field === 2 && wire === WIRE_VARINT) res.rejected = r.varint() !== 0;
    else if (field === 3 && wire === WIRE_LEN) res.reason = r.string();
    else return false;
    return true;
  });
  return res;
}

/** The calls of one RunHookBatch message, as protobufjs reads them (defaults filled in). Throws on bytes that are not one. */
export function decodeHookCalls(buf: Buffer): RunHookStreamRequest__Output[] {
  return eachElement(buf, (start, end) => {
    const call: RunHookStreamRequest__Output = { call_id: '0', request: null, timeout_ms: 0 };
    eachField(buf, start, end, (r, field, wire) => {
      if (field === 1 && wire === WIRE_VARINT) call.call_id = r.varint64();
      else if (field === 2 && wire === WIRE_LEN) call.request = readRequest(buf, ...r.span());
      else if (field === 3 && wire === WIRE_VARINT) call.timeout_ms = r.varint() >>> 0;
      else return false;
      return true;
    });
    return call;
  });
}

function readRequest(buf: Buffer, start: number, end: number): RunHookRequest__Output {
  const req: RunHookRequest__Output = { hook: '', payload: Buffer.alloc(0), context: null };
  eachField(buf, start, end, (r, field, wire) => {
    if (field === 1 && wire === WIRE_LEN) req.hook = r.string();
    else if (field === 2 && wire === WIRE_LEN) req.payload = buf.subarray(...r.span());
    else if (field === 3 && wire === WIRE_LEN) req.context = readContext(buf, ...r.span());
    else return false;
    return true;
  });
  return req;
}

function readContext(buf: Buffer, start: number, end: number): HookContext__Output {
  const ctx: HookContext__Output = { request_id: '', user_id: '', values: {}, caller_plugin_id: '' };
  eachField(buf, start, end, (r, field, wire) => {
    if (field === 1 && wire === WIRE_LEN) ctx.request_id = r.string();
    else if (field === 2 && wire === WIRE_LEN) ctx.user_id = r.string();
    else if (field === 3 && wire === WIRE_LEN) {
      // A map entry: key 1, value 2.
      let key = '';
      let value = '';
      eachField(buf, ...r.span(), (e, f, w) => {
        if (f === 1 && w === WIRE_LEN) key = e.string();
        else if (f === 2 && w === WIRE_LEN) value = e.string();
        else return false;
        return true;
      });
      ctx.values[key] = value;
    } else if (field === 4 && wire === WIRE_LEN) ctx.caller_plugin_id = r.string();
    else return false;
    return true;
  });
  return ctx;
}

/**
 * The bytes of `{ results: [answer] }` as a RunHookBatchResult: what a
 * plugin's TurnBatch lays end to end. Fields are written when present, as
 * protobufjs writes them.
 */
export function encodeHookAnswer(answer: HookStreamAnswer): Buffer {
  const res = answer.response;
  let resSize = 0;
  if (res) {
    if (res.payload != null) resSize += 1 + varintSize(res.payload.length) + res.payload.length;
    if (res.rejected != null) resSize += 2;
    if (res.reason != null) resSize += stringFieldSize(res.reason);
  }
  const idSize = varint64Size(answer.call_id);
  let size = 1 + idSize;
  if (res) size += 1 + varintSize(resSize) + resSize;
  if (answer.error != null) size += stringFieldSize(answer.error);
  if (answer.error_code != null) size += 1 + varintSize(answer.error_code);
  const w = new Writer(Buffer.allocUnsafe(1 + varintSize(size) + size));
  w.buf[w.pos++] = 0x0a; // RunHookBatchResult.results
  w.varint(size);
  w.buf[w.pos++] = 0x08; // call_id
  w.varint64(answer.call_id);
  if (res) {
    w.buf[w.pos++] = 0x12; // response
    w.varint(resSize);
    if (res.payload != null) w.bytes(0x0a, res.payload as Uint8Array);
    if (res.rejected != null) {
      w.buf[w.pos++] = 0x10;
      w.buf[w.pos++] = res.rejected ? 1 : 0;
    }
    if (res.reason != null) w.string(0x1a, res.reason);
  }
  if (answer.error != null) w.string(0x1a, answer.error);
  if (answer.error_code != null) {
    w.buf[w.pos++] = 0x20;
    w.varint(answer.error_code);
  }
  return w.buf;
}

function varint64Size(decimal: string): number {
  if (decimal.length < 16) return varintSize(Number(decimal));
  let n = BigInt(decimal);
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}
