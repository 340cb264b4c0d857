import { Errors } from '../errors';
import { TYPE } from './tar-format';
import type { TarEntry } from './tar-reader';

export type EntryKind = 'file' | 'directory';

const REFUSED_TYPES: Record<string, string> = {
  [TYPE.symlink]: 'symbolic link',
  [TYPE.hardLink]: 'hard link',
  [TYPE.charDevice]: 'character device',
  [TYPE.blockDevice]: 'block device',
  [TYPE.fifo]: 'FIFO (named pipe)',
};

/** File or directory, or the catalog error that refuses the entry's type. */
export function entryKind(entry: TarEntry): EntryKind {
  if (entry.type === TYPE.file || entry.type === TYPE.oldFile || entry.type === TYPE.contiguous) {
    return entry.path.endsWith('/') ? 'directory' : 'file';
  }
  if (entry.type === TYPE.directory) return 'directory';
  const kind = REFUSED_TYPES[entry.type] ?? `entry of unknown type ${JSON.stringify(entry.type)}`;
  const link = entry.linkpath ? ` pointing to ${JSON.stringify(entry.linkpath)}` : '';
  throw Errors.BUNDLE_UNSUPPORTED_ENTRY(entry.path, `${kind}${link}`);
}

/**
 * The entry's path as segments inside the destination, or the error naming the rule it broke.
 * `.` segments and repeated slashes are dropped (tools write `./plugin.json`); `..`, absolute
 * paths and Windows spellings of either are refused rather than rewritten, since a bundle that
 * tries them is not one to trust.
 */
export function safeSegments(raw: string): string[] {
  if (raw.includes('\0')) throw Errors.BUNDLE_UNSAFE_PATH(raw, 'the path contains a NUL byte');
  if (raw.includes('\\')) throw Errors.BUNDLE_UNSAFE_PATH(raw, 'the path contains a backslash, which Windows reads as a separator');
  if (raw.startsWith('/') || /^[a-zA-Z]:/.test(raw)) throw Errors.BUNDLE_UNSAFE_PATH(raw, 'absolute paths are not allowed');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw Errors.BUNDLE_UNSAFE_PATH(raw, '".." path segments are not allowed');
  for (const s of segments) {
    if (Buffer.byteLength(s) > 255) throw Errors.BUNDLE_UNSAFE_PATH(raw, 'a path segment is longer than 255 bytes');
  }
  if (raw.length > 4096) throw Errors.BUNDLE_UNSAFE_PATH(raw, 'the path is longer than 4096 characters');
  return segments;
}

/**
 * Remembers every path seen so far. Two entries with one path would let the second replace what
 * was checked as the first; a file standing where a later entry needs a folder is the same trick.
 * Paths compare in Unicode NFC so that macOS's normalisation cannot merge two distinct entries.
 */
export class PathRegistry {
  private readonly seen = new Map<string, EntryKind>();

  add(raw: string, segments: string[], kind: EntryKind): void {
    const key = segments.join('/').normalize('NFC');
    if (this.seen.has(key)) throw Errors.BUNDLE_DUPLICATE_ENTRY(raw, key);
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/').normalize('NFC');
      if (this.seen.get(parent) === 'file') {
        throw Errors.BUNDLE_UNSAFE_PATH(raw, `its parent ${JSON.stringify(parent)} is a file earlier in the bundle`);
      }
    }
    this.seen.set(key, kind);
  }
}

/** Setuid, setgid and sticky bits are dropped; any execute bit makes the file 0755, else 0644. */
export function normalizedMode(kind: EntryKind, mode: number): number {
  return kind === 'directory' || (mode & 0o111) !== 0 ? 0o755 : 0o644;
}
