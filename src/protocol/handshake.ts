/**
 * The handshake line a plugin prints as its first stdout line:
 *   CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]
 * CERT is the plugin's server certificate as unpadded standard base64 DER, empty
 * for plaintext (so a plaintext line ends in "|"). MUX is "true" only when the
 * plugin multiplexes gRPC over one connection, which plughost never asks for.
 */
import { X509Certificate } from 'node:crypto';
import { Errors } from '../errors';
import { CORE_PROTOCOL_VERSION } from './constants';

export type Network = 'unix' | 'tcp';

export interface HandshakeLine {
  coreVersion: number;
  appVersion: number;
  network: Network;
  address: string;
  protocol: 'grpc';
  /** DER bytes of the plugin's certificate when it serves AutoMTLS, else null. */
  serverCertDer: Buffer | null;
  multiplex: boolean;
}

const INTEGER = /^[0-9]{1,9}$/;

/**
 * Parses one handshake line. Throws HANDSHAKE_BAD_LINE naming the line and the
 * first field that is wrong; never accepts a line it cannot fully account for.
 */
export function parseHandshakeLine(raw: string): HandshakeLine {
  const line = raw.replace(/\r?\n$/, '').trim();
  const bad = (why: string) => Errors.HANDSHAKE_BAD_LINE(line, why);
  const parts = line.split('|');
  if (parts.length < 5) {
    throw bad(`expected at least 5 "|"-separated fields (CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT), got ${parts.length}`);
  }
  if (parts.length > 7) throw bad(`expected at most 7 fields, got ${parts.length}`);
  const [core, app, network, address, protocol, cert = '', mux] = parts;

  if (!INTEGER.test(core)) throw bad(`core protocol version ${JSON.stringify(core)} is not a number`);
  if (Number(core) !== CORE_PROTOCOL_VERSION) {
    throw bad(`core protocol version ${core} is not supported; expected ${CORE_PROTOCOL_VERSION}`);
  }
  if (!INTEGER.test(app)) throw bad(`app protocol version ${JSON.stringify(app)} is not a number`);
  if (network !== 'unix' && network !== 'tcp') {
    throw bad(`network ${JSON.stringify(network)} is not supported; expected "unix" or "tcp"`);
  }
  if (address === '') throw bad('address is empty');
  if (network === 'tcp' && !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):[0-9]{1,5}$/.test(address)) {
    throw bad(`tcp address ${JSON.stringify(address)} is not host:port`);
  }
  if (protocol === 'netrpc') throw bad('protocol "netrpc" (go-plugin net/rpc) is not supported; plughost speaks only "grpc"');
  if (protocol !== 'grpc') throw bad(`protocol ${JSON.stringify(protocol)} is not supported; expected "grpc"`);

  let serverCertDer: Buffer | null = null;
  if (cert !== '') {
    if (!/^[A-Za-z0-9+/]+$/.test(cert)) throw bad('certificate field is not unpadded standard base64');
    serverCertDer = Buffer.from(cert, 'base64');
    try {
      new X509Certificate(serverCertDer);
    } catch (err) {
      throw bad(`certificate field does not hold an X.509 DER certificate (${(err as Error).message})`);
    }
  }
  if (mux !== undefined && mux !== 'true' && mux !== 'false') {
    throw bad(`multiplex field ${JSON.stringify(mux)} must be "true" or "false"`);
  }
  return {
    coreVersion: Number(core),
    appVersion: Number(app),
    network,
    address,
    protocol: 'grpc',
    serverCertDer,
    multiplex: mux === 'true',
  };
}

/** Builds the line a plugin prints (without the trailing newline). */
export function formatHandshakeLine(h: Omit<HandshakeLine, 'coreVersion' | 'protocol' | 'multiplex'>): string {
  const cert = h.serverCertDer ? h.serverCertDer.toString('base64').replace(/=+$/, '') : '';
  return [CORE_PROTOCOL_VERSION, h.appVersion, h.network, h.address, 'grpc', cert].join('|');
}

/**
 * Plugin side: the version to announce. The highest version both sides support;
 * with none in common, the plugin's lowest, which the host will then refuse with
 * a message naming both lists.
 */
export function chooseAppVersion(hostOffered: readonly number[], pluginSupports: readonly number[]): number {
  const common = pluginSupports.filter((v) => hostOffered.includes(v));
  if (common.length) return Math.max(...common);
  return Math.min(...pluginSupports);
}

/** Parses PLUGIN_PROTOCOL_VERSIONS ("1,2,3"); an absent or empty value means the plugin's own default. */
export function parseVersionList(value: string | undefined): number[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => INTEGER.test(s))
    .map(Number);
}
