/**
 * The rules of the API's cluster primitives (locks as leases with fencing
 * tokens, job tickets claimed once per period), in one place for every side
 * that implements them: the runtime's API service over a Store, the SDK's
 * in-memory test host and the conformance double. The limits here are the
 * ones api.proto documents.
 */
import { Errors } from '../errors';

/** Lock and job names: bytes of UTF-8. */
export const MAX_CLUSTER_NAME_BYTES = 200;
/** Longest lease one acquire or refresh grants. */
export const MAX_LOCK_TTL_MS = 3_600_000;
/** Longest a LockAcquire waits for a held lock, kept under the SDK's 30 s API call deadline. */
export const MAX_LOCK_WAIT_MS = 20_000;
/** Shortest and longest job period. */
export const MIN_JOB_EVERY_MS = 10;
export const MAX_JOB_EVERY_MS = 604_800_000;
/** How often a waiting LockAcquire looks again when the holder's lease has longer to run. */
export const LOCK_POLL_MS = 50;

/** The outcome of one acquire. */
export interface LockGrant {
  acquired: boolean;
  /** The fencing token of this grant; 0 when not acquired. */
  token: number;
  /** The lease's end (acquired) or the current holder's (not acquired), ms on the store's clock. */
  expiresAt: number;
  /** The store's clock when it answered. */
  nowMs: number;
}

/** A refreshed lease. */
export interface LockLease {
  expiresAt: number;
  nowMs: number;
}

export interface JobClaimResult {
  /** True for exactly one caller per (plugin, name, period). */
  claimed: boolean;
  nowMs: number;
}

/** What serving the cluster RPCs needs: the Store's cluster methods (src/store/store.ts documents them). */
export interface ClusterBackend {
  clusterNow(): Promise<number>;
  lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant>;
  lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease>;
  lockRelease(pluginId: string, name: string, token: number): Promise<void>;
  jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult>;
}

/** A lock or job name: 1-200 bytes of UTF-8 without U+0000 (PostgreSQL text cannot hold it). */
export function checkClusterName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_CLUSTER_NAME_BYTES || name.includes('\0')) {
    throw Errors.BAD_API_REQUEST('name', `1-${MAX_CLUSTER_NAME_BYTES} bytes of UTF-8 without U+0000`);
  }
  return name;
}

/** A whole number of milliseconds in [min, max], from a uint64 field (a string or number on the wire). */
export function checkWholeMs(field: string, value: unknown, min: number, max: number): number {
  const n = Number(value ?? 0);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw Errors.BAD_API_REQUEST(field, `${min}-${max} ms, got ${String(value)}`);
  return n;
}

/** A fencing token from the wire: a positive whole number. */
export function checkToken(value: unknown): number {
  const n = Number(value ?? 0);
  if (!Number.isSafeInteger(n) || n < 1) throw Errors.BAD_API_REQUEST('token', `a token from LockAcquire (1 or more), got ${String(value)}`);
  return n;
}

export function periodOf(nowMs: number, everyMs: number): number {
  return Math.floor(nowMs / everyMs);
}

/**
 * Refuses a claim outside the current period or one either side: one behind
 * lets a timer that fired just early or late claim the period it meant, and
 * nothing further lets a plugin book future periods in advance.
 */
export function checkClaimable(pluginId: string, name: string, period: number, everyMs: number, nowMs: number): void {
  const current = periodOf(nowMs, everyMs);
  if (period < current - 1 || period > current + 1) throw Errors.JOB_PERIOD_NOT_CURRENT(pluginId, name, period, current);
}

/**
 * When a job ticket may be deleted: after its TTL, but never before the period
 * after it has ended, since until then the period can still be claimed and a
 * deleted ticket would let it run twice.
 */
export function ticketExpiry(nowMs: number, period: number, everyMs: number, ttlMs: number): number {
  return Math.max(nowMs + ttlMs, (period + 2) * everyMs);
}

/** Why a token was refused, for LOCK_TOKEN_STALE. */
export function staleReason(current: { token: number; expiresAt: number } | undefined, token: number, nowMs: number): string {
  if (!current) return 'the lock has never been granted';
  if (current.token !== token) return `the lock has since been granted with token ${current.token}`;
  if (current.expiresAt <= nowMs) return `its lease expired ${nowMs - current.expiresAt} ms ago`;
  return 'the lock is not held with it';
}

/**
 * Tries `attempt` until it acquires, `waitMs` has passed or the caller went
 * away (a cancelled call must not take a lock nobody will release), sleeping
 * until the holder's lease ends but never longer than LOCK_POLL_MS (a release
 * frees the lock early). `attempt` is the store's atomic take-if-free.
 */
export async function acquireWaiting(attempt: () => Promise<LockGrant>, waitMs: number, cancelled: () => boolean): Promise<LockGrant> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const grant = await attempt();
    const left = deadline - Date.now();
    if (grant.acquired || left <= 0) return grant;
    const pause = Math.max(1, Math.min(left, LOCK_POLL_MS, grant.expiresAt - grant.nowMs));
    await new Promise((resolve) => setTimeout(resolve, pause).unref());
    if (cancelled()) return { ...grant, acquired: false, token: 0 };
  }
}

/** What a handler may ask of its call beyond the request: whether the caller cancelled it (or went away). */
export interface CallState {
  readonly cancelled: boolean;
}

type ClusterHandler = (request: Record<string, unknown>, call: CallState) => Promise<object>;

/** uint64 fields go out as decimal strings, as the generated types (longs: String) expect. */
const u64 = (n: number): string => String(n);

/**
 * The API's cluster RPCs for one plugin (LockAcquire, LockRefresh,
 * LockRelease, JobClaim, ClusterTime): requests validated at the edge, then
 * the backend, which owns atomicity and the clock. `pluginId` comes from the
 * connection, so a plugin's names never meet another's.
 */
export function clusterHandlers(store: ClusterBackend, pluginId: string): Record<string, ClusterHandler> {
  return {
    LockAcquire: async (req, call) => {
      const name = checkClusterName(req.name);
      const ttlMs = checkWholeMs('ttl_ms', req.ttl_ms, 1, MAX_LOCK_TTL_MS);
      const waitMs = checkWholeMs('wait_ms', req.wait_ms, 0, MAX_LOCK_WAIT_MS);
      const grant = await acquireWaiting(() => store.lockAcquire(pluginId, name, ttlMs), waitMs, () => call.cancelled);
      return { acquired: grant.acquired, token: u64(grant.token), expires_at_ms: u64(grant.expiresAt), now_ms: u64(grant.nowMs) };
    },
    LockRefresh: async (req) => {
      const name = checkClusterName(req.name);
      const token = checkToken(req.token);
      const lease = await store.lockRefresh(pluginId, name, token, checkWholeMs('ttl_ms', req.ttl_ms, 1, MAX_LOCK_TTL_MS));
      return { expires_at_ms: u64(lease.expiresAt), now_ms: u64(lease.nowMs) };
    },
    LockRelease: async (req) => {
      await store.lockRelease(pluginId, checkClusterName(req.name), checkToken(req.token));
      return {};
    },
    JobClaim: async (req) => {
      const name = checkClusterName(req.name);
      const everyMs = checkWholeMs('every_ms', req.every_ms, MIN_JOB_EVERY_MS, MAX_JOB_EVERY_MS);
      const period = checkWholeMs('period', req.period, 0, Number.MAX_SAFE_INTEGER);
      const ttlMs = checkWholeMs('ttl_ms', req.ttl_ms, 0, MAX_JOB_EVERY_MS * 2);
      const claim = await store.jobClaim(pluginId, name, period, everyMs, ttlMs);
      return { claimed: claim.claimed, now_ms: u64(claim.nowMs) };
    },
    ClusterTime: async () => ({ now_ms: u64(await store.clusterNow()) }),
  };
}

/**
 * The reference implementation in memory, for hosts without a database (the
 * SDK's test host, conformance runs). The SQL stores do the same in their
 * tables; store-contract tests hold all of them to it.
 */
export class MemoryCluster implements ClusterBackend {
  private readonly locks = new Map<string, { token: number; expiresAt: number }>();
  /** Ticket key → expiry. */
  private readonly tickets = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async clusterNow(): Promise<number> {
    return this.now();
  }

  async lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant> {
    const nowMs = this.now();
    const key = `${pluginId}\0${name}`;
    const current = this.locks.get(key);
    if (current && current.expiresAt > nowMs) return { acquired: false, token: 0, expiresAt: current.expiresAt, nowMs };
    const grant = { token: (current?.token ?? 0) + 1, expiresAt: nowMs + ttlMs };
    this.locks.set(key, grant);
    return { acquired: true, ...grant, nowMs };
  }

  async lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease> {
    const nowMs = this.now();
    const current = this.locks.get(`${pluginId}\0${name}`);
    if (!current || current.token !== token || current.expiresAt <= nowMs) {
      throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(current, token, nowMs));
    }
    current.expiresAt = nowMs + ttlMs;
    return { expiresAt: current.expiresAt, nowMs };
  }

  async lockRelease(pluginId: string, name: string, token: number): Promise<void> {
    const nowMs = this.now();
    const current = this.locks.get(`${pluginId}\0${name}`);
    if (!current || current.token !== token) throw Errors.LOCK_TOKEN_STALE(pluginId, name, token, staleReason(current, token, nowMs));
    // The entry stays, expired, so the next grant's token is still larger.
    current.expiresAt = 0;
  }

  async jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult> {
    const nowMs = this.now();
    checkClaimable(pluginId, name, period, everyMs, nowMs);
    for (const [k, expiry] of this.tickets) if (expiry <= nowMs) this.tickets.delete(k);
    const key = `${pluginId}\0${name}\0${period}`;
    if (this.tickets.has(key)) return { claimed: false, nowMs };
    this.tickets.set(key, ticketExpiry(nowMs, period, everyMs, ttlMs));
    return { claimed: true, nowMs };
  }
}
