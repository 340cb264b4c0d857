/**
 * Plugin side of StreamStdio: after the handshake, whatever the plugin writes
 * through process.stdout/process.stderr is carried to the host over the
 * GRPCStdio stream instead of the pipes. Until the host subscribes, and while
 * the stream is backed up, output waits in a bounded buffer; past the bound
 * the oldest output is dropped and counted.
 */
import type * as grpc from '@grpc/grpc-js';
import type { StdioData } from '../gen/plugin/StdioData';

type Channel = 'STDOUT' | 'STDERR';
type Write = typeof process.stdout.write;

export const STDIO_BUFFER_BYTES = 1024 * 1024;

export class StdioCapture {
  private call: grpc.ServerWritableStream<unknown, StdioData> | undefined;
  private readonly pending: StdioData[] = [];
  private pendingBytes = 0;
  private blocked = false;
  /** Bytes dropped because the buffer was full. */
  dropped = 0;
  private originals: { stdout: Write; stderr: Write } | undefined;

  constructor(private readonly maxBytes = STDIO_BUFFER_BYTES) {}

  /** Routes process.stdout/stderr writes here from now on. */
  install(): void {
    if (this.originals) return;
    this.originals = { stdout: process.stdout.write, stderr: process.stderr.write };
    process.stdout.write = this.writer('STDOUT');
    process.stderr.write = this.writer('STDERR');
  }

  /** The StreamStdio handler: the host's call takes all buffered and future output. */
  serve(call: grpc.ServerWritableStream<unknown, StdioData>): void {
    this.call?.end();
    this.call = call;
    this.blocked = false;
    call.on('cancelled', () => {
      if (this.call === call) this.call = undefined;
    });
    call.on('error', () => undefined);
    this.flush();
  }

  end(): void {
    this.flush();
    this.call?.end();
    this.call = undefined;
  }

  private writer(channel: Channel): Write {
    return ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error) => void), cb?: (err?: Error) => void) => {
      const data = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk);
      this.enqueue({ channel, data });
      const done = typeof encoding === 'function' ? encoding : cb;
      if (done) process.nextTick(done);
      return true;
    }) as Write;
  }

  private enqueue(item: StdioData): void {
    const size = (item.data as Buffer).length;
    if (this.call && !this.blocked && this.pending.length === 0) {
      this.send(item);
      return;
    }
    this.pending.push(item);
    this.pendingBytes += size;
    while (this.pendingBytes > this.maxBytes && this.pending.length) {
      const old = this.pending.shift()!;
      const oldSize = (old.data as Buffer).length;
      this.pendingBytes -= oldSize;
      this.dropped += oldSize;
    }
  }

  private send(item: StdioData): void {
    const call = this.call!;
    if (!call.write(item)) {
      this.blocked = true;
      call.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    while (this.call && !this.blocked && this.pending.length) {
      const item = this.pending.shift()!;
      this.pendingBytes -= (item.data as Buffer).length;
      this.send(item);
    }
  }
}
