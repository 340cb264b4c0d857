/** Size and count ceilings for one bundle; every one is checked while streaming, never after. */
export interface BundleLimits {
  /** Bytes of the .tar.gz file itself. */
  maxCompressedBytes: number;
  /** Bytes inflated from the gzip stream: tar headers, file contents and padding together. */
  maxUncompressedBytes: number;
  /** Files and folders in the archive (pax and GNU long-name records are not counted). */
  maxEntries: number;
  /** Bytes of any one file. */
  maxFileBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<BundleLimits> = Object.freeze({
  maxCompressedBytes: 50 * MiB,
  maxUncompressedBytes: 500 * MiB,
  maxEntries: 10_000,
  maxFileBytes: 100 * MiB,
});

export function resolveLimits(limits: Partial<BundleLimits> = {}): BundleLimits {
  const out: BundleLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof BundleLimits>) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`bundle limit ${key} must be a positive whole number, got ${value}`);
    out[key] = value;
  }
  return out;
}
