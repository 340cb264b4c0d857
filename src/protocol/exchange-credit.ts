/**
 * Per-exchange flow control of ServeHTTPStream: body bytes in either direction
 * move only against credit the receiver granted. Every exchange starts with
 * INITIAL_EXCHANGE_CREDIT granted each way (so a small body needs no grant);
 * the receiver adds more as its consumer takes bytes, keeping at most its
 * window unread or in flight. A slow consumer therefore holds up its own
 * exchange only, never the stream the exchanges share.
 */

/** Body bytes each side may send in an exchange before the first grant (the proto's 65536). */
export const INITIAL_EXCHANGE_CREDIT = 65_536;

/**
 * The receiving side's account of one exchange: what the sender may still
 * send (outstanding) and what arrived but the consumer has not taken
 * (buffered). Their sum never exceeds the window, once the first grant is out.
 */
export class CreditWindow {
  private outstanding = INITIAL_EXCHANGE_CREDIT;
  private buffered = 0;

  constructor(private readonly windowBytes: number) {}

  /** Counts `bytes` that arrived; false when they were more than granted (the sender broke the rule). */
  received(bytes: number): boolean {
    this.outstanding -= bytes;
    this.buffered += bytes;
    return this.outstanding >= 0;
  }

  /** Counts `bytes` the consumer took; returns the credit to grant now, or 0 to wait for more room. */
  consumed(bytes: number): number {
    this.buffered -= bytes;
    return this.grant();
  }

  /**
   * The credit to grant now: the room left in the window, once it is a quarter of the window
   * (or the sender has nothing left), so grants stay few; 0 otherwise.
   */
  grant(): number {
    const room = this.windowBytes - this.buffered - this.outstanding;
    if (room <= 0 || (room < this.windowBytes / 4 && this.outstanding > 0)) return 0;
    this.outstanding += room;
    return room;
  }
}

/** The sending side's account of one exchange: how many body bytes it may still send. */
export class CreditGate {
  private available = INITIAL_EXCHANGE_CREDIT;
  private waiter: (() => void) | undefined;
  private closed = false;

  /** Bytes that may go now. */
  get bytes(): number {
    return this.available;
  }

  /** Adds a grant from the receiver and wakes a sender waiting for one. */
  grant(bytes: number): void {
    this.available += bytes;
    this.wake();
  }

  /** Spends `bytes` of what is available (the caller sent at most `bytes`). */
  spend(bytes: number): void {
    this.available -= bytes;
  }

  /** Resolves once there is credit, or once the exchange is over (then `bytes` stays as it was). */
  whenAvailable(): Promise<void> {
    if (this.available > 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** The exchange is over: a waiting sender goes on (and finds it over). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
