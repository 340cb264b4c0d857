/**
 * Where a gRPC server of ours listens: a unix socket in a given folder, or a
 * loopback TCP port within a range. Both sides of the protocol, and both
 * directions of the broker, listen through here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import { MAX_UNIX_SOCKET_PATH_BYTES } from './constants';
import type { Network } from './handshake';

export type ListenSpec =
  | { network: 'unix'; dir: string }
  | { network: 'tcp'; host?: string; minPort?: number; maxPort?: number };

export interface BoundAddress {
  network: Network;
  /** A socket path for unix, host:port for tcp: what goes into a handshake line or ConnInfo. */
  address: string;
}

/** The grpc-js target for an address announced by a peer. */
export function dialTarget(network: Network, address: string): string {
  return network === 'unix' ? `unix:${address}` : address;
}

/** Refuses a socket path the kernel would not hold whole (grpc-js would cut it silently). */
export function checkSocketPath(socketPath: string): void {
  if (Buffer.byteLength(socketPath) > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw Errors.SOCKET_PATH_TOO_LONG(socketPath, MAX_UNIX_SOCKET_PATH_BYTES);
  }
}

function bindAsync(server: grpc.Server, target: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(target, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

/**
 * Binds `server` per `spec`. `name` makes the socket file unique within the
 * folder (the host and its plugin may share one folder).
 */
export async function bindServer(
  server: grpc.Server,
  creds: grpc.ServerCredentials,
  spec: ListenSpec,
  name: string,
): Promise<BoundAddress> {
  if (spec.network === 'unix') {
    const socketPath = path.join(spec.dir, `${name}.sock`);
    checkSocketPath(socketPath);
    fs.rmSync(socketPath, { force: true });
    await bindAsync(server, `unix:${socketPath}`, creds);
    return { network: 'unix', address: socketPath };
  }
  const host = spec.host ?? '127.0.0.1';
  const min = spec.minPort ?? 0;
  const max = spec.maxPort ?? 0;
  if (min > max) throw Errors.PORT_RANGE(String(min), String(max), 'the minimum is above the maximum');
  let lastError = 'no port tried';
  // A random start spreads concurrent plugins over the range instead of racing for its first port.
  const span = max - min + 1;
  const offset = min === 0 ? 0 : Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = min === 0 ? 0 : min + ((offset + i) % span);
    try {
      const bound = await bindAsync(server, `${host}:${port}`, creds);
      return { network: 'tcp', address: `${host}:${bound}` };
    } catch (err) {
      lastError = (err as Error).message;
    }
  }
  throw Errors.PORT_RANGE(String(min), String(max), lastError);
}

/** Unlinks a unix socket file that a closed server left behind. */
export function removeSocketFile(bound: BoundAddress | undefined): void {
  if (bound?.network === 'unix') fs.rmSync(bound.address, { force: true });
}

/** Graceful stop, forced after `graceMs`. */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
