/**
 * A Store kept in memory, for one conformance run: the plugin under test gets
 * the runtime's real API service (same validation, same errors) over storage
 * that leaves nothing on disk.
 */
import { Readable } from 'node:stream';
import { Errors } from '../errors';
import { MemoryCluster } from '../protocol/cluster-contract';
import { checkSha256, writeChunks } from '../store/bundle-chunks';
import { checkPageLimit } from '../store/store';
import type {
  JobClaimResult, KvEntry, KvPage, KvSetOptions, LockGrant, LockLease, NodeHeartbeat, NodeRecord, ObservedRecord, ObservedState, PluginPatch, PluginRecord,
  Store, StoreContents, StoredBundle, NewPluginRecord,
} from '../store/store';
import { definedFields, isDesiredChange } from '../store/store';

interface Entry {
  value: Buffer;
  /** Epoch ms after which the value is gone; Infinity for none. */
  expiresAt: number;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class MemoryStore implements Store {
  private readonly plugins = new Map<string, PluginRecord>();
  private readonly kv = new Map<string, Map<string, Entry>>();
  private readonly bundles = new Map<string, { chunks: Buffer[]; size: number; signature: Buffer | null }>();
  private readonly cluster = new MemoryCluster();
  private readonly nodes = new Map<string, Omit<NodeRecord, 'heartbeatAgeMs'>>();
  /** Keyed by plugin id, then node id. */
  private readonly observed = new Map<string, Map<string, ObservedRecord>>();

  async listPlugins(): Promise<PluginRecord[]> {
    return [...this.plugins.values()].map((r) => ({ ...r }));
  }

  async getPlugin(id: string): Promise<PluginRecord | undefined> {
    const r = this.plugins.get(id);
    return r && { ...r };
  }

  async putPlugin(record: NewPluginRecord): Promise<number> {
    const generation = (this.plugins.get(record.id)?.generation ?? 0) + 1;
    this.plugins.set(record.id, { ...record, generation });
    return generation;
  }

  async updatePlugin(id: string, patch: PluginPatch): Promise<PluginRecord> {
    const r = this.plugins.get(id);
    if (!r) throw Errors.STORE_UNKNOWN_PLUGIN(id);
    const next = { ...r, ...definedFields(patch), updatedAt: Date.now(), generation: r.generation + (isDesiredChange(patch) ? 1 : 0) };
    this.plugins.set(id, next);
    return { ...next };
  }

  async deletePlugin(id: string): Promise<void> {
    this.plugins.delete(id);
    this.kv.delete(id);
    this.observed.delete(id);
  }

  async heartbeat(node: NodeHeartbeat): Promise<void> {
    this.nodes.set(node.nodeId, { ...node, heartbeatAt: Date.now() });
  }

  async listNodes(): Promise<NodeRecord[]> {
    const now = Date.now();
    return [...this.nodes.values()].sort((a, b) => byteOrder(a.nodeId, b.nodeId)).map((n) => ({ ...n, heartbeatAgeMs: now - n.heartbeatAt }));
  }

  async putObserved(o: ObservedState): Promise<void> {
    if (!this.plugins.has(o.pluginId)) return;
    const rows = this.observed.get(o.pluginId) ?? new Map<string, ObservedRecord>();
    rows.set(o.nodeId, { ...o, updatedAt: Date.now() });
    this.observed.set(o.pluginId, rows);
  }

  async listObserved(pluginId: string): Promise<ObservedRecord[]> {
    return [...(this.observed.get(pluginId)?.values() ?? [])].sort((a, b) => byteOrder(a.nodeId, b.nodeId)).map((r) => ({ ...r }));
  }

  /** Memory has no transactions to share: the calls run as they come. */
  batch(work: () => void): void {
    work();
  }

  async kvGet(pluginId: string, key: string): Promise<Buffer | undefined> {
    return this.live(pluginId, key)?.value;
  }

  async kvSet(pluginId: string, key: string, value: Buffer, options: KvSetOptions = {}): Promise<boolean> {
    const current = this.live(pluginId, key);
    if (options.compare) {
      const { expected } = options.compare;
      if (expected === null ? current !== undefined : !current || !current.value.equals(expected)) return false;
    }
    const ttl = options.ttlMs ?? 0;
    this.space(pluginId).set(key, { value: Buffer.from(value), expiresAt: ttl > 0 ? Date.now() + ttl : Infinity });
    return true;
  }

  async kvDelete(pluginId: string, key: string): Promise<boolean> {
    const had = this.live(pluginId, key) !== undefined;
    this.space(pluginId).delete(key);
    return had;
  }

  async kvList(pluginId: string, prefix: string, limit: number, after?: string): Promise<KvPage> {
    const keys = [...this.space(pluginId).keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || byteOrder(k, after) > 0) && this.live(pluginId, k))
      .sort(byteOrder);
    const page = keys.slice(0, limit);
    return { keys: page, next: keys.length > limit ? page[page.length - 1] : null };
  }

  async kvDeleteAll(pluginId: string): Promise<number> {
    const n = [...this.space(pluginId).keys()].filter((k) => this.live(pluginId, k)).length;
    this.kv.delete(pluginId);
    return n;
  }

  async clusterNow(): Promise<number> {
    return this.cluster.clusterNow();
  }

  async lockAcquire(pluginId: string, name: string, ttlMs: number): Promise<LockGrant> {
    return this.cluster.lockAcquire(pluginId, name, ttlMs);
  }

  async lockRefresh(pluginId: string, name: string, token: number, ttlMs: number): Promise<LockLease> {
    return this.cluster.lockRefresh(pluginId, name, token, ttlMs);
  }

  async lockRelease(pluginId: string, name: string, token: number): Promise<void> {
    return this.cluster.lockRelease(pluginId, name, token);
  }

  async jobClaim(pluginId: string, name: string, period: number, everyMs: number, ttlMs: number): Promise<JobClaimResult> {
    return this.cluster.jobClaim(pluginId, name, period, everyMs, ttlMs);
  }

  async sweepExpired(): Promise<number> {
    let n = 0;
    for (const [pluginId, space] of this.kv) for (const key of [...space.keys()]) if (!this.live(pluginId, key)) n++;
    return n;
  }

  async putBundle(sha256: string, bytes: Buffer | Readable, signature: Buffer | null = null): Promise<void> {
    checkSha256(sha256);
    const chunks: Buffer[] = [];
    const { size } = await writeChunks(sha256, bytes, (_seq, chunk) => chunks.push(chunk));
    const stored = this.bundles.get(sha256);
    if (stored) stored.signature ??= signature;
    else this.bundles.set(sha256, { chunks, size, signature });
  }

  async getBundle(sha256: string): Promise<StoredBundle | undefined> {
    const stored = this.bundles.get(sha256);
    return stored && { sha256, size: stored.size, signature: stored.signature, stream: Readable.from(stored.chunks) };
  }

  async deleteUnreferencedBundles(keep: Iterable<string> = []): Promise<number> {
    const live = new Set([...keep, ...[...this.plugins.values()].map((r) => r.bundleSha256)]);
    let deleted = 0;
    for (const sha of this.bundles.keys()) if (!live.has(sha) && this.bundles.delete(sha)) deleted++;
    return deleted;
  }

  // ---- migration (plughost migrate) ----

  async kvEntries(pluginId: string, after: string | undefined, limit: number): Promise<KvEntry[]> {
    checkPageLimit(limit);
    const now = Date.now();
    return [...this.space(pluginId).keys()]
      .filter((k) => (after === undefined || byteOrder(k, after) > 0) && this.live(pluginId, k))
      .sort(byteOrder)
      .slice(0, limit)
      .map((key) => {
        const { value, expiresAt } = this.space(pluginId).get(key) as Entry;
        return { key, value: Buffer.from(value), ttlMs: expiresAt === Infinity ? null : Math.max(1, Math.ceil(expiresAt - now)) };
      });
  }

  async listBundles(): Promise<string[]> {
    return [...this.bundles.keys()].sort();
  }

  async contentCounts(): Promise<StoreContents> {
    let kv = 0;
    for (const [pluginId, space] of this.kv) for (const key of [...space.keys()]) if (this.live(pluginId, key)) kv++;
    return { plugins: this.plugins.size, kv, bundles: this.bundles.size };
  }

  async close(): Promise<void> {
    this.plugins.clear();
    this.kv.clear();
  }

  /** A plugin's values; expiry is applied lazily on read, so no timer is ever left running. */
  private space(pluginId: string): Map<string, Entry> {
    let space = this.kv.get(pluginId);
    if (!space) this.kv.set(pluginId, (space = new Map()));
    return space;
  }

  private live(pluginId: string, key: string): Entry | undefined {
    const space = this.kv.get(pluginId);
    const e = space?.get(key);
    if (e && e.expiresAt <= Date.now()) {
      space!.delete(key);
      return undefined;
    }
    return e;
  }
}
