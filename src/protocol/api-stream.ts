/**
 * API.CallStream, both ends' wire rules: every unary API method as a member of
 * the APICall/APIResult oneofs (named as the method in snake case), calls and
 * answers as frames that TurnBatch joins into one message per turn, and the
 * plugin's side of the stream (ApiStream). The host's side is
 * api-stream-server.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import type { APIClient } from '../gen/plughost/v1/API';
import type { APIResult } from '../gen/plughost/v1/APIResult';
import type { APIStreamResponse__Output } from '../gen/plughost/v1/APIStreamResponse';
import { CallStream, type CallStreamShape } from './call-stream';
import { contract } from './contract';
import { withRawAnswers } from './stream-answers';

/** What the host lists in OnActivateRequest.api_features when it serves API.CallStream. */
export const API_STREAM_FEATURE = 'CallStream';

const CALL_STREAM_PATH = '/plughost.v1.API/CallStream';

/** The oneof member of a unary API method: "KVDeleteAll" → "kv_delete_all". */
export function apiStreamMember(method: string): string {
  return method
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

interface StreamMethods {
  /** Oneof member → unary method name. */
  byMember: Map<string, string>;
  /** Unary method → its oneof member, computed once (every call on the plugin's side needs it). */
  memberOf: Map<string, string>;
  /** Unary method → its response with every field at its default (what an unset APIResult oneof means). */
  empty: Map<string, object>;
  serializeCalls(message: object): Buffer;
  serializeResults(message: object): Buffer;
  deserializeResults(bytes: Buffer): APIStreamResponse__Output;
}

let methods: StreamMethods | undefined;

function streamMethods(): StreamMethods {
  if (methods) return methods;
  const service = contract().API.service as unknown as Record<string, grpc.MethodDefinition<object, object>>;
  const byMember = new Map<string, string>();
  const memberOf = new Map<string, string>();
  const empty = new Map<string, object>();
  for (const [name, def] of Object.entries(service)) {
    if (def.requestStream || def.responseStream) continue;
    const member = apiStreamMember(name);
    byMember.set(member, name);
    memberOf.set(name, member);
    empty.set(name, Object.freeze(def.responseDeserialize(Buffer.alloc(0))));
  }
  const stream = service.CallStream;
  methods = {
    byMember,
    memberOf,
    empty,
    serializeCalls: stream.requestSerialize,
    serializeResults: stream.responseSerialize,
    deserializeResults: stream.responseDeserialize as (bytes: Buffer) => APIStreamResponse__Output,
  };
  return methods;
}

/** The unary method a stream call's oneof member stands for, or undefined for a member this host does not know. */
export function apiStreamMethod(member: string | undefined): string | undefined {
  return member === undefined ? undefined : streamMethods().byMember.get(member);
}

/** `method`'s response with every field at its default: what an answer without a member means. */
export function emptyApiResponse(method: string): object {
  return streamMethods().empty.get(method) ?? {};
}

/** One answer as a frame of APIStreamResponse.results. */
export function resultFrame(result: APIResult): Buffer {
  return streamMethods().serializeResults({ results: [result] });
}

/**
 * The CallStream method as the host registers it: answers go out as the
 * bytes TurnBatch made of their frames, so the service writes them as they
 * are.
 */
export function apiServiceDefinition(): grpc.ServiceDefinition {
  return withRawAnswers(contract().API.service, 'CallStream');
}

/** One call of the plugin's: the unary method's name and its request. */
export interface ApiStreamCall {
  method: string;
  request: object;
}

/** A call's encoded frame is over the message size limit: it fails alone, as its unary form would. */
export class ApiCallTooLarge extends Error {
  constructor(
    message: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(message);
  }
}

/**
 * The plugin's side of API.CallStream: calls batched per turn, answers
 * matched by id. A call whose frame is over the message limit is refused
 * before it is sent (sent, it would end the stream and every call on it).
 */
export class ApiStream extends CallStream<ApiStreamCall, object, APIStreamResponse__Output> {
  constructor(client: APIClient, maxMessageBytes: number, onEnded?: (err: grpc.ServiceError) => void) {
    const m = streamMethods();
    const shape: CallStreamShape<ApiStreamCall, object, APIStreamResponse__Output> = {
      what: 'the API stream to the host',
      batchLimit: maxMessageBytes,
      frame: (id, call, timeoutMs) => {
        const frame = m.serializeCalls({ calls: [{ call_id: id, timeout_ms: timeoutMs, [m.memberOf.get(call.method) ?? apiStreamMember(call.method)]: call.request }] });
        if (frame.length > maxMessageBytes) throw new ApiCallTooLarge(`${call.method}: the request is ${frame.length} bytes, over the message size limit of ${maxMessageBytes} bytes`, frame.length, maxMessageBytes);
        return frame;
      },
      answers: (msg, settle) => {
        // An unset member resolves as undefined: the caller knows the method, and emptyApiResponse gives its defaults.
        for (const r of msg.results) settle(r.call_id, r.method ? (r as unknown as Record<string, object>)[r.method] : undefined, r.error, r.error_code);
      },
    };
    const duplex = (client as unknown as grpc.Client).makeBidiStreamRequest(CALL_STREAM_PATH, (bytes: Buffer) => bytes, m.deserializeResults);
    super(duplex as grpc.ClientDuplexStream<unknown, APIStreamResponse__Output>, shape, onEnded);
  }
}
