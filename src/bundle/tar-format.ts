/**
 * The tar header format (POSIX ustar, with pax extended headers for long names), encoded and
 * decoded by hand. Only what bundles need: enough to read archives made by GNU tar, bsdtar and
 * node-tar, and to write reproducible ones.
 */

export const BLOCK = 512;

/** Type flags, as single characters the way the format spells them. */
export const TYPE = {
  file: '0',
  oldFile: '\0',
  contiguous: '7',
  hardLink: '1',
  symlink: '2',
  charDevice: '3',
  blockDevice: '4',
  directory: '5',
  fifo: '6',
  paxHeader: 'x',
  paxGlobal: 'g',
  gnuLongName: 'L',
  gnuLongLink: 'K',
} as const;

export interface HeaderFields {
  path: string;
  type: string;
  mode: number;
  size: number;
  mtime?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
}

/** A decoded header block; `path` still holds the raw ustar name (prefix joined), before pax. */
export interface RawHeader {
  path: string;
  type: string;
  mode: number;
  size: number;
  linkpath: string;
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  Buffer.from(value, 'utf8').subarray(0, length).copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  writeString(block, offset, length - 1, value.toString(8).padStart(length - 1, '0'));
}

/**
 * One 512-byte header block, written exactly as told: no path checks, so test fixtures can
 * build archives that real tools refuse to make. Paths over 100 bytes need `paxRecords`.
 */
export function encodeHeader(h: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, h.path);
  writeOctal(block, 100, 8, h.mode);
  writeOctal(block, 108, 8, h.uid ?? 0);
  writeOctal(block, 116, 8, h.gid ?? 0);
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, h.mtime ?? 0);
  block.write(h.type, 156, 1, 'latin1');
  writeString(block, 157, 100, h.linkpath ?? '');
  block.write('ustar\u000000', 257, 8, 'latin1');
  writeString(block, 265, 32, h.uname ?? '');
  writeString(block, 297, 32, h.gname ?? '');
  writeOctal(block, 329, 8, h.devmajor ?? 0);
  writeOctal(block, 337, 8, h.devminor ?? 0);
  block.fill(0x20, 148, 156);
  writeOctal(block, 148, 7, checksum(block));
  return block;
}

/** A pax extended header record block set (`x`) carrying `records`, followed by its padding. */
export function encodePax(name: string, records: Record<string, string>, mtime = 0): Buffer {
  const body = Buffer.concat(Object.entries(records).map(([k, v]) => paxRecord(k, v)));
  const header = encodeHeader({ path: name.slice(0, 100), type: TYPE.paxHeader, mode: 0o644, size: body.length, mtime });
  return Buffer.concat([header, body, padding(body.length)]);
}

function paxRecord(key: string, value: string): Buffer {
  const text = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(text);
  let len = bytes + String(bytes).length;
  if (String(len).length !== len - bytes) len = bytes + String(len).length;
  return Buffer.from(`${len}${text}`, 'utf8');
}

/** Zero bytes that round `size` up to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum;
}

/** Some old writers summed signed bytes; accept either sum as the format's readers do. */
function signedChecksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] << 24) >> 24;
  return sum;
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Octal, or GNU base-256 when the top bit is set; null when the field is not a number. */
function readNumber(block: Buffer, offset: number, length: number): number | null {
  if (block[offset] & 0x80) {
    if (block[offset] !== 0x80) return null;
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i];
    return Number.isSafeInteger(value) ? value : null;
  }
  const text = readString(block, offset, length).trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : null;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes a header block; a string result says why it is not a valid header. */
export function decodeHeader(block: Buffer): RawHeader | string {
  const stored = readNumber(block, 148, 8);
  if (stored === null || (stored !== checksum(block) && stored !== signedChecksum(block))) {
    return 'a tar header has a bad checksum (not a tar archive, or a damaged one)';
  }
  const mode = readNumber(block, 100, 8);
  const size = readNumber(block, 124, 12);
  if (mode === null || size === null) return 'a tar header has a malformed mode or size field';
  let path = readString(block, 0, 100);
  const ustar = block.toString('latin1', 257, 262) === 'ustar';
  const gnu = block.toString('latin1', 257, 265) === 'ustar  \0';
  if (ustar && !gnu) {
    const prefix = readString(block, 345, 155);
    if (prefix) path = `${prefix}/${path}`;
  }
  const type = block.toString('latin1', 156, 157);
  return { path, type, mode, size, linkpath: readString(block, 157, 100) };
}

/** Parses a pax extended header body into its records; a string result says what is wrong. */
export function decodePax(body: Buffer): Record<string, string> | string {
  const records: Record<string, string> = Object.create(null);
  let at = 0;
  while (at < body.length) {
    if (body[at] === 0) break;
    const space = body.indexOf(0x20, at);
    const len = space === -1 ? NaN : Number(body.toString('latin1', at, space));
    if (!Number.isSafeInteger(len) || len <= 0 || at + len > body.length || body[at + len - 1] !== 0x0a) {
      return 'a pax extended header has a malformed record';
    }
    const record = body.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) return 'a pax extended header has a record without "key="';
    records[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return records;
}
