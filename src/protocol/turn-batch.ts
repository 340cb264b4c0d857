/**
 * One message per event-loop turn for a stream of calls or answers: the
 * frames (each an encoded element of the batch message's repeated field 1)
 * queued during a turn go out together, so many calls in flight cost one
 * write, one HTTP/2 frame and one decode on the other side instead of one
 * each. A frame is never held past the turn it was queued in, so a call never
 * waits for another; the order of frames is kept. A frame that its pusher
 * knows to be the last of its turn (nothing else in flight that could join)
 * goes at once with what is queued: waiting for the turn's end would add a
 * loop iteration (and, with http2's own write scheduling, a second one) to
 * every lone call's round trip for nothing.
 *
 * Frames are concatenated as they are: protobuf encodes a repeated message
 * field as one tag-length-bytes run per element, so `{ calls: [a, b] }` is the
 * bytes of `{ calls: [a] }` followed by those of `{ calls: [b] }`
 * (test/protocol/turn-batch.test.ts checks it against protobufjs).
 */

export class TurnBatch {
  private frames: Buffer[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;

  /**
   * `write` sends one message; `limit` is the message size limit, which no
   * batch crosses (a frame alone over it is the caller's to refuse).
   */
  constructor(
    private readonly write: (message: Buffer) => void,
    private readonly limit: number,
  ) {}

  /** Queues `frame` for this turn's message; `last`: nothing else can join this turn, so the message goes now. */
  push(frame: Buffer, last = false): void {
    if (this.bytes > 0 && this.bytes + frame.length > this.limit) this.flush();
    this.frames.push(frame);
    this.bytes += frame.length;
    if (last) return this.flush();
    // setImmediate rather than queueMicrotask: answers completed by the I/O callbacks of one poll phase join one message (bench/runtime.js, docs/protocol.md).
    this.scheduled ??= setImmediate(this.flush);
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.bytes === 0 && this.frames.length === 0) return;
    const message = this.frames.length === 1 ? this.frames[0] : Buffer.concat(this.frames, this.bytes);
    this.frames = [];
    this.bytes = 0;
    this.write(message);
  };

  /** Drops what is queued and stops the turn's timer: the stream is gone. */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.frames = [];
    this.bytes = 0;
  }
}
