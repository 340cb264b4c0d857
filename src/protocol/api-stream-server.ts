/**
 * The host's side of API.CallStream for one plugin: each call on the stream
 * goes to the same run as its unary method (the runtime's src/runtime/api-service.ts,
 * or the SDK's test host), is
 * answered as soon as it is done, in whatever order calls finish, and answers
 * ready in one event-loop turn leave as one message. A call is never held for
 * another: each runs on its own, and the batch is flushed every turn.
 */
import * as grpc from '@grpc/grpc-js';
import type { APICall__Output } from '../gen/plughost/v1/APICall';
import type { APIStreamRequest__Output } from '../gen/plughost/v1/APIStreamRequest';
import { apiStreamMethod, resultFrame } from './api-stream';
import type { CallState } from './cluster-contract';
import { statusError } from './contract';
import { StreamAnswers, tooLargeMessage } from './stream-answers';

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
  /** Count streams opened and calls made on them (the runtime's /metrics counters). */
  opened: { inc(): void };
  calls: { inc(): void };
  /**
   * Runs the calls of one message: the store's batch(), so their KV writes
   * share one commit, each still answered alone and only after it. Absent,
   * the calls just run in turn.
   */
  batch?(work: () => void): void;
}

/** A stream call is cancelled when its stream is gone or its timeout has passed, as a unary call's deadline would cancel it. */
class StreamCallState implements CallState {
  constructor(
    private readonly answers: StreamAnswers,
    private readonly deadline: number,
  ) {}

  get cancelled(): boolean {
    return this.answers.gone || Date.now() > this.deadline;
  }
}

export class ApiStreamServer {
  private readonly open = new Set<StreamAnswers>();
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
    const limit = this.options.maxMessageBytes;
    const answers: StreamAnswers = new StreamAnswers(
      call as grpc.ServerDuplexStream<unknown, Buffer>,
      limit,
      (callId, bytes) => resultFrame({ call_id: callId, error: tooLargeMessage(bytes, limit), error_code: grpc.status.RESOURCE_EXHAUSTED }),
      () => this.open.delete(answers),
    );
    this.open.add(answers);
    this.options.opened.inc();
    const batch = this.options.batch ?? ((work: () => void) => work());
    call.on('data', (message: APIStreamRequest__Output) =>
      batch(() => {
        for (const c of message.calls) {
          answers.begin();
          this.options.calls.inc();
          this.run(c, answers);
        }
      }),
    );
  };

  /** Ends every open stream with UNAVAILABLE `why` (their calls in flight fail at once on the plugin's side) and refuses new ones. */
  close(why: string): void {
    this.closed ??= statusError(grpc.status.UNAVAILABLE, why);
    this.endOpen(this.closed);
  }

  /**
   * Ends every open stream with UNAVAILABLE `why`, as a broken connection
   * would, and still serves the streams the plugin opens next: the test host
   * uses it to show that a plugin rides out a break.
   */
  interrupt(why: string): void {
    this.endOpen(statusError(grpc.status.UNAVAILABLE, why));
  }

  private endOpen(err: grpc.ServiceError): void {
    // Their calls still running see `cancelled` (a waiting LockAcquire stops waiting) and their answers go nowhere.
    for (const answers of [...this.open]) answers.fail(err);
    this.open.clear();
  }

  private run(c: APICall__Output, answers: StreamAnswers): void {
    const callId = c.call_id;
    const method = apiStreamMethod(c.method);
    const run = method === undefined ? undefined : this.runs.get(method);
    if (!run) {
      answers.answer(callId, resultFrame({ call_id: callId, error: `the call names no API method this host serves (${c.method ?? 'none set'})`, error_code: grpc.status.UNIMPLEMENTED }));
      return;
    }
    const member = c.method!;
    const deadline = c.timeout_ms ? Date.now() + c.timeout_ms : Infinity;
    const request = (c as unknown as Record<string, Record<string, unknown>>)[member];
    run(request, new StreamCallState(answers, deadline), (status, reply) =>
      answers.answer(
        callId,
        resultFrame(status ? { call_id: callId, error: status.details || grpc.status[status.code], error_code: status.code } : { call_id: callId, [member]: reply }),
      ),
    );
  }
}
