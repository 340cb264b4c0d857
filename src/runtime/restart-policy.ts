/**
 * When a plugin that failed is restarted, and when it is parked instead
 * (design.md, "Runtime policy"): backoff doubling from restartBackoffMs up to
 * restartBackoffMaxMs; maxFailures within failureWindowMs parks it.
 */
import type { RuntimeDefaults } from './types';

export type RestartDecision = { restartInMs: number } | { park: string };

export class RestartPolicy {
  private failures: number[] = [];

  constructor(private readonly limits: Pick<RuntimeDefaults, 'maxFailures' | 'failureWindowMs' | 'restartBackoffMs' | 'restartBackoffMaxMs'>) {}

  /** A start by the operator forgets earlier failures. */
  reset(): void {
    this.failures = [];
  }

  /** Counts a failure for `reason`: restart after a delay, or park with the reason to show. */
  failed(reason: string, now = Date.now()): RestartDecision {
    const { maxFailures, failureWindowMs, restartBackoffMs, restartBackoffMaxMs } = this.limits;
    this.failures = this.failures.filter((t) => now - t < failureWindowMs);
    this.failures.push(now);
    if (this.failures.length >= maxFailures) {
      const minutes = Math.round(failureWindowMs / 60_000);
      return { park: `${reason} (${this.failures.length} failures within ${minutes} min; parked until enabled again)` };
    }
    return { restartInMs: Math.min(restartBackoffMaxMs, restartBackoffMs * 2 ** (this.failures.length - 1)) };
  }
}
