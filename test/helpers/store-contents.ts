/** Everything a Store holds that plughost migrate copies, read out whole so two stores can be compared. */
import { createHash } from 'node:crypto';
import type { PluginRecord, Store } from '../../src/store';
import type { KvEntry } from '../../src/store/store';

export interface Contents {
  records: PluginRecord[];
  /** By sha256: the bytes and the detached signature. */
  bundles: Record<string, { bytes: Buffer; signature: Buffer | null }>;
  /** By plugin id (of the records): every live value, in key order. */
  kv: Record<string, KvEntry[]>;
}

export async function readContents(store: Store): Promise<Contents> {
  const records = await store.listPlugins();
  const bundles: Contents['bundles'] = {};
  for (const sha256 of await store.listBundles()) {
    const bundle = await store.getBundle(sha256);
    const parts: Buffer[] = [];
    for await (const part of bundle!.stream) parts.push(part as Buffer);
    bundles[sha256] = { bytes: Buffer.concat(parts), signature: bundle!.signature };
  }
  const kv: Contents['kv'] = {};
  for (const r of records) kv[r.id] = await store.kvEntries(r.id, undefined, 10_000);
  return { records, bundles, kv };
}

/**
 * The contents as jest compares them quickly and two copies agree on: each bundle's bytes as
 * their SHA-256 (jest walks a Buffer byte by byte), and every time to live as 1 (they differ
 * by the time the copy took).
 */
export function comparable(c: Contents): unknown {
  return {
    ...c,
    bundles: Object.fromEntries(Object.entries(c.bundles).map(([sha, { bytes, signature }]) => [sha, { bytes: createHash('sha256').update(bytes).digest('hex'), signature }])),
    kv: Object.fromEntries(Object.entries(c.kv).map(([id, entries]) => [id, entries.map((e) => ({ ...e, ttlMs: e.ttlMs === null ? null : 1 }))])),
  };
}
