/**
 * Failed admin authentications counted per client address in a fixed window;
 * past the limit the address gets 429 with Retry-After until the window ends.
 * Only failures count, so an operator with the right token is never slowed.
 * While an address is throttled every request from it gets 429, the right
 * token included: answering a correct guess differently would leave the
 * throttle an oracle. (@fastify/rate-limit counts every request; its allowList
 * could skip good tokens, but only by checking them while throttled.)
 */
import * as net from 'node:net';

export interface AuthThrottleOptions {
  /** Failed authentications an address may make per window. Default 10. */
  maxFailures?: number;
  /** Length of the window, in ms. Default 60 s. */
  windowMs?: number;
  /**
   * Addresses remembered at once. Default 10,000. When full, expired entries
   * are dropped, then the oldest, so an attacker with many addresses costs
   * bounded memory.
   */
  maxClients?: number;
}

export const AUTH_THROTTLE_DEFAULTS = { maxFailures: 10, windowMs: 60_000, maxClients: 10_000 } as const;

interface Entry {
  failures: number;
  resetAt: number;
}

export class AuthThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  private readonly maxClients: number;
  private readonly entries = new Map<string, Entry>();

  constructor(options: AuthThrottleOptions = {}, private readonly now: () => number = Date.now) {
    this.maxFailures = options.maxFailures ?? AUTH_THROTTLE_DEFAULTS.maxFailures;
    this.windowMs = options.windowMs ?? AUTH_THROTTLE_DEFAULTS.windowMs;
    this.maxClients = options.maxClients ?? AUTH_THROTTLE_DEFAULTS.maxClients;
  }

  /** Seconds until `address` may try again, or 0 when it is not throttled. */
  retryAfter(address: string): number {
    const entry = this.entries.get(clientKey(address));
    if (!entry) return 0;
    const left = entry.resetAt - this.now();
    if (left <= 0) {
      this.entries.delete(clientKey(address));
      return 0;
    }
    return entry.failures >= this.maxFailures ? Math.ceil(left / 1000) : 0;
  }

  /** Counts one failed authentication from `address`. */
  fail(address: string): void {
    const key = clientKey(address);
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry && entry.resetAt > now) {
      entry.failures++;
      return;
    }
    this.entries.delete(key);
    if (this.entries.size >= this.maxClients) this.evict(now);
    this.entries.set(key, { failures: 1, resetAt: now + this.windowMs });
  }

  /** Addresses currently remembered (for tests of the memory bound). */
  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    for (const [key, entry] of this.entries) if (entry.resetAt <= now) this.entries.delete(key);
    // Map order is insertion order: the first key is the oldest window.
    while (this.entries.size >= this.maxClients) this.entries.delete(this.entries.keys().next().value as string);
  }
}

/**
 * IPv6 clients are counted per /64, the block one subscriber usually gets:
 * counting single addresses would let one host rotate through 2^64 of them.
 * IPv4-mapped addresses count as their IPv4 address.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!net.isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('%')[0].split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(missing, 0)).fill('0'), ...right].map((h) => h.toLowerCase().replace(/^0+(?=.)/, ''));
}
