/**
 * A second connection to a plugin, over node:http2 directly, for the host's
 * hottest stream (Hooks.RunHookBatchStream). grpc-js passes every message of
 * a stream through its call, interceptor, load-balancing and subchannel
 * layers each way. Skipping them (PluginHost's defaults.hookHttp2) took
 * 16-31% off a hook's p50 in bench/hooks.js on a busy 2-core machine, but
 * added 12-31% on a quiet one, for reasons not yet known: so it is an
 * option, off by default.
 * Here a message is what gRPC puts on the wire and no more: a POST to the
 * method's path with `content-type: application/grpc` and `te: trailers`,
 * each message a 5-byte prefix (compressed flag, big-endian length) and its
 * bytes, and the status in the trailers. The plugin's grpc-js server (or any
 * gRPC server) sees an ordinary call.
 *
 * It dials what the grpc-js channel dials (the handshake line's unix socket
 * or TCP address, with the same AutoMTLS certificates), opens the same
 * HTTP/2 window for what the plugin sends, and refuses messages over the same
 * size limit. Opening fails, without side effects, when the plugin cannot be
 * reached this way: its caller keeps the grpc-js channel then.
 */
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { TLS_SERVER_NAME } from './constants';
import type { Network } from './handshake';
import type { MutualTls } from './mtls';

/** Where and how the grpc-js channel to the plugin connects, and its limits. */
export interface Http2Target {
  network: Network;
  address: string;
  tls: MutualTls | null;
  /** As PluginClientOptions.flowControlWindowBytes: the window the plugin may fill. */
  windowBytes: number;
  /** Messages from the plugin over this size end the stream with RESOURCE_EXHAUSTED, as in grpc-js. */
  maxMessageBytes: number;
}

/** HTTP/2's initial window: a larger one is opened after the settings arrive. */
const DEFAULT_WINDOW_BYTES = 65_535;
const PREFIX_BYTES = 5;

export class Http2Connection {
  private streams = 0;

  private constructor(
    private readonly session: http2.ClientHttp2Session,
    private readonly maxMessageBytes: number,
  ) {
    // A stream in flight keeps the process alive, an idle connection does not (as a grpc-js channel).
    session.unref();
  }

  /** Connects; resolves once the plugin's HTTP/2 settings arrived, rejects on any error first or after `timeoutMs`. */
  static open(target: Http2Target, timeoutMs: number): Promise<Http2Connection> {
    return new Promise((resolve, reject) => {
      const socket = dial(target);
      const session = http2.connect(`${target.tls ? 'https' : 'http'}://${TLS_SERVER_NAME}`, {
        createConnection: () => socket,
        settings: { initialWindowSize: Math.max(target.windowBytes, DEFAULT_WINDOW_BYTES) },
        // As grpc-js: node's own bound on buffered session memory degrades badly when reached.
        maxSessionMemory: Number.MAX_SAFE_INTEGER,
      });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        session.destroy();
        // A peer that ended its side leaves ours open under a session that already closed.
        socket.destroy();
        reject(err);
      };
      const closed = (): void => fail(new Error('the plugin closed the connection before its HTTP/2 settings'));
      const timer = setTimeout(() => fail(new Error(`no HTTP/2 settings from the plugin within ${timeoutMs} ms`)), timeoutMs);
      session.once('error', fail);
      session.once('close', closed);
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        session.off('error', fail);
        session.off('close', closed);
        // Errors reach the streams on the session, which end with them.
        session.on('error', () => undefined);
        if (target.windowBytes > DEFAULT_WINDOW_BYTES) session.setLocalWindowSize(target.windowBytes);
        resolve(new Http2Connection(session, target.maxMessageBytes));
      });
    });
  }

  /** False once the connection closed or failed: open streams on the grpc-js channel then. */
  get usable(): boolean {
    return !this.session.closed && !this.session.destroyed;
  }

  /** A bidirectional call of `path` (e.g. "/plughost.v1.Hooks/RunHookBatchStream"), its messages read by `decode`. */
  stream<In>(path: string, decode: (bytes: Buffer) => In): Http2CallStream<In> {
    const stream = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    if (this.streams++ === 0) this.session.ref();
    stream.once('close', () => {
      if (--this.streams === 0) this.session.unref();
    });
    return new Http2CallStream(stream, decode, this.maxMessageBytes);
  }

  /** Takes no more streams and ends the connection once those open have ended (a half-closed one when the plugin ends its side). */
  close(): void {
    if (this.usable) this.session.close();
  }

  /** Ends the connection and every stream on it at once. */
  destroy(): void {
    this.session.destroy();
  }
}

function dial(target: Http2Target): net.Socket {
  const where = target.network === 'unix' ? { path: target.address } : hostPort(target.address);
  if (!target.tls) return net.connect(where);
  const { own, peerCertPem } = target.tls;
  return tls.connect({ ...where, ca: peerCertPem, cert: own.certPem, key: own.keyPem, servername: TLS_SERVER_NAME, ALPNProtocols: ['h2'] });
}

/** "127.0.0.1:1234" or "[::1]:1234" as net.connect options. */
function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(colon + 1)) };
}

/**
 * One call on an Http2Connection, shaped as the part of grpc-js's
 * ClientDuplexStream that CallStream uses: write() a message, 'data' per
 * message read, end() to half-close, cancel(), and one 'status' however the
 * call ends (after every message; never an 'error' event).
 */
export class Http2CallStream<In> extends EventEmitter {
  /** What arrived but is not a whole message yet. */
  private parts: Buffer[] = [];
  private have = 0;
  /** The length of the message being read, -1 while its prefix is. */
  private length = -1;
  private status: grpc.StatusObject | undefined;
  private ended = false;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly decode: (bytes: Buffer) => In,
    private readonly maxMessageBytes: number,
  ) {
    super();
    stream.on('response', (headers) => {
      const http = Number(headers[':status']);
      if (headers['grpc-status'] !== undefined) this.settle(headers);
      else if (http !== 200) this.fail(grpc.status.UNKNOWN, `the plugin answered HTTP status ${http}, not a gRPC call`);
    });
    stream.on('trailers', (trailers) => this.settle(trailers));
    stream.on('data', (chunk: Buffer) => this.read(chunk));
    stream.on('error', (err: Error) => this.fail(grpc.status.UNAVAILABLE, err.message));
    // Every message has been read: the call is over, whether or not this side has ended its own.
    stream.on('end', () => {
      // A stream cut under it (its session closed, a reset) ends too: 'close' tells why.
      if (!this.status && stream.destroyed) return;
      this.fail(grpc.status.INTERNAL, 'the plugin ended the stream without a gRPC status');
      this.finish();
    });
    stream.on('close', () => {
      this.fail(stream.rstCode === http2.constants.NGHTTP2_CANCEL ? grpc.status.CANCELLED : grpc.status.UNAVAILABLE, `the stream closed without a status (HTTP/2 code ${stream.rstCode})`);
      this.finish();
    });
  }

  /** Sends one message (the bytes of one encoded message); false when HTTP/2 buffers it for now. */
  write(message: Buffer): boolean {
    const framed = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
    framed[0] = 0;
    framed.writeUInt32BE(message.length, 1);
    message.copy(framed, PREFIX_BYTES);
    return this.stream.write(framed);
  }

  /** Half-closes: no more messages from this side; the server's answers and status still arrive. */
  end(): void {
    this.stream.end();
  }

  cancel(): void {
    this.fail(grpc.status.CANCELLED, 'Cancelled on client');
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private read(chunk: Buffer): void {
    if (this.ended || this.status) return;
    this.parts.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.length < 0) {
        if (this.have < PREFIX_BYTES) return;
        const prefix = this.take(PREFIX_BYTES);
        // The host sends no grpc-accept-encoding, so a server may not compress.
        if (prefix[0] !== 0) return this.abort(grpc.status.INTERNAL, 'the plugin sent a compressed message, which the host never asked for');
        this.length = prefix.readUInt32BE(1);
        if (this.length > this.maxMessageBytes) {
          return this.abort(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${this.length} vs. ${this.maxMessageBytes})`);
        }
      }
      if (this.have < this.length) return;
      const bytes = this.take(this.length);
      this.length = -1;
      let message: In;
      try {
        message = this.decode(bytes);
      } catch (err) {
        return this.abort(grpc.status.INTERNAL, `the plugin sent a message that does not parse: ${(err as Error).message}`);
      }
      this.emit('data', message);
      if (this.status) return;
    }
  }

  /** The next `n` bytes received, copied only when they span chunks. */
  private take(n: number): Buffer {
    this.have -= n;
    const first = this.parts[0];
    if (first.length >= n) {
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; ) {
      const part = this.parts[0];
      const k = Math.min(part.length, n - at);
      part.copy(out, at, 0, k);
      at += k;
      if (k === part.length) this.parts.shift();
      else this.parts[0] = part.subarray(k);
    }
    return out;
  }

  /** The call's status from trailers (or trailers-only headers); emitted when the stream closes. */
  private settle(headers: http2.IncomingHttpHeaders): void {
    const code = Number(headers['grpc-status']);
    this.fail(Number.isInteger(code) ? code : grpc.status.UNKNOWN, percentDecoded(String(headers['grpc-message'] ?? '')));
  }

  /** Records the call's status unless one is already known. */
  private fail(code: grpc.status, details: string): void {
    this.status ??= { code, details, metadata: new grpc.Metadata() };
  }

  /** Emits the status, once, and releases the stream (a server that answered with its status reads nothing more). */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.emit('status', this.status);
  }

  /** Ends the call from this side with `code`: what grpc-js does with a message it cannot take. */
  private abort(code: grpc.status, details: string): void {
    this.fail(code, details);
    this.parts = [];
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2); one that is not valid is kept as it came. */
function percentDecoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
