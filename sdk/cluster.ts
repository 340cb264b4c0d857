/**
 * ctx.api.cluster: leases that refresh themselves while held, and job timers
 * aligned to the store's clock that run a period only where its ticket was
 * claimed. The host (api.proto's LockAcquire, LockRefresh, LockRelease,
 * JobClaim, ClusterTime) owns atomicity and time; this side owns timers, and
 * every timer is unref'd and cleared by close() at deactivation.
 */
import { MAX_JOB_EVERY_MS, MAX_LOCK_WAIT_MS, MIN_JOB_EVERY_MS, checkClusterName, checkWholeMs } from '../src/protocol/cluster-contract';
import type { ClusterApi, JobRun, Lease, LockOptions, Logger, ScheduledJob } from './types';

/** A unary API call, as api-client makes it; failures are PluginApiError with a gRPC status name in `code`. */
export type ApiCall = <Res>(method: string, req: object) => Promise<Res>;

interface Closable {
  close(why: string): void;
}

const isStale = (err: unknown): boolean => (err as { code?: string }).code === 'FAILED_PRECONDITION';
const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

class HeldLease implements Lease {
  readonly signal: AbortSignal;
  expiresAt: number;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  /** This process's clock past which the lease may be gone: when the last granting request was sent, plus the TTL. */
  private validUntil: number;
  private ended = false;

  constructor(
    private readonly call: ApiCall,
    readonly name: string,
    readonly token: number,
    expiresAt: number,
    sentAt: number,
    private readonly ttlMs: number,
    private readonly forget: (lease: HeldLease) => void,
  ) {
    this.signal = this.controller.signal;
    this.expiresAt = expiresAt;
    this.validUntil = sentAt + ttlMs;
    this.arm();
  }

  get lost(): boolean {
    return this.signal.aborted;
  }

  async release(): Promise<void> {
    if (this.ended) return;
    this.end();
    try {
      await this.call('LockRelease', { name: this.name, token: String(this.token) });
    } catch (err) {
      // Refused means a newer holder has the lock: this lease was lost before it was released.
      if (!isStale(err)) throw err;
      this.controller.abort(new Error(`lease on lock ${JSON.stringify(this.name)} was lost before release: ${errText(err)}`));
    }
  }

  /** Deactivation: stop refreshing, report the lease lost, and free the lock for the next holder if the host is still there. */
  close(why: string): void {
    if (this.ended) return;
    this.lose(new Error(`lease on lock ${JSON.stringify(this.name)} ended: ${why}`));
    this.call('LockRelease', { name: this.name, token: String(this.token) }).catch(() => undefined);
  }

  private arm(): void {
    this.timer = setTimeout(() => void this.refresh(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const sentAt = Date.now();
    try {
      const res = await this.call<{ expires_at_ms: string }>('LockRefresh', { name: this.name, token: String(this.token), ttl_ms: this.ttlMs });
      if (this.ended) return;
      this.expiresAt = Number(res.expires_at_ms);
      this.validUntil = sentAt + this.ttlMs;
      this.arm();
    } catch (err) {
      if (this.ended) return;
      // A transient failure (host busy, database restarting) is retried while the lease may still hold.
      if (isStale(err) || Date.now() >= this.validUntil) {
        this.lose(new Error(`lease on lock ${JSON.stringify(this.name)} lost: ${errText(err)}`));
      } else {
        this.arm();
      }
    }
  }

  private lose(reason: Error): void {
    this.end();
    this.controller.abort(reason);
  }

  private end(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.forget(this);
  }
}

class Job implements ScheduledJob {
  private timer: NodeJS.Timeout | undefined;
  /** The store's clock minus this process's, from the last answer (half the round trip taken as the one-way delay). */
  private offset = 0;
  private running = false;
  private cancelled = false;

  constructor(
    private readonly call: ApiCall,
    private readonly name: string,
    private readonly everyMs: number,
    private readonly fn: (run: JobRun) => void | Promise<void>,
    private readonly log: Logger,
    private readonly forget: (job: Job) => void,
  ) {
    void this.start();
  }

  cancel(): void {
    this.close();
  }

  close(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.forget(this);
  }

  private async start(): Promise<void> {
    try {
      const sentAt = Date.now();
      const res = await this.call<{ now_ms: string }>('ClusterTime', {});
      this.align(sentAt, res.now_ms);
      await this.tick(this.currentPeriod());
    } catch (err) {
      this.log.error(`job ${JSON.stringify(this.name)} could not read the store's clock; retrying in one period`, { error: errText(err) });
      this.wait(() => void this.start(), this.everyMs);
    }
  }

  private async tick(period: number): Promise<void> {
    if (this.cancelled) return;
    // Busy with the last run: leave this period's ticket to another instance.
    if (!this.running) {
      try {
        const sentAt = Date.now();
        const res = await this.call<{ claimed: boolean; now_ms: string }>('JobClaim', {
          name: this.name,
          period: String(period),
          every_ms: this.everyMs,
          ttl_ms: this.everyMs * 2,
        });
        this.align(sentAt, res.now_ms);
        if (res.claimed && !this.cancelled) void this.run(period);
      } catch (err) {
        this.log.warn(`job ${JSON.stringify(this.name)} could not claim period ${period}`, { error: errText(err) });
      }
    }
    if (this.cancelled) return;
    // The next period, or the current one when this process fell behind (a stall longer than a period).
    const next = Math.max(period + 1, this.currentPeriod());
    this.wait(() => void this.tick(next), next * this.everyMs - this.storeNow());
  }

  private async run(period: number): Promise<void> {
    this.running = true;
    try {
      await this.fn({ name: this.name, period });
    } catch (err) {
      this.log.error(`job ${JSON.stringify(this.name)} failed in period ${period}`, { error: errText(err) });
    } finally {
      this.running = false;
    }
  }

  private wait(then: () => void, ms: number): void {
    if (this.cancelled) return;
    this.timer = setTimeout(then, Math.max(0, ms));
    this.timer.unref();
  }

  private align(sentAt: number, nowMs: string): void {
    this.offset = Number(nowMs) - (sentAt + Date.now()) / 2;
  }

  private storeNow(): number {
    return Date.now() + this.offset;
  }

  private currentPeriod(): number {
    return Math.floor(this.storeNow() / this.everyMs);
  }
}

/** ctx.api.cluster for one activation; `close` cancels its jobs and ends its leases. */
export function createCluster(call: ApiCall, log: Logger): { cluster: ClusterApi; close(why: string): void } {
  const live = new Set<Closable & (HeldLease | Job)>();

  const lock = async (name: string, options: LockOptions): Promise<Lease | undefined> => {
    const deadline = Date.now() + (options.waitMs ?? 0);
    // The host waits at most MAX_LOCK_WAIT_MS per call; a longer wait is several calls.
    for (;;) {
      const sentAt = Date.now();
      const waitMs = Math.min(MAX_LOCK_WAIT_MS, Math.max(0, deadline - sentAt));
      const res = await call<{ acquired: boolean; token: string; expires_at_ms: string }>('LockAcquire', { name, ttl_ms: options.ttlMs, wait_ms: waitMs });
      if (res.acquired) {
        const lease = new HeldLease(call, name, Number(res.token), Number(res.expires_at_ms), sentAt, options.ttlMs, (l) => live.delete(l));
        live.add(lease);
        return lease;
      }
      if (Date.now() >= deadline) return undefined;
    }
  };

  const cluster: ClusterApi = {
    lock,
    schedule(name, options, fn) {
      // Checked here, where the author can see the throw, rather than logged by every tick.
      checkClusterName(name);
      checkWholeMs('everyMs', options.everyMs, MIN_JOB_EVERY_MS, MAX_JOB_EVERY_MS);
      const job = new Job(call, name, options.everyMs, fn, log, (j) => live.delete(j));
      live.add(job);
      return job;
    },
    async now() {
      return Number((await call<{ now_ms: string }>('ClusterTime', {})).now_ms);
    },
  };
  return {
    cluster,
    close(why: string) {
      for (const item of [...live]) item.close(why);
    },
  };
}
