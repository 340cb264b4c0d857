/**
 * The caller's side of Hooks.RunHookStream: many RunHook calls over one
 * long-lived stream to a plugin, matched by call_id, each under its own
 * deadline. A unary RunHook pays for a new HTTP/2 stream, its headers and
 * grpc-js's per-call machinery every time; here a call costs one message each
 * way. This class owns everything about one stream: ids, deadlines, and the
 * end of the stream, which fails every call still in flight at once (a plugin
 * that crashed must not leave its callers waiting for their deadlines). A
 * stream that ended stays ended; its owner opens a new one.
 */
import * as grpc from '@grpc/grpc-js';
import type { HooksClient } from '../gen/plughost/v1/Hooks';
import type { RunHookRequest } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import type { RunHookStreamRequest } from '../gen/plughost/v1/RunHookStreamRequest';
import type { RunHookStreamResponse__Output } from '../gen/plughost/v1/RunHookStreamResponse';
import { statusError } from './contract';

/**
 * Ids wrap below 2^32 so they fit a uint32 as well as the proto's uint64 (the
 * varint bytes are the same). A wrapped id can only meet a call still in
 * flight after four billion calls on one stream, and that call is skipped.
 */
const MAX_CALL_ID = 0xffff_ffff;

/** An answer with neither `response` nor `error` (proto3 omits an all-default response): "unchanged". */
const UNCHANGED: RunHookResponse__Output = Object.freeze({ payload: Buffer.alloc(0), rejected: false, reason: '' });

interface Waiting {
  resolve(res: RunHookResponse__Output): void;
  reject(err: grpc.ServiceError): void;
  /** Date.now() past which the call fails with DEADLINE_EXCEEDED. */
  deadline: number;
  timeoutMs: number;
}

export class HookStream {
  /** Calls sent over this stream so far. */
  calls = 0;
  /** Answers received, late ones included: the plugin answers each call once, so `calls - answers` are still in its hands. */
  private answers = 0;
  private readonly duplex: grpc.ClientDuplexStream<RunHookStreamRequest, RunHookStreamResponse__Output>;
  private readonly waiting = new Map<number, Waiting>();
  private lastId = 0;
  /** Why the stream can take no more calls; set once, when it ends or is closed. */
  private ended: grpc.ServiceError | undefined;
  /**
   * One timer for every deadline on the stream, armed for the earliest one it
   * knows. With the same timeout for every call (one plugin's hook timeout) a
   * new call's deadline is never the earliest, so the timer is set about once
   * per timeout, not once per call; when it fires it fails what is due and
   * re-arms for the next deadline.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  /** `onEnded` hears why the stream ended, unless close() ended it. */
  constructor(
    hooks: HooksClient,
    private readonly onEnded: (err: grpc.ServiceError) => void = () => undefined,
  ) {
    this.duplex = hooks.RunHookStream();
    this.duplex.on('data', this.answer);
    // grpc-js emits 'status' once however the call ends; 'error' repeats a non-OK status.
    this.duplex.on('error', () => undefined);
    this.duplex.on('status', (status: grpc.StatusObject) => {
      if (this.ended) return;
      const why = status.code === grpc.status.OK ? 'the plugin ended the stream' : `${grpc.status[status.code]}: ${status.details}`;
      this.end(statusError(status.code === grpc.status.OK ? grpc.status.UNAVAILABLE : status.code, `the hook stream to the plugin broke (${why})`));
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

  /** One hook call; fails with DEADLINE_EXCEEDED past `timeoutMs`, as a unary call would. */
  call(request: RunHookRequest, timeoutMs: number): Promise<RunHookResponse__Output> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId();
    const deadline = Date.now() + timeoutMs;
    const answered = new Promise<RunHookResponse__Output>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, deadline, timeoutMs });
    });
    if (deadline < this.timerAt) this.arm(deadline);
    this.calls++;
    this.duplex.write({ call_id: id, request, timeout_ms: timeoutMs });
    return answered;
  }

  /**
   * Fails the calls in flight with `reason` (UNAVAILABLE) and ends the stream:
   * when the plugin has answered every call, with a half-close, which it
   * answers by ending its side; else (calls in flight, or past their deadline
   * and still running) by cancelling it, so the plugin's server need not wait
   * for handlers whose callers are gone.
   */
  close(reason: string): void {
    if (this.ended) return;
    const idle = this.answers === this.calls;
    this.end(statusError(grpc.status.UNAVAILABLE, reason));
    if (idle) this.duplex.end();
    else this.duplex.cancel();
  }

  private nextId(): number {
    do this.lastId = this.lastId >= MAX_CALL_ID ? 1 : this.lastId + 1;
    while (this.waiting.has(this.lastId));
    return this.lastId;
  }

  private readonly answer = (msg: RunHookStreamResponse__Output): void => {
    this.answers++;
    const id = Number(msg.call_id);
    const waiting = this.waiting.get(id);
    // Unknown: answered after its deadline, or not ours; the caller has moved on.
    if (!waiting) return;
    this.waiting.delete(id);
    if (msg.error) waiting.reject(statusError(msg.error_code || grpc.status.UNKNOWN, msg.error));
    else waiting.resolve(msg.response ?? UNCHANGED);
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
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(err);
  }
}
