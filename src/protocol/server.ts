/**
 * servePlugin: the plugin side of the protocol. Checks the magic cookie, picks
 * the app protocol version, listens (unix socket or loopback TCP, AutoMTLS
 * when the host sent its certificate), serves the four standard services plus
 * the caller's, prints the handshake line, and exits 0 after Shutdown.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { PlughostError } from '../errors';
import { Errors } from '../errors';
import type { HealthCheckRequest__Output } from '../gen/grpc/health/v1/HealthCheckRequest';
import type { HealthCheckResponse } from '../gen/grpc/health/v1/HealthCheckResponse';
import { GrpcBroker, type BrokerStream, type ServiceRegistration } from './broker';
import { DEFAULT_APP_VERSIONS, DEFAULT_HANDSHAKE, DEFAULT_KILL_GRACE_MS, ENV, HEALTH_SERVICE_NAME, NOT_A_PLUGIN_MESSAGE, type Handshake } from './constants';
import { chooseAppVersion, formatHandshakeLine, parseVersionList, type Network } from './handshake';
import { flowControlWindowFromEnv, maxMessageBytesFromEnv, messageSizeOptions } from './limits';
import { bindServer, shutdownServer, type BoundAddress, type ListenSpec } from './listen';
import { generateIdentity, serverCredentials, type MutualTls } from './mtls';
import { createPluginLogger, type PluginLogger } from './plugin-log';
import { standardServices } from './proto';
import { StdioCapture } from './stdio-capture';

export interface ServeContext {
  /** The app protocol version agreed with the host. */
  protocolVersion: number;
  /** This plugin's end of the broker: dial the host's services, or offer new ones. */
  broker: GrpcBroker;
  /** Structured logs to the host (hclog JSON on the real stderr). */
  log: PluginLogger;
  /** The gRPC message size limit the host chose (PLUGHOST_MAX_MESSAGE_BYTES), applied to every connection. */
  maxMessageBytes: number;
  /** The flow-control window the host chose (PLUGHOST_FLOW_CONTROL_WINDOW_BYTES): the credit of each ServeHTTPStream exchange's request body. */
  flowControlWindowBytes: number;
  /** The host's private socket folder for this plugin (PLUGIN_UNIX_SOCKET_DIR), where HTTP side channels live; null when the host gave none. */
  socketDir: string | null;
}

export interface ServePluginOptions {
  handshake?: Handshake;
  /** App protocol versions this plugin speaks. Default [1]. */
  versions?: readonly number[];
  /** The plugin's own services, chosen once the version is known. */
  services?: ServiceRegistration[] | ((ctx: ServeContext) => ServiceRegistration[]);
  /** Overrides the host's choice (PLUGHOST_PLUGIN_NETWORK); default unix. */
  network?: Network;
  /** Bound on a graceful stop after Shutdown before the server is forced down. Default 2 s. */
  shutdownGraceMs?: number;
  /** Runs on Shutdown, before the server stops; bounded by the grace period. */
  onShutdown?: () => void | Promise<void>;
  /** Carry process.stdout/stderr writes over StreamStdio after the handshake. Default true. */
  captureStdio?: boolean;
}

export interface ServedPlugin extends ServeContext {
  readonly address: BoundAddress;
  /** Stops serving and exits the process with code 0. */
  shutdown(): Promise<void>;
}

/** How often a plugin checks that its host is still its parent. */
const PARENT_WATCH_MS = 1_000;

/** Serves a plugin in this process. On a wrong cookie or a setup failure, prints why and exits 1. */
export async function servePlugin(options: ServePluginOptions = {}): Promise<ServedPlugin> {
  const handshake = options.handshake ?? DEFAULT_HANDSHAKE;
  const realStderr = process.stderr.write.bind(process.stderr);
  const realStdout = process.stdout.write.bind(process.stdout);
  if (process.env[handshake.magicCookieKey] !== handshake.magicCookieValue) {
    realStderr(NOT_A_PLUGIN_MESSAGE);
    process.exit(1);
  }
  const log = createPluginLogger((line) => realStderr(line));
  try {
    return await serve(options, handshake, log, realStdout);
  } catch (err) {
    const message = err instanceof PlughostError ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
    log.error('plugin failed to start', { error: message });
    realStderr(`plugin failed to start: ${message}\n`);
    process.exit(1);
  }
}

async function serve(
  options: ServePluginOptions,
  handshake: Handshake,
  log: PluginLogger,
  realStdout: (line: string) => boolean,
): Promise<ServedPlugin> {
  void handshake;
  const supported = options.versions?.length ? options.versions : DEFAULT_APP_VERSIONS;
  const protocolVersion = chooseAppVersion(parseVersionList(process.env[ENV.protocolVersions]), supported);
  const tls = autoMtlsFromEnv();
  const network: Network = options.network ?? (process.env[ENV.network] === 'tcp' ? 'tcp' : 'unix');
  const { spec, ownDir } = listenSpec(network);
  const graceMs = options.shutdownGraceMs ?? DEFAULT_KILL_GRACE_MS;
  // The host's limit, so that both ends of every connection refuse the same sizes.
  const maxMessageBytes = maxMessageBytesFromEnv();
  const flowControlWindowBytes = flowControlWindowFromEnv();

  const broker = new GrpcBroker({ tls, listen: spec, socketPrefix: `p${process.pid}-b`, maxMessageBytes });
  const ctx: ServeContext = { protocolVersion, broker, log, maxMessageBytes, flowControlWindowBytes, socketDir: process.env[ENV.unixSocketDir] || null };
  const stdio = new StdioCapture();
  const server = new grpc.Server(messageSizeOptions(maxMessageBytes));
  const std = standardServices();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const forced = setTimeout(() => process.exit(0), graceMs + 500);
      try {
        if (options.onShutdown) await Promise.race([Promise.resolve(options.onShutdown()), delay(graceMs)]);
      } catch (err) {
        log.error('onShutdown failed', { error: (err as Error).message });
      }
      stdio.end();
      await broker.close('plugin shutting down');
      await shutdownServer(server, graceMs);
      if (ownDir) fs.rmSync(ownDir, { recursive: true, force: true });
      clearTimeout(forced);
      process.exit(0);
    })();
    return stopping;
  };

  server.addService(std.health.service, {
    Check: (call: grpc.ServerUnaryCall<HealthCheckRequest__Output, HealthCheckResponse>, cb: grpc.sendUnaryData<HealthCheckResponse>) => {
      const name = call.request.service;
      if (name === '' || name === HEALTH_SERVICE_NAME) cb(null, { status: 'SERVING' });
      else cb({ code: grpc.status.NOT_FOUND, details: `unknown health service ${JSON.stringify(name)}; this plugin reports "${HEALTH_SERVICE_NAME}"` });
    },
    Watch: (call: grpc.ServerWritableStream<HealthCheckRequest__Output, HealthCheckResponse>) => {
      call.write({ status: 'SERVING' });
    },
  });
  server.addService(std.broker.service, {
    StartStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => broker.attach(call as unknown as BrokerStream),
  });
  server.addService(std.controller.service, {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<Record<string, never>>) => {
      cb(null, {});
      setImmediate(() => void stop());
    },
  });
  server.addService(std.stdio.service, {
    StreamStdio: (call: grpc.ServerWritableStream<unknown, never>) => stdio.serve(call as never),
  });
  const services = typeof options.services === 'function' ? options.services(ctx) : options.services ?? [];
  for (const s of services) server.addService(s.definition, s.implementation);

  const address = await bindServer(server, serverCredentials(tls), spec, `p${process.pid}`);
  realStdout(`${formatHandshakeLine({ appVersion: protocolVersion, network: address.network, address: address.address, serverCertDer: tls?.own.certDer ?? null })}\n`);
  if (options.captureStdio !== false) stdio.install();

  // Ctrl-C in the host's terminal reaches the whole foreground group; the host decides when plugins stop.
  process.on('SIGINT', () => undefined);
  watchParent(stop);
  return { ...ctx, address, shutdown: stop };
}

function autoMtlsFromEnv(): MutualTls | null {
  const pem = process.env[ENV.clientCert];
  if (!pem) return null;
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw Errors.BAD_CLIENT_CERT((err as Error).message);
  }
  return { own: generateIdentity(), peerCertPem: pem };
}

function listenSpec(network: Network): { spec: ListenSpec; ownDir: string | null } {
  if (network === 'tcp') {
    const min = process.env[ENV.minPort] ?? '0';
    const max = process.env[ENV.maxPort] ?? '0';
    if (!/^\d+$/.test(min) || !/^\d+$/.test(max)) throw Errors.PORT_RANGE(min, max, 'the values are not port numbers');
    return { spec: { network: 'tcp', minPort: Number(min), maxPort: Number(max) }, ownDir: null };
  }
  const given = process.env[ENV.unixSocketDir];
  if (given) return { spec: { network: 'unix', dir: given }, ownDir: null };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plugin-'));
  return { spec: { network: 'unix', dir }, ownDir: dir };
}

/** A plugin whose host died is re-parented; it then has no one to serve and exits. */
function watchParent(stop: () => Promise<void>): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) void stop();
  }, PARENT_WATCH_MS);
  timer.unref();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
