/**
 * PluginClient: the host side of the protocol for one plugin process. It
 * launches the plugin, reads and checks its handshake line, connects over unix
 * or tcp (plaintext or AutoMTLS), opens the broker and stdio streams, and kills
 * the plugin's whole process group when done. It holds no policy: restarts,
 * health intervals and hook semantics belong to the runtime.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Errors } from '../errors';
import type { StdioData__Output } from '../gen/plugin/StdioData';
import { GrpcBroker } from './broker';
import {
  DEFAULT_APP_VERSIONS,
  DEFAULT_HANDSHAKE,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_PORT,
  DEFAULT_MIN_PORT,
  DEFAULT_START_TIMEOUT_MS,
  ENV,
  HEALTH_SERVICE_NAME,
  MAX_UNIX_SOCKET_PATH_BYTES,
  type Handshake,
} from './constants';
import { trackPlugin } from './exit-cleanup';
import { parseHandshakeLine, type HandshakeLine, type Network } from './handshake';
import { Http2Connection } from './http2-connection';
import { channelWindowOptions } from './http2-window';
import { FLOW_CONTROL_WINDOW_ENV, MAX_MESSAGE_BYTES_ENV, messageSizeOptions, resolveFlowControlWindow, resolveMaxMessageBytes } from './limits';
import { dialTarget } from './listen';
import { LineSplitter, parseLogLine, type LogSource, type PluginLogRecord } from './log-lines';
import { channelCredentials, channelOptions, derToPem, generateIdentity, type MutualTls } from './mtls';
import { DEFAULT_INHERITED_ENV, INSTANCE_ENV, exitPromise, killPluginTree, launch, pollExit, raceTimeout, verifyChecksum, type ExitInfo } from './process';
import { standardServices } from './proto';
import { StderrTail, waitForHandshakeLine } from './startup';

export type { ExitInfo };

export interface PluginClientOptions {
  /** The executable, and its arguments, working folder and extra environment. */
  cmd: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Host variables passed through: a list of names, `true` for all, `false` for none. Default: a short safe list. */
  inheritEnv?: readonly string[] | boolean;
  handshake?: Handshake;
  /** App protocol versions this host speaks, offered in PLUGIN_PROTOCOL_VERSIONS. Default [1]. */
  versions?: readonly number[];
  startTimeoutMs?: number;
  /** Time between Controller.Shutdown and SIGKILL of the process group. Default 2 s. */
  killGraceMs?: number;
  autoMTLS?: boolean;
  /** Ask a plughost plugin to listen on TCP instead of a unix socket. */
  network?: Network;
  minPort?: number;
  maxPort?: number;
  /** Parent of the private 0700 socket folder. Default: the OS temp dir. */
  socketDirParent?: string;
  /**
   * Starts the plugin's instance marker (PLUGHOST_INSTANCE), so that a later
   * run of the same host can find and kill what this one's plugins left behind.
   */
  instancePrefix?: string;
  /** Expected SHA-256 (hex) of `cmd`, checked before launch. */
  checksum?: string;
  /** Receives every log record of the plugin; default: the host's pino logger. */
  onLog?: (record: PluginLogRecord) => void;
  maxLineBytes?: number;
  brokerDialTimeoutMs?: number;
  /**
   * Largest gRPC message either side sends or accepts, on the plugin's connection and every broker
   * connection; passed to the plugin as PLUGHOST_MAX_MESSAGE_BYTES. Default 64 MiB (see limits.ts).
   */
  maxMessageBytes?: number;
  /**
   * HTTP/2 flow-control window, per stream and per connection, on both ends of the plugin's
   * connection; passed to the plugin as PLUGHOST_FLOW_CONTROL_WINDOW_BYTES, which also sizes the
   * credit of each ServeHTTPStream exchange. Default 8 MiB (see limits.ts).
   */
  flowControlWindowBytes?: number;
}

/** What a debugger needs to attach to a plugin started by hand. JSON-serializable. */
export interface ReattachConfig {
  protocol: 'grpc';
  protocolVersion: number;
  network: Network;
  address: string;
  pid: number;
}

export interface ReattachOptions {
  onLog?: (record: PluginLogRecord) => void;
  killGraceMs?: number;
  connectTimeoutMs?: number;
  brokerDialTimeoutMs?: number;
  /** As PluginClientOptions.maxMessageBytes; the plugin must have been started with the same value. */
  maxMessageBytes?: number;
  /** As PluginClientOptions.flowControlWindowBytes, for this side of the connection. */
  flowControlWindowBytes?: number;
}

type ServiceCtor<T extends grpc.Client> = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => T;

let defaultLogger: pino.Logger | undefined;
function logToPino(record: PluginLogRecord): void {
  defaultLogger ??= pino({ name: 'plughost' });
  defaultLogger[record.level]({ ...record.fields, source: record.source, truncated: record.truncated }, record.message);
}

interface Internals {
  pid: number;
  /** The INSTANCE_ENV value of a launched plugin; null for a reattached one. */
  marker: string | null;
  line: HandshakeLine;
  tls: MutualTls | null;
  child: ChildProcess | null;
  socketDir: string | null;
  exited: Promise<ExitInfo>;
  stopExitPoll?: () => void;
  onLog: (record: PluginLogRecord) => void;
  killGraceMs: number;
  brokerDialTimeoutMs?: number;
  listenDir: string;
  maxMessageBytes: number;
  flowControlWindowBytes: number;
}

export class PluginClient {
  readonly pid: number;
  /** The app protocol version both sides agreed on. */
  readonly protocolVersion: number;
  readonly network: Network;
  readonly address: string;
  /** The raw connection: build a client of any service on it with `client()`. */
  readonly channel: grpc.Channel;
  readonly broker: GrpcBroker;
  /** Resolves once the plugin process is gone, with its exit code or signal. */
  readonly exited: Promise<ExitInfo>;

  private readonly credentials: grpc.ChannelCredentials;
  private readonly clients: grpc.Client[] = [];
  private readonly http2: Http2Connection[] = [];
  /** Set once closeConnections() ran: a connection that opens after it is closed at once. */
  private closed = false;
  private stdioCall: grpc.ClientReadableStream<StdioData__Output> | undefined;
  private exitInfo: ExitInfo | null = null;
  private killing: Promise<ExitInfo> | undefined;

  private constructor(private readonly internals: Internals) {
    this.pid = internals.pid;
    this.protocolVersion = internals.line.appVersion;
    this.network = internals.line.network;
    this.address = internals.line.address;
    this.credentials = channelCredentials(internals.tls);
    this.channel = new grpc.Channel(dialTarget(this.network, this.address), this.credentials, {
      ...channelOptions(internals.tls),
      ...messageSizeOptions(internals.maxMessageBytes),
      ...channelWindowOptions(internals.flowControlWindowBytes),
    });
    this.broker = new GrpcBroker({
      tls: internals.tls,
      listen: this.network === 'unix' ? { network: 'unix', dir: internals.listenDir } : { network: 'tcp' },
      socketPrefix: 'h',
      dialTimeoutMs: internals.brokerDialTimeoutMs,
      maxMessageBytes: internals.maxMessageBytes,
    });
    this.exited = internals.exited.then((info) => {
      this.exitInfo = info;
      void this.broker.close(`plugin exited (${info.signal ?? `code ${info.code}`})`);
      return info;
    });
  }

  /** Launches the plugin and returns once it is connected, or throws a PlughostError that says why not. */
  static async start(options: PluginClientOptions): Promise<PluginClient> {
    const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const deadline = Date.now() + startTimeoutMs;
    const versions = options.versions?.length ? [...options.versions] : [...DEFAULT_APP_VERSIONS];
    const onLog = options.onLog ?? logToPino;
    const maxMessageBytes = resolveMaxMessageBytes(options.maxMessageBytes);
    const flowControlWindowBytes = resolveFlowControlWindow(options.flowControlWindowBytes);
    if (options.checksum) await verifyChecksum(options.cmd, options.checksum);

    const socketDir = makeSocketDir(options.socketDirParent ?? os.tmpdir());
    const own = options.autoMTLS ? generateIdentity() : null;
    const handshake = options.handshake ?? DEFAULT_HANDSHAKE;
    const random = crypto.randomBytes(12).toString('hex');
    const marker = options.instancePrefix ? `${options.instancePrefix}-${random}` : random;
    const env: Record<string, string> = {
      ...inheritedEnv(options.inheritEnv),
      ...options.env,
      [handshake.magicCookieKey]: handshake.magicCookieValue,
      [ENV.protocolVersions]: versions.join(','),
      [ENV.minPort]: String(options.minPort ?? DEFAULT_MIN_PORT),
      [ENV.maxPort]: String(options.maxPort ?? DEFAULT_MAX_PORT),
      [ENV.unixSocketDir]: socketDir,
      [INSTANCE_ENV]: marker,
      [MAX_MESSAGE_BYTES_ENV]: String(maxMessageBytes),
      [FLOW_CONTROL_WINDOW_ENV]: String(flowControlWindowBytes),
    };
    if (own) env[ENV.clientCert] = own.certPem;
    if (options.network === 'tcp') env[ENV.network] = 'tcp';

    let child: ChildProcess;
    try {
      child = await launch({ cmd: options.cmd, args: options.args ?? [], cwd: options.cwd, env });
    } catch (err) {
      fs.rmSync(socketDir, { recursive: true, force: true });
      throw err;
    }
    const pid = child.pid!;
    const exited = exitPromise(child);
    // Until it is gone, this process's exit kills it; once it is gone, what it started and its socket folder go too.
    const tracked = trackPlugin({ child, marker, socketDir });
    void exited.then(() => tracked.release());
    const tail = new StderrTail();
    const stderr = new LineSplitter((line, truncated) => {
      tail.push(line);
      emit(onLog, line, 'stderr', truncated);
    }, options.maxLineBytes);
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stderr!.on('end', () => stderr.end());

    const fail = async (err: unknown): Promise<never> => {
      killPluginTree(child, marker);
      await exited;
      fs.rmSync(socketDir, { recursive: true, force: true });
      throw err;
    };
    let line: HandshakeLine;
    try {
      const raw = await waitForHandshakeLine(child, exited, tail, startTimeoutMs, (rest, truncated) =>
        emit(onLog, rest, 'stdout', truncated), options.maxLineBytes, handshake.magicCookieKey);
      line = parseHandshakeLine(raw);
      if (!versions.includes(line.appVersion)) throw Errors.HANDSHAKE_VERSION(raw, line.appVersion, versions);
      if (line.multiplex) throw Errors.HANDSHAKE_BAD_LINE(raw, 'the plugin asks for gRPC multiplexing, which this host did not offer');
      if (own && !line.serverCertDer) throw Errors.HANDSHAKE_BAD_LINE(raw, 'AutoMTLS was requested but the plugin sent no certificate');
      if (!own && line.serverCertDer) throw Errors.HANDSHAKE_BAD_LINE(raw, 'the plugin sent a certificate but AutoMTLS was not requested');
    } catch (err) {
      return fail(err);
    }
    const tls = own && line.serverCertDer ? { own, peerCertPem: derToPem(line.serverCertDer) } : null;
    const client = new PluginClient({
      pid,
      marker,
      line,
      tls,
      child,
      socketDir,
      exited,
      onLog,
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      brokerDialTimeoutMs: options.brokerDialTimeoutMs,
      listenDir: socketDir,
      maxMessageBytes,
      flowControlWindowBytes,
    });
    try {
      await client.connect(deadline);
    } catch (err) {
      await client.kill();
      throw err;
    }
    return client;
  }

  /** Connects to a plugin that is already running (plaintext only), e.g. one started by hand under a debugger. */
  static async reattach(config: ReattachConfig, options: ReattachOptions = {}): Promise<PluginClient> {
    checkReattachConfig(config);
    const poll = pollExit(config.pid);
    const line: HandshakeLine = {
      coreVersion: 1,
      appVersion: config.protocolVersion,
      network: config.network,
      address: config.address,
      protocol: 'grpc',
      serverCertDer: null,
      multiplex: false,
    };
    const client = new PluginClient({
      pid: config.pid,
      marker: null,
      line,
      tls: null,
      child: null,
      socketDir: null,
      exited: poll.promise,
      stopExitPoll: poll.stop,
      onLog: options.onLog ?? logToPino,
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      brokerDialTimeoutMs: options.brokerDialTimeoutMs,
      listenDir: config.network === 'unix' ? path.dirname(config.address) : os.tmpdir(),
      maxMessageBytes: resolveMaxMessageBytes(options.maxMessageBytes),
      flowControlWindowBytes: resolveFlowControlWindow(options.flowControlWindowBytes),
    });
    try {
      await client.connect(Date.now() + (options.connectTimeoutMs ?? 5_000));
    } catch (err) {
      client.closeConnections();
      poll.stop();
      throw Errors.REATTACH_UNREACHABLE(`${config.network}:${config.address}`, (err as Error).message);
    }
    return client;
  }

  /** A client of any gRPC service the plugin serves, over the plugin's connection. */
  client<T extends grpc.Client>(ctor: ServiceCtor<T>): T {
    const c = new ctor('plugin', this.credentials, { channelOverride: this.channel });
    this.clients.push(c);
    return c;
  }

  /**
   * A connection to the plugin over node:http2 directly, beside the grpc-js
   * channel (same address, certificates, window and message limit), for the
   * streams that gain from skipping grpc-js (see http2-connection.ts); closed
   * with the plugin's other connections.
   */
  async openHttp2(timeoutMs: number): Promise<Http2Connection> {
    const { tls, flowControlWindowBytes, maxMessageBytes } = this.internals;
    const conn = await Http2Connection.open({ network: this.network, address: this.address, tls, windowBytes: flowControlWindowBytes, maxMessageBytes }, timeoutMs);
    if (this.closed) conn.destroy();
    else this.http2.push(conn);
    return conn;
  }

  /** Health.Check for service "plugin"; throws unless it answers SERVING. */
  async ping(timeoutMs = 5_000): Promise<void> {
    const health = this.client(standardServices().health);
    const reply = await new Promise<{ status: string }>((resolve, reject) =>
      health.Check({ service: HEALTH_SERVICE_NAME }, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as { status: string }),
      ),
    );
    if (reply.status !== 'SERVING') throw Errors.PLUGIN_UNHEALTHY(reply.status);
  }

  /** The config that reattaches to this plugin from another host process. */
  reattachConfig(): ReattachConfig {
    return { protocol: 'grpc', protocolVersion: this.protocolVersion, network: this.network, address: this.address, pid: this.pid };
  }

  /** The plugin's private socket folder (PLUGIN_UNIX_SOCKET_DIR); null for a reattached plugin. */
  get socketDir(): string | null {
    return this.internals.socketDir;
  }

  /** The exit status once the process is gone, else null. */
  get exitStatus(): ExitInfo | null {
    return this.exitInfo;
  }

  /**
   * Controller.Shutdown, then up to the grace period for a clean exit, then
   * SIGKILL of the plugin's process group and (on Linux) of every process it
   * started that escaped the group; removes the socket folder. Safe to call
   * more than once.
   */
  kill(): Promise<ExitInfo> {
    this.killing ??= this.shutdownAndKill();
    return this.killing;
  }

  private async shutdownAndKill(): Promise<ExitInfo> {
    const { child, killGraceMs, socketDir, marker } = this.internals;
    if (!this.exitInfo) {
      const controller = this.client(standardServices().controller);
      const deadline = Date.now() + killGraceMs;
      // An UNAVAILABLE or cancelled reply is the plugin exiting as asked.
      await new Promise<void>((resolve) => controller.Shutdown({}, { deadline }, () => resolve()));
      await raceTimeout(this.exited, Math.max(0, deadline - Date.now()));
    }
    if (child) killPluginTree(child, marker);
    else if (!this.exitInfo) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    const info = await this.exited;
    this.internals.stopExitPoll?.();
    this.closeConnections();
    await this.broker.close('plugin killed');
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    child?.stdin?.destroy();
    if (socketDir) fs.rmSync(socketDir, { recursive: true, force: true });
    return info;
  }

  private closeConnections(): void {
    this.closed = true;
    for (const conn of this.http2.splice(0)) conn.destroy();
    this.stdioCall?.cancel();
    for (const c of this.clients.splice(0)) c.close();
    this.channel.close();
  }

  private async connect(deadline: number): Promise<void> {
    const services = standardServices();
    const brokerClient = this.client(services.broker);
    await new Promise<void>((resolve, reject) =>
      brokerClient.waitForReady(deadline, (err) => (err ? reject(err) : resolve())),
    );
    const stream = brokerClient.StartStream();
    stream.on('error', () => undefined);
    this.broker.attach(stream);
    this.openStdio(services.stdio);
  }

  private openStdio(ctor: ReturnType<typeof standardServices>['stdio']): void {
    const onLog = this.internals.onLog;
    const splitters = {
      STDOUT: new LineSplitter((l, t) => emit(onLog, l, 'stdio:stdout', t)),
      STDERR: new LineSplitter((l, t) => emit(onLog, l, 'stdio:stderr', t)),
    };
    const call = this.client(ctor).StreamStdio({});
    this.stdioCall = call;
    call.on('data', (data: StdioData__Output) => {
      if (data.channel === 'STDOUT' || data.channel === 'STDERR') splitters[data.channel].push(data.data);
    });
    // UNIMPLEMENTED (go-plugin before 1.4), CANCELLED (our own close) and UNAVAILABLE (exit) all just end the stream.
    call.on('error', () => undefined);
    call.on('end', () => {
      splitters.STDOUT.end();
      splitters.STDERR.end();
    });
  }
}

function emit(onLog: (r: PluginLogRecord) => void, line: string, source: LogSource, truncated: boolean): void {
  const record = parseLogLine(line, source);
  if (truncated) record.truncated = true;
  onLog(record);
}

/** A private 0700 folder for the plugin's sockets, short enough for sun_path. */
function makeSocketDir(parent: string): string {
  const dir = fs.mkdtempSync(path.join(parent, 'ph-'));
  fs.chmodSync(dir, 0o700);
  // Room for the longest name either side puts here ("p<pid>-b<id>.sock").
  if (Buffer.byteLength(dir) + 24 > MAX_UNIX_SOCKET_PATH_BYTES) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw Errors.SOCKET_PATH_TOO_LONG(path.join(dir, 'p0000000-b0000000.sock'), MAX_UNIX_SOCKET_PATH_BYTES);
  }
  return dir;
}

function inheritedEnv(inherit: readonly string[] | boolean | undefined): Record<string, string> {
  if (inherit === false) return {};
  const names = inherit === true ? Object.keys(process.env) : (inherit ?? DEFAULT_INHERITED_ENV);
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function checkReattachConfig(config: ReattachConfig): void {
  const c = config as unknown as Record<string, unknown>;
  if (!c || typeof c !== 'object') throw Errors.REATTACH_CONFIG('(config)', 'an object');
  if (c.protocol !== 'grpc') throw Errors.REATTACH_CONFIG('protocol', '"grpc"');
  if (!Number.isInteger(c.protocolVersion)) throw Errors.REATTACH_CONFIG('protocolVersion', 'an integer');
  if (c.network !== 'unix' && c.network !== 'tcp') throw Errors.REATTACH_CONFIG('network', '"unix" or "tcp"');
  if (typeof c.address !== 'string' || c.address === '') throw Errors.REATTACH_CONFIG('address', 'a socket path or host:port');
  if (!Number.isInteger(c.pid) || (c.pid as number) <= 0) throw Errors.REATTACH_CONFIG('pid', 'a positive integer');
}

