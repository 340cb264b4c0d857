/**
 * The caller's side of a long-lived gRPC stream that carries many calls,
 * matched by id, each under its own deadline: Hooks.RunHookStream (host to
 * plugin) and API.CallStream (plugin to host). A unary call pays for a new
 * HTTP/2 stream, its headers and grpc-js's per-call machinery every time; here
 * a call costs one frame each way. This class owns everything about one
 * stream: ids, deadlines, batching, and the end of the stream, which fails
 * every call still in flight at once (a peer that crashed must not leave its
 * callers waiting for their deadlines). A stream that ended stays ended; its
 * owner opens a new one.
 */
import * as grpc from '@grpc/grpc-js';
import { statusError } from './contract';
import { TurnBatch } from './turn-batch';

/**
 * Ids wrap below 2^32 so they fit a uint32 (RunHookStream's uint64 has the
 * same varint bytes). A wrapped id can only meet a call still in flight after
 * four billion calls on one stream, and that call is skipped.
 */
const MAX_CALL_ID = 0xffff_ffff;

/** Receives one answer from an incoming message: a response, or an error message with its gRPC code (0: UNKNOWN). */
export type Settle<Res> = (id: number, response: Res | undefined, error: string, code: number) => void;

/** What differs between the streams: how calls are written and answers read. */
export interface CallStreamShape<Req, Res, In> {
  /** Names the stream in the error that fails its calls when it breaks, e.g. "the hook stream to the plugin". */
  what: string;
  /**
   * The frame of one call. Batched streams (`batchLimit` set) take a Buffer
   * holding one encoded element of the request message's repeated calls field;
   * others take the request message itself, written alone.
   */
  frame(id: number, request: Req, timeoutMs: number): unknown;
  /** With batching: the message size limit no batch crosses. */
  batchLimit?: number;
  /** Hands every answer in `message` to `settle`. */
  answers(message: In, settle: Settle<Res>): void;
}

interface Waiting<Res> {
  resolve(res: Res): void;
  reject(err: grpc.ServiceError): void;
  /** Date.now() past which the call fails with DEADLINE_EXCEEDED. */
  deadline: number;
  timeoutMs: number;
}

export class CallStream<Req, Res, In> {
  /** Calls sent over this stream so far. */
  calls = 0;
  /** Answers received, late ones included: the peer answers each call once, so `calls - answers` are still in its hands. */
  private answered = 0;
  private readonly waiting = new Map<number, Waiting<Res>>();
  private readonly batch: TurnBatch | undefined;
  private lastId = 0;
  /** Why the stream can take no more calls; set once, when it ends or is closed. */
  private ended: grpc.ServiceError | undefined;
  /**
   * One timer for every deadline on the stream, armed for the earliest one it
   * knows. With the same timeout for every call a new call's deadline is
   * never the earliest, so the timer is set about once per timeout, not once
   * per call; when it fires it fails what is due and re-arms for the next.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  /** `onEnded` hears why the stream ended, unless close() ended it. */
  constructor(
    private readonly duplex: grpc.ClientDuplexStream<unknown, In>,
    private readonly shape: CallStreamShape<Req, Res, In>,
    private readonly onEnded: (err: grpc.ServiceError) => void = () => undefined,
  ) {
    if (shape.batchLimit !== undefined) this.batch = new TurnBatch((message) => duplex.write(message), shape.batchLimit);
    duplex.on('data', (message: In) => shape.answers(message, this.settle));
    // grpc-js emits 'status' once however the call ends; 'error' repeats a non-OK status.
    duplex.on('error', () => undefined);
    duplex.on('status', (status: grpc.StatusObject) => {
      if (this.ended) return;
      const why = status.code === grpc.status.OK ? 'the peer ended the stream' : `${grpc.status[status.code]}: ${status.details}`;
      this.end(statusError(status.code === grpc.status.OK ? grpc.status.UNAVAILABLE : status.code, `${shape.what} broke (${why})`));
      this.onEnded(this.ended!);
    });
  }

  /** False once the stream ended or was closed: open a new one. */
  get open(): boolean {
    return this.ended === undefined;
  }

  /** Calls waiting for their answer. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /** One call; fails with DEADLINE_EXCEEDED past `timeoutMs`, as a unary call would. */
  call(request: Req, timeoutMs: number): Promise<Res> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId();
    const frame = this.shape.frame(id, request, timeoutMs);
    const deadline = Date.now() + timeoutMs;
    const answered = new Promise<Res>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, deadline, timeoutMs });
    });
    if (deadline < this.timerAt) this.arm(deadline);
    this.calls++;
    // A call alone in flight goes at once; calls made while others are in flight wait for the turn's end together.
    if (this.batch) this.batch.push(frame as Buffer, this.waiting.size === 1);
    else this.duplex.write(frame);
    return answered;
  }

  /**
   * Fails the calls in flight with `reason` (UNAVAILABLE) and ends the stream:
   * when the peer has answered every call, with a half-close, which it
   * answers by ending its side; else (calls in flight, or past their deadline
   * and still running) by cancelling it, so the peer need not wait for
   * handlers whose callers are gone.
   */
  close(reason: string): void {
    if (this.ended) return;
    const idle = this.answered === this.calls;
    this.end(statusError(grpc.status.UNAVAILABLE, reason));
    if (idle) this.duplex.end();
    else this.duplex.cancel();
  }

  private nextId(): number {
    do this.lastId = this.lastId >= MAX_CALL_ID ? 1 : this.lastId + 1;
    while (this.waiting.has(this.lastId));
    return this.lastId;
  }

  private readonly settle: Settle<Res> = (id, response, error, code) => {
    this.answered++;
    const waiting = this.waiting.get(id);
    // Unknown: answered after its deadline, or not ours; the caller has moved on.
    if (!waiting) return;
    this.waiting.delete(id);
    if (error) waiting.reject(statusError(code || grpc.status.UNKNOWN, error));
    else waiting.resolve(response as Res);
  };

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.expire, Math.max(1, at - Date.now()));
    // A call in flight keeps the process alive through its stream; the timer alone must not.
    this.timer.unref();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [id, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(id);
        w.reject(statusError(grpc.status.DEADLINE_EXCEEDED, `Deadline exceeded after ${w.timeoutMs} ms`));
      } else if (w.deadline < next) {
        next = w.deadline;
      }
    }
    if (next !== Infinity) this.arm(next);
  };

  private end(err: grpc.ServiceError): void {
    this.ended = err;
    this.batch?.discard();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(err);
  }
}
