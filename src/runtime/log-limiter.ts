/**
 * Per-plugin log rate limiting: two token buckets, lines per second and bytes
 * per second, each holding one second's worth as burst. A plugin that writes
 * faster than that has the excess dropped and counted, so a flood costs the
 * host a bounded amount of logging work and memory, and the operator still
 * learns how much was lost.
 */

export interface LogRateLimits {
  linesPerSecond: number;
  bytesPerSecond: number;
}

export class LogRateLimiter {
  private lines: number;
  private bytes: number;
  private last: number;
  /** Lines and bytes dropped since the last `takeDropped()`. */
  private droppedLines = 0;
  private droppedBytes = 0;

  constructor(
    readonly limits: LogRateLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.lines = limits.linesPerSecond;
    this.bytes = limits.bytesPerSecond;
    this.last = now();
  }

  /** True when a record of `size` bytes may be logged now; false (and counted) when it is over the rate. */
  admit(size: number): boolean {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last) / 1000;
    this.last = t;
    const { linesPerSecond, bytesPerSecond } = this.limits;
    this.lines = Math.min(linesPerSecond, this.lines + elapsed * linesPerSecond);
    this.bytes = Math.min(bytesPerSecond, this.bytes + elapsed * bytesPerSecond);
    // A line longer than a whole second's bytes still gets through once the bucket is full.
    const cost = Math.min(size, bytesPerSecond);
    if (this.lines >= 1 && this.bytes >= cost) {
      this.lines -= 1;
      this.bytes -= cost;
      return true;
    }
    this.droppedLines++;
    this.droppedBytes += size;
    return false;
  }

  /** What was dropped since the last call, and resets the count. */
  takeDropped(): { lines: number; bytes: number } {
    const out = { lines: this.droppedLines, bytes: this.droppedBytes };
    this.droppedLines = 0;
    this.droppedBytes = 0;
    return out;
  }
}
