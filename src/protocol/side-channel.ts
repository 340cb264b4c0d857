/**
 * HTTP body side channels: a body too large for the gRPC stream to carry fast
 * travels as raw bytes over a one-use unix socket in the plugin's private
 * socket folder (PLUGIN_UNIX_SOCKET_DIR, 0700). Whoever sends the body listens
 * (ChannelListener) and names the socket in the frame that carries the head;
 * the other side connects and reads until EOF (ChannelReader). EOF alone is
 * not completion, since a crash closes the socket too: the sender's end frame
 * carries the byte count, and the body is complete only with both. Both the
 * host and the SDK use this file; docs/protocol.md has the wire rules.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MAX_UNIX_SOCKET_PATH_BYTES } from './constants';

/** What a plugin lists in Implemented.methods to take side channels (with ServeHTTPStream). */
export const SIDE_CHANNEL_CAPABILITY = 'HTTPSideChannel';
/** Bodies from this size go over a side channel unless the host option says otherwise. */
export const DEFAULT_SIDE_CHANNEL_MIN_BYTES = 1024 * 1024;
/** How long a listener waits for the other side to connect before the exchange fails. */
export const SIDE_CHANNEL_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Stream buffering on both ends of a channel socket. At Node's 16 KiB default a piped 64 KiB
 * chunk fills the buffer at once, so every chunk paused and resumed the source (the client's
 * connection) and the pipe ran in lockstep with the reader.
 */
const CHANNEL_HIGH_WATER_BYTES = 1024 * 1024;

/** A name the peer gave: a plain file name, so it cannot point outside the socket folder. */
const CHANNEL_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,39}$/;

/** A fresh socket name: 96 random bits, 17 bytes, inside the sun_path reserve makeSocketDir keeps. */
export function channelName(): string {
  return `b${crypto.randomBytes(12).toString('base64url')}`;
}

/** The socket path for a name the peer sent, or null when the name is not a plain file name or the path would not fit sun_path. */
export function channelPath(dir: string, name: string): string | null {
  if (!CHANNEL_NAME.test(name)) return null;
  const socketPath = path.join(dir, name);
  return Buffer.byteLength(socketPath) <= MAX_UNIX_SOCKET_PATH_BYTES ? socketPath : null;
}

/** The byte count of an end frame (uint64, read as a decimal string by the generated code). */
export function channelCount(value: string | number | undefined): number {
  return value === undefined || value === '' ? 0 : Number(value);
}

/**
 * The sending side's one-use socket: listens at once (the file exists when the
 * constructor returns, mode 0600), hands over the first connection and stops
 * listening (the file is removed), or fails after `timeoutMs`. close() undoes
 * everything on any path.
 */
export class ChannelListener {
  readonly name = channelName();
  private readonly server: net.Server;
  private readonly timer: NodeJS.Timeout;
  private socket: net.Socket | undefined;
  private listening = true;
  private settled = false;

  constructor(
    dir: string,
    timeoutMs: number,
    private readonly connected: (socket: net.Socket) => void,
    private readonly failed: (err: Error) => void,
  ) {
    const socketPath = path.join(dir, this.name);
    this.server = net.createServer({ highWaterMark: CHANNEL_HIGH_WATER_BYTES }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.shut(new Error(`side channel ${socketPath}: ${err.message}`)));
    this.server.listen(socketPath);
    try {
      fs.chmodSync(socketPath, 0o600);
    } catch {
      // The bind failed; its 'error' comes next turn and fails the channel.
    }
    this.timer = setTimeout(() => this.shut(new Error(`nobody connected to side channel ${this.name} within ${timeoutMs} ms`)), timeoutMs);
  }

  /**
   * Stops listening and destroys the connection, whatever state the channel is in; a channel
   * nobody connected to yet fails (so whoever waits for it stops waiting).
   */
  close(): void {
    this.shut(new Error(`side channel ${this.name} closed before anyone connected`));
    this.socket?.destroy();
  }

  private accept(socket: net.Socket): void {
    if (this.settled) return void socket.destroy();
    this.settled = true;
    this.socket = socket;
    this.stopListening();
    this.connected(socket);
  }

  private shut(err: Error): void {
    const pending = !this.settled;
    this.settled = true;
    this.stopListening();
    if (pending) this.failed(err);
  }

  private stopListening(): void {
    clearTimeout(this.timer);
    if (!this.listening) return;
    this.listening = false;
    // Closing a path-bound server unlinks its file.
    this.server.close();
  }
}

/**
 * The receiving side: connects, hands every chunk to `data`, and calls `done`
 * once: with null when the socket reached EOF and the sender's count (expect())
 * matches what came, else with why the body is truncated. pause() and resume()
 * are the backpressure: the socket's own window holds the sender back.
 */
export class ChannelReader {
  private readonly socket: net.Socket;
  private received = 0;
  private expected = -1;
  private eof = false;
  private over = false;

  constructor(
    socketPath: string,
    private readonly data: (chunk: Buffer) => void,
    private readonly done: (err: Error | null) => void,
  ) {
    // Node takes highWaterMark on a connection too (its types miss it).
    this.socket = net.createConnection({ path: socketPath, highWaterMark: CHANNEL_HIGH_WATER_BYTES } as net.IpcNetConnectOpts);
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.expected >= 0 && this.received > this.expected) return this.finish(this.mismatch());
      this.data(chunk);
    });
    this.socket.on('end', () => {
      this.eof = true;
      this.check();
    });
    this.socket.on('error', (err) => this.finish(new Error(`side channel failed after ${this.received} bytes: ${err.message}`)));
    this.socket.on('close', () => {
      if (!this.eof) this.finish(new Error(`side channel closed after ${this.received} bytes, before its end`));
    });
  }

  /** The sender's end frame: it wrote `count` bytes. */
  expect(count: number): void {
    this.expected = count;
    if (this.received > count) return this.finish(this.mismatch());
    this.check();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Gives up on the body (the exchange is over); `done` is not called. */
  destroy(): void {
    this.over = true;
    this.socket.destroy();
  }

  private check(): void {
    if (!this.eof || this.expected < 0) return;
    this.finish(this.received === this.expected ? null : this.mismatch());
  }

  private mismatch(): Error {
    return new Error(`truncated body: the side channel carried ${this.received} bytes, the sender counted ${this.expected}`);
  }

  private finish(err: Error | null): void {
    if (this.over) return;
    this.over = true;
    if (err) this.socket.destroy();
    this.done(err);
  }
}

/**
 * Writes a body to a connected channel socket with backpressure, counting the
 * bytes: write() returns a promise to wait on while the socket's buffer is full,
 * and rejects once the socket is gone.
 */
export class ChannelWriter {
  written = 0;
  private gone: Error | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.on('error', (err) => {
      this.gone ??= err;
    });
    socket.on('close', () => {
      this.gone ??= new Error('the side channel closed');
    });
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.gone) return Promise.reject(this.gone);
    this.written += chunk.byteLength;
    if (this.socket.write(chunk)) return undefined;
    return new Promise((resolve, reject) => {
      const settle = () => {
        this.socket.off('drain', settle);
        this.socket.off('close', settle);
        if (this.gone) reject(this.gone);
        else resolve();
      };
      this.socket.on('drain', settle);
      this.socket.on('close', settle);
    });
  }

  /** Half-closes the socket (the reader sees EOF); returns the count for the end frame. */
  end(): number {
    this.socket.end();
    return this.written;
  }
}
