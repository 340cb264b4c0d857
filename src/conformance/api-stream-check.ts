/**
 * The API.CallStream check: what the plugin sent on the streams the run's API
 * double served it (the double offers "CallStream" in OnActivate). Every call
 * must name one API method (a member of the APICall oneof) and carry a call_id
 * no other call in flight on that stream has, since the host answers by id; a
 * plugin that makes its calls unary, or none, is fine and skips the check.
 */
import type * as grpc from '@grpc/grpc-js';
import type { APIStreamRequest__Output } from '../gen/plughost/v1/APIStreamRequest';
import type { APIStreamResponse__Output } from '../gen/plughost/v1/APIStreamResponse';
import type { ServiceRegistration } from '../protocol/broker';
import { contract } from '../protocol/contract';
import type { Session } from './session-checks';
import type { CheckResult } from './types';

/** What came over the plugin's CallStream streams during a run. */
export interface CallStreamRecord {
  opened: number;
  /** Calls that arrived, and the messages that carried them. */
  calls: number;
  messages: number;
  /** Answers the double sent. */
  answered: number;
  /** What was wrong with the calls, first ones first. */
  problems: string[];
}

const KEPT_PROBLEMS = 20;

type Duplex = grpc.ServerDuplexStream<APIStreamRequest__Output, Buffer>;

/** `registration` with its CallStream watched: every call and answer on it is looked at on the way. */
export function watchCallStreams(registration: ServiceRegistration): { registration: ServiceRegistration; record: CallStreamRecord } {
  const record: CallStreamRecord = { opened: 0, calls: 0, messages: 0, answered: 0, problems: [] };
  const problem = (text: string) => {
    if (record.problems.length < KEPT_PROBLEMS) record.problems.push(text);
  };
  const serve = registration.implementation.CallStream as (call: Duplex) => void;
  const results = (contract().API.service as unknown as Record<string, grpc.MethodDefinition<object, APIStreamResponse__Output>>).CallStream.responseDeserialize;
  const CallStream = (call: Duplex) => {
    const stream = ++record.opened;
    const inFlight = new Set<number>();
    // Before the server's own listener, so a call is in flight here before its answer can leave.
    call.on('data', (message: APIStreamRequest__Output) => {
      record.messages++;
      for (const c of message.calls) {
        record.calls++;
        if (inFlight.has(c.call_id)) problem(`call_id ${c.call_id} came again on stream ${stream} while the call with that id was still in flight`);
        inFlight.add(c.call_id);
        if (!c.method) problem(`call_id ${c.call_id} on stream ${stream} sets no member of the APICall oneof (no API method, or one this host does not know)`);
      }
    });
    const write = call.write.bind(call) as (bytes: Buffer) => boolean;
    (call as { write(bytes: Buffer): boolean }).write = (bytes: Buffer) => {
      for (const r of results(bytes).results) {
        inFlight.delete(r.call_id);
        record.answered++;
      }
      return write(bytes);
    };
    serve(call);
  };
  return { registration: { ...registration, implementation: { ...registration.implementation, CallStream } }, record };
}

export function checkApiStream(s: Session): CheckResult {
  const base = { id: 'api-stream' as const, title: 'API.CallStream: the plugin\'s calls name one method each, call_id unique among calls in flight' };
  const r = s.api.streams;
  if (!r.opened) {
    const unary = s.api.calls.length;
    return { ...base, status: 'skip', detail: unary ? `the plugin made its ${unary} API call${unary === 1 ? '' : 's'} unary, which is fine (the stream is optional)` : 'the plugin made no API call during the run' };
  }
  if (r.problems.length) {
    return {
      ...base,
      status: 'fail',
      detail: 'calls on API.CallStream the host cannot answer as meant',
      expected: 'each APICall with one member of its oneof set (the unary method it stands for) and a call_id that no other call in flight on the same stream has: the host answers by call_id',
      got: r.problems.slice(0, 5).join('; '),
    };
  }
  const notes = r.answered < r.calls ? [`${r.calls - r.answered} calls were still unanswered when the check ran (a waiting lock, or a call the plugin gave up on)`] : undefined;
  return {
    ...base,
    status: 'pass',
    detail: `${r.calls} calls in ${r.messages} messages on ${r.opened} stream${r.opened === 1 ? '' : 's'}, each naming its method under its own call_id; ${r.answered} answered by id`,
    notes,
  };
}
