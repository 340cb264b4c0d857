import { BLOCK, TYPE, decodeHeader, decodePax, isZeroBlock } from './tar-format';

/** Pax and GNU long-name bodies are paths and a few numbers; more is an attack on memory. */
const MAX_META_BYTES = 64 * 1024;
/** A real entry has at most a couple of extended headers before it; thousands are a CPU attack. */
const MAX_META_RUN = 16;

/** A tar entry after pax and GNU long-name records are applied. */
export interface TarEntry {
  path: string;
  type: string;
  mode: number;
  size: number;
  linkpath: string;
}

/** Thrown for a structurally broken archive; the caller turns it into a catalog error. */
export class TarFormatError extends Error {}

/**
 * Reads tar entries from a stream of chunks, pulling only as much as the caller consumes, so the
 * producer (a gunzip stream) inflates no further ahead than one chunk. Call `next()` for each
 * entry and optionally iterate `body()` before the next call; an unread body is skipped.
 */
export class TarReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the current entry left to skip, padding included. */
  private remaining = 0;
  /** Bytes of the current entry's content not yet handed out by `body()`. */
  private bodyLeft = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  async next(): Promise<TarEntry | null> {
    await this.skip(this.remaining);
    this.remaining = 0;
    const meta: { path?: string; linkpath?: string; size?: number } = {};
    for (let metaRun = 0; ; metaRun++) {
      if (metaRun > MAX_META_RUN) throw new TarFormatError(`more than ${MAX_META_RUN} extended headers in a row`);
      const block = await this.read(BLOCK);
      if (block === null || isZeroBlock(block)) {
        if (block === null && Object.keys(meta).length) throw new TarFormatError('the archive ends after an extended header, before its entry');
        this.done = block !== null;
        return null;
      }
      const header = decodeHeader(block);
      if (typeof header === 'string') throw new TarFormatError(header);
      const padded = Math.ceil(header.size / BLOCK) * BLOCK;
      if (isMeta(header.type)) {
        if (header.size > MAX_META_BYTES) throw new TarFormatError(`an extended header of ${header.size} bytes is over the ${MAX_META_BYTES}-byte limit`);
        const body = await this.read(padded);
        if (body === null) throw new TarFormatError('the archive ends inside an extended header');
        applyMeta(header.type, body.subarray(0, header.size), meta);
        continue;
      }
      const entry: TarEntry = {
        path: meta.path ?? header.path,
        type: header.type,
        mode: header.mode,
        size: meta.size ?? header.size,
        linkpath: meta.linkpath ?? header.linkpath,
      };
      this.remaining = Math.ceil(entry.size / BLOCK) * BLOCK;
      this.bodyLeft = entry.size;
      return entry;
    }
  }

  /** The current entry's content, chunk by chunk, without copying. */
  async *body(): AsyncGenerator<Buffer> {
    while (this.bodyLeft > 0) {
      if (this.buffered === 0 && !(await this.pull())) throw new TarFormatError('the archive ends inside a file');
      const head = this.chunks[0];
      const n = Math.min(head.length, this.bodyLeft);
      const piece = head.subarray(0, n);
      this.consume(n);
      this.bodyLeft -= n;
      this.remaining -= n;
      yield piece;
    }
  }

  /** Whether the end-of-archive marker (a zero block) was seen, rather than the stream just stopping. */
  get ended(): boolean {
    return this.done;
  }

  private async pull(): Promise<boolean> {
    const { value, done } = await this.source.next();
    if (done) return false;
    if (value.length) {
      this.chunks.push(value);
      this.buffered += value.length;
    }
    return true;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const head = this.chunks[0];
      if (head.length <= n) {
        this.chunks.shift();
        n -= head.length;
      } else {
        this.chunks[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  private async read(n: number): Promise<Buffer | null> {
    while (this.buffered < n) if (!(await this.pull())) return null;
    const out = this.chunks.length === 1 || this.chunks[0].length >= n ? this.chunks[0].subarray(0, n) : Buffer.concat(this.chunks).subarray(0, n);
    const copy = Buffer.from(out);
    this.consume(n);
    return copy;
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buffered === 0 && !(await this.pull())) throw new TarFormatError('the archive ends inside a file');
      const step = Math.min(n, this.buffered);
      this.consume(step);
      n -= step;
    }
  }
}

function isMeta(type: string): boolean {
  return type === TYPE.paxHeader || type === TYPE.paxGlobal || type === TYPE.gnuLongName || type === TYPE.gnuLongLink;
}

/** Global pax headers are read and ignored: a bundle's entries must each say what they are. */
function applyMeta(type: string, body: Buffer, meta: { path?: string; linkpath?: string; size?: number }): void {
  if (type === TYPE.gnuLongName) meta.path = trimNul(body);
  else if (type === TYPE.gnuLongLink) meta.linkpath = trimNul(body);
  else if (type === TYPE.paxHeader) {
    const records = decodePax(body);
    if (typeof records === 'string') throw new TarFormatError(records);
    if (records.path !== undefined) meta.path = records.path;
    if (records.linkpath !== undefined) meta.linkpath = records.linkpath;
    if (records.size !== undefined) {
      if (!/^\d{1,15}$/.test(records.size)) throw new TarFormatError(`a pax header has the size ${JSON.stringify(records.size)}`);
      meta.size = Number(records.size);
    }
  }
}

function trimNul(body: Buffer): string {
  const end = body.indexOf(0);
  return body.toString('utf8', 0, end === -1 ? body.length : end);
}
