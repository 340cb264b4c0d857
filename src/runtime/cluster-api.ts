/**
 * The API's cluster RPCs for one plugin (api.proto: LockAcquire, LockRefresh,
 * LockRelease, JobClaim, ClusterTime): request validation at the edge, then
 * the store, which owns atomicity and the clock. The plugin id comes from the
 * connection, so a plugin's lock and job names can never meet another's.
 */
import {
  MAX_JOB_EVERY_MS,
  MAX_LOCK_TTL_MS,
  MAX_LOCK_WAIT_MS,
  MIN_JOB_EVERY_MS,
  acquireWaiting,
  checkClusterName,
  checkToken,
  checkWholeMs,
} from '../protocol/cluster-contract';
import type { Store } from '../store/store';

type Handler = (request: Record<string, unknown>) => Promise<object>;

/** uint64 fields go out as decimal strings, as the generated types (longs: String) expect. */
const u64 = (n: number): string => String(n);

export function clusterHandlers(store: Store, pluginId: string): Record<string, Handler> {
  return {
    LockAcquire: async (req) => {
      const name = checkClusterName(req.name);
      const ttlMs = checkWholeMs('ttl_ms', req.ttl_ms, 1, MAX_LOCK_TTL_MS);
      const waitMs = checkWholeMs('wait_ms', req.wait_ms, 0, MAX_LOCK_WAIT_MS);
      const grant = await acquireWaiting(() => store.lockAcquire(pluginId, name, ttlMs), waitMs);
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
