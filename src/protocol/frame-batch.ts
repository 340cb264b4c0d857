/**
 * Frames of many exchanges, sent together: what one side produces in one turn
 * of the event loop travels as one gRPC message (`{ frames: [...] }`), so a
 * burst of small requests costs one message, not one per request. A batch is
 * cut early at `budgetBytes` (kept well under the message size limit), and
 * while the gRPC stream pushes back ('drain' pending) frames wait in the next
 * batch. Order is kept: frames go out in the order they were pushed.
 */

/** The writable half of a grpc-js stream carrying batches. */
export interface BatchSink<F> {
  write(batch: { frames: F[] }): boolean;
  once(event: 'drain', listener: () => void): unknown;
  end(): void;
}

/** What a header list costs in a batch, roughly: its names and values. */
export function headerBytes(headers: readonly { name: string; values: readonly string[] }[] | undefined): number {
  let n = 0;
  for (const h of headers ?? []) {
    n += h.name.length + 4;
    for (const v of h.values) n += v.length + 2;
  }
  return n;
}

export class FrameBatcher<F> {
  private frames: F[] = [];
  private sizes: number[] = [];
  private bytes = 0;
  private scheduled = false;
  private draining = false;
  private stopped = false;
  private ending = false;
  private readonly flushNow = (): void => this.flush();
  private readonly drained = (): void => {
    this.draining = false;
    this.flush();
  };

  /** `sizeOf` estimates a frame's encoded size (its body, mostly). */
  constructor(
    private readonly sink: BatchSink<F>,
    private readonly budgetBytes: number,
    private readonly sizeOf: (frame: F) => number,
  ) {}

  /** Queues a frame; it goes out at the end of this turn, or at once when a batch is full. */
  push(frame: F): void {
    if (this.stopped || this.ending) return;
    const size = this.sizeOf(frame);
    this.frames.push(frame);
    this.sizes.push(size);
    this.bytes += size;
    if (this.draining) return;
    if (this.bytes >= this.budgetBytes) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Ends the stream once what is queued is written; nothing is pushed after this. */
  end(): void {
    if (this.stopped || this.ending) return;
    this.ending = true;
    this.flush();
  }

  /** Drops what is queued and refuses more: the stream is gone. */
  stop(): void {
    this.stopped = true;
    this.frames = [];
    this.sizes = [];
    this.bytes = 0;
  }

  /** Writes batches of at most the budget (or one frame) until the queue is empty or the stream pushes back. */
  private flush(): void {
    this.scheduled = false;
    while (!this.draining && !this.stopped && this.frames.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < this.frames.length && (n === 0 || bytes + this.sizes[n] <= this.budgetBytes)) bytes += this.sizes[n++];
      const frames = n === this.frames.length ? this.frames : this.frames.slice(0, n);
      if (n === this.frames.length) {
        this.frames = [];
        this.sizes = [];
      } else {
        this.frames = this.frames.slice(n);
        this.sizes = this.sizes.slice(n);
      }
      this.bytes -= bytes;
      if (!this.sink.write({ frames })) {
        this.draining = true;
        this.sink.once('drain', this.drained);
      }
    }
    if (this.ending && !this.stopped && this.frames.length === 0) {
      this.stopped = true;
      this.sink.end();
    }
  }
}
