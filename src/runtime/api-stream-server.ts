/**
 * The host's side of API.CallStream for one plugin: each call on the stream
 * goes to the same run as its unary method (src/runtime/api-service.ts), is
 * answered as soon as it is done, in whatever order calls finish, and answers
 * ready in one event-loop turn leave as one message. A call is never held for
 * another: each runs on its own, and the batch is flushed every turn.
 */
import * as grpc from '@grpc/grpc-js';
import type { Counter } from 'prom-client';
import type { APICall__Output } from '../gen/plughost/v1/APICall';
import type { APIResult } from '../gen/plughost/v1/APIResult';
import type { APIStreamRequest__Output } from '../gen/plughost/v1/APIStreamRequest';
import { apiStreamMethod, resultFrame } from '../protocol/api-stream';
import type { CallState } from '../protocol/cluster-contract';
import { statusError } from '../protocol/contract';
import { TurnBatch } from '../protocol/turn-batch';

/** A failed call's gRPC status, as a unary call would end with it. */
export interface ApiStatus {
  code: grpc.status;
  details: string;
}

export type ApiDone = (status: ApiStatus | null, reply?: object) => void;

/** One API method: the request, whether its caller is gone, and where the outcome goes. */
export type ApiRun = (request: Record<string, unknown>, call: CallState, done: ApiDone) => void;

type Duplex = grpc.ServerDuplexStream<APIStreamRequest__Output, Buffer>;

export interface ApiStreamServerOptions {
  maxMessageBytes: number;
  /** Counts streams opened and calls made on them, for /metrics. */
  opened: Counter.Internal;
  calls: Counter.Internal;
}

/** One stream's state that its calls' CallState reads. */
class StreamState {
  gone = false;
  inFlight = 0;
  ended = false;
}

/** A stream call is cancelled when its stream is gone or its timeout has passed, as a unary call's deadline would cancel it. */
class StreamCallState implements CallState {
  constructor(
    private readonly stream: StreamState,
    private readonly deadline: number,
  ) {}

  get cancelled(): boolean {
    return this.stream.gone || Date.now() > this.deadline;
  }
}

export class ApiStreamServer {
  private readonly open = new Map<Duplex, StreamState>();
  private closed: grpc.ServiceError | undefined;

  constructor(
    private readonly runs: Map<string, ApiRun>,
    private readonly options: ApiStreamServerOptions,
  ) {}

  readonly serve = (call: Duplex): void => {
    if (this.closed) {
      call.emit('error', this.closed);
      return;
    }
    const state = new StreamState();
    this.open.set(call, state);
    this.options.opened.inc();
    const limit = this.options.maxMessageBytes;
    const batch = new TurnBatch((message) => call.write(message), limit);
    const finish = (): void => {
      batch.flush();
      this.open.delete(call);
      call.end();
    };
    const answer = (result: APIResult): void => {
      state.inFlight--;
      if (state.gone) return;
      let frame = resultFrame(result);
      // Sent, an answer over the limit would end the stream and every call on it: that call fails alone, as its unary form would.
      if (frame.length > limit) {
        frame = resultFrame({ call_id: result.call_id, error: `the answer is ${frame.length} bytes, over the message size limit of ${limit} bytes`, error_code: grpc.status.RESOURCE_EXHAUSTED });
      }
      batch.push(frame);
      if (state.inFlight === 0 && state.ended) finish();
    };
    call.on('error', () => undefined);
    call.on('cancelled', () => {
      state.gone = true;
      batch.discard();
      this.open.delete(call);
    });
    // The plugin half-closes when it is done with the stream: answer what is in flight, then end.
    call.on('end', () => {
      state.ended = true;
      if (state.inFlight === 0 && !state.gone) finish();
    });
    call.on('data', (message: APIStreamRequest__Output) => {
      for (const c of message.calls) {
        state.inFlight++;
        this.options.calls.inc();
        this.run(c, state, answer);
      }
    });
  };

  /** Ends every open stream with UNAVAILABLE `why` (their calls in flight fail at once on the plugin's side) and refuses new ones. */
  close(why: string): void {
    this.closed ??= statusError(grpc.status.UNAVAILABLE, why);
    for (const [call, state] of this.open) {
      // Its calls still running see `cancelled` (a waiting LockAcquire stops waiting) and their answers go nowhere.
      state.gone = true;
      call.emit('error', this.closed);
    }
    this.open.clear();
  }

  private run(c: APICall__Output, state: StreamState, answer: (result: APIResult) => void): void {
    const callId = c.call_id;
    const method = apiStreamMethod(c.method);
    const run = method === undefined ? undefined : this.runs.get(method);
    if (!run) {
      answer({ call_id: callId, error: `the call names no API method this host serves (${c.method ?? 'none set'})`, error_code: grpc.status.UNIMPLEMENTED });
      return;
    }
    const member = c.method!;
    const deadline = c.timeout_ms ? Date.now() + c.timeout_ms : Infinity;
    const request = (c as unknown as Record<string, Record<string, unknown>>)[member];
    run(request, new StreamCallState(state, deadline), (status, reply) =>
      answer(status ? { call_id: callId, error: status.details || grpc.status[status.code], error_code: status.code } : { call_id: callId, [member]: reply }),
    );
  }
}
