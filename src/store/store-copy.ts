/**
 * Copying one install's plughost data into another, empty store (plughost
 * migrate: SQLite to PostgreSQL). Bundles go first, then KV, then plugin
 * records, so a host started on the target midway never finds a record
 * without its bundle; a copy that fails is deleted again, so the target ends
 * either with the whole copy or with no plughost data.
 *
 * Not copied: cluster locks and job tickets (leases and claims of the moment,
 * taken again by the plugins), nodes and observed states (per node, rebuilt
 * by the hosts that run), expired KV values, and bundles no record uses.
 */
import { Errors } from '../errors';
import type { PluginRecord, Store, StoreContents } from './store';

/** KV values read from the source per page. */
export const KV_COPY_PAGE = 500;
/** Tries at deleting a failed copy before saying that the target may hold part of it. */
const UNDO_ATTEMPTS = 3;

export interface CopySummary {
  plugins: number;
  /** Of `plugins`, those the operator had enabled (they start on the target's hosts). */
  enabledPlugins: number;
  bundles: number;
  /** The bytes of every copied bundle together. */
  bundleBytes: number;
  kv: number;
  /** Of `kv`, the values copied with the time to live they had left. */
  kvWithExpiry: number;
}

export interface CopyOptions {
  /** The source as messages name it. */
  source: string;
  /** The target as messages name it: a URL without its password. */
  target: string;
  /** Aborting stops the copy before its next bundle, KV page or record, and deletes what was copied; the reason names why. */
  signal?: AbortSignal;
}

/**
 * Copies every plugin record, the bundle each uses and each plugin's live KV
 * values (keeping their remaining time to live) from `source` into `target`.
 * Refuses, writing nothing, when the target holds any plugin record, KV value
 * or bundle (MIGRATE_TARGET_NOT_EMPTY) or a record's bundle is not in the
 * source (MIGRATE_BUNDLES_MISSING). A failure midway is MIGRATE_COPY_FAILED
 * once the partial copy is deleted, MIGRATE_UNDO_FAILED when that failed too.
 */
export async function copyStore(source: Store, target: Store, options: CopyOptions): Promise<CopySummary> {
  const stopIfInterrupted = (): void => {
    if (options.signal?.aborted) throw Errors.MIGRATE_INTERRUPTED(String(options.signal.reason));
  };
  const found = await target.contentCounts();
  if (!holdsNothing(found)) throw Errors.MIGRATE_TARGET_NOT_EMPTY(options.target, found);
  const records = await source.listPlugins();
  const stored = new Set(await source.listBundles());
  const missing = records.filter((r) => !stored.has(r.bundleSha256)).map((r) => ({ id: r.id, sha256: r.bundleSha256 }));
  if (missing.length > 0) throw Errors.MIGRATE_BUNDLES_MISSING(options.source, missing);

  const summary: CopySummary = { plugins: 0, enabledPlugins: 0, bundles: 0, bundleBytes: 0, kv: 0, kvWithExpiry: 0 };
  let step = '';
  try {
    const copied = new Set<string>();
    for (const r of records) {
      if (copied.has(r.bundleSha256)) continue;
      step = `copying the bundle of plugin ${JSON.stringify(r.id)} (sha256 ${r.bundleSha256})`;
      stopIfInterrupted();
      summary.bundleBytes += await copyBundle(source, target, r.bundleSha256);
      copied.add(r.bundleSha256);
      summary.bundles++;
    }
    for (const r of records) {
      step = `copying the KV values of plugin ${JSON.stringify(r.id)}`;
      const { values, withExpiry } = await copyKv(source, target, r.id, stopIfInterrupted);
      summary.kv += values;
      summary.kvWithExpiry += withExpiry;
    }
    for (const r of records) {
      step = `copying the record of plugin ${JSON.stringify(r.id)}`;
      stopIfInterrupted();
      // State and last error are what the source's host last saw; the target's hosts observe their own.
      await target.putPlugin({ ...r, state: 'not_running', lastError: null });
      summary.plugins++;
      if (r.enabled) summary.enabledPlugins++;
    }
  } catch (err) {
    const why = messageOf(err);
    const undoErr = await deleteCopy(target, records);
    if (undoErr !== null) throw Errors.MIGRATE_UNDO_FAILED(options.target, step, why, messageOf(undoErr));
    throw Errors.MIGRATE_COPY_FAILED(options.target, step, why);
  }
  return summary;
}

/** Streams one bundle across (the source checks its SHA-256 while reading, the target while writing); returns its size. */
async function copyBundle(source: Store, target: Store, sha256: string): Promise<number> {
  const bundle = await source.getBundle(sha256);
  if (!bundle) throw Errors.STORE_BUNDLE_CORRUPT(sha256, 'it is no longer in the database');
  try {
    await target.putBundle(sha256, bundle.stream, bundle.signature);
  } finally {
    bundle.stream.destroy();
  }
  return bundle.size;
}

async function copyKv(source: Store, target: Store, pluginId: string, stopIfInterrupted: () => void): Promise<{ values: number; withExpiry: number }> {
  let values = 0;
  let withExpiry = 0;
  let after: string | undefined;
  for (;;) {
    stopIfInterrupted();
    const page = await source.kvEntries(pluginId, after, KV_COPY_PAGE);
    for (const e of page) {
      await target.kvSet(pluginId, e.key, e.value, e.ttlMs === null ? {} : { ttlMs: e.ttlMs });
      values++;
      if (e.ttlMs !== null) withExpiry++;
    }
    if (page.length < KV_COPY_PAGE) return { values, withExpiry };
    after = page[page.length - 1].key;
  }
}

/**
 * Deletes what a copy of `records` may have written to a target that was
 * empty before: their records and KV, then every bundle no record uses.
 * Returns null when the target holds no plughost data after it, else why not
 * (MIGRATE_LEFT_OVER when data remains all the same).
 */
async function deleteCopy(target: Store, records: PluginRecord[]): Promise<unknown> {
  let failure: unknown = null;
  // A pooled connection broken by the failure being undone fails one call, then the pool replaces it: try again at once.
  for (let attempt = 1; attempt <= UNDO_ATTEMPTS; attempt++) {
    try {
      for (const r of records) await target.deletePlugin(r.id);
      await target.deleteUnreferencedBundles();
      const left = await target.contentCounts();
      return holdsNothing(left) ? null : Errors.MIGRATE_LEFT_OVER(left);
    } catch (err) {
      failure = err;
    }
  }
  return failure;
}

function holdsNothing(c: StoreContents): boolean {
  return c.plugins === 0 && c.kv === 0 && c.bundles === 0;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
