/**
 * The answering side of a batched call stream (API.CallStream on the host,
 * Hooks.RunHookBatchStream in a plugin): answers leave as soon as their call
 * is done, in whatever order calls finish, joined per event-loop turn into one
 * message (TurnBatch); an answer too large for a message fails its call alone;
 * after the caller half-closes, the stream ends once every call is answered;
 * a caller that went away gets nothing more.
 */
import * as grpc from '@grpc/grpc-js';
import { TurnBatch } from './turn-batch';

export class StreamAnswers {
  /** True once the caller cancelled or the stream was ended here: calls still running should stop, and their answers go nowhere. */
  gone = false;
  private inFlight = 0;
  private halfClosed = false;
  private readonly batch: TurnBatch;

  /**
   * `frame` encodes one answer as an element of the response's repeated
   * field; `tooLarge` is the answer that replaces one whose frame is over
   * `limit`.
   */
  constructor(
    private readonly call: grpc.ServerDuplexStream<unknown, Buffer>,
    private readonly limit: number,
    private readonly tooLarge: (callId: number, bytes: number) => Buffer,
    private readonly onDone: () => void = () => undefined,
  ) {
    this.batch = new TurnBatch((message) => call.write(message), limit);
    call.on('error', () => undefined);
    call.on('cancelled', () => this.drop());
    call.on('end', () => {
      this.halfClosed = true;
      if (this.inFlight === 0 && !this.gone) this.finish();
    });
  }

  /** A call arrived; answer() it exactly once. */
  begin(): void {
    this.inFlight++;
  }

  /** The answer of a call begun, as a frame. */
  answer(callId: number, frame: Buffer): void {
    this.inFlight--;
    if (this.gone) return;
    // The last call in flight answered: no other answer can join this turn's message, so it goes now.
    this.batch.push(frame.length > this.limit ? this.tooLarge(callId, frame.length) : frame, this.inFlight === 0);
    if (this.inFlight === 0 && this.halfClosed) this.finish();
  }

  /** Ends the stream with `err`'s status; calls still running are dropped. */
  fail(err: grpc.ServiceError): void {
    this.drop();
    this.call.emit('error', err);
  }

  private drop(): void {
    if (this.gone) return;
    this.gone = true;
    this.batch.discard();
    this.onDone();
  }

  private finish(): void {
    this.batch.flush();
    this.gone = true;
    this.onDone();
    this.call.end();
  }
}

/** The message an answer over the limit is replaced with. */
export function tooLargeMessage(bytes: number, limit: number): string {
  return `the answer is ${bytes} bytes, over the message size limit of ${limit} bytes`;
}

/**
 * `service` with `method`'s answers written as they are: a StreamAnswers
 * stream writes the bytes its TurnBatch made, already encoded. `readCalls`,
 * when given, reads the incoming messages in place of the proto's own decoder.
 */
export function withRawAnswers(service: grpc.ServiceDefinition, method: string, readCalls?: (bytes: Buffer) => unknown): grpc.ServiceDefinition {
  const def = (service as Record<string, grpc.MethodDefinition<unknown, unknown>>)[method];
  return { ...service, [method]: { ...def, responseSerialize: (bytes: unknown) => bytes as Buffer, ...(readCalls ? { requestDeserialize: readCalls } : {}) } };
}
