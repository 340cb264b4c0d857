/**
 * AutoMTLS on TCP: a plugin listening on a loopback port accepts only the
 * host's certificate. Plaintext, TLS without a client certificate, and TLS
 * with some other self-signed certificate are all refused; the host itself
 * gets through.
 */
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { PluginClient } from '../../src/protocol/client';
import { channelOptions, derToPem, generateIdentity } from '../../src/protocol/mtls';
import { standardServices } from '../../src/protocol/proto';
import { NODE, fixture } from '../helpers';

let plugin: PluginClient;
let serverPem: string;

beforeAll(async () => {
  plugin = await PluginClient.start({ cmd: NODE, args: [fixture('echo-plugin.js')], network: 'tcp', autoMTLS: true, startTimeoutMs: 15_000, onLog: () => undefined });
  serverPem = await peerCertificate(plugin.address);
});
afterAll(() => plugin.kill());

/** The plugin's server certificate, read from a TLS handshake that presents no certificate of its own. */
function peerCertificate(address: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
      resolve(derToPem(socket.getPeerCertificate().raw));
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** Health.Check over the given credentials: the status, or the gRPC error code. */
function check(creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): Promise<string | number> {
  const Health = standardServices().health;
  const client = new Health(plugin.address, creds, { 'grpc.enable_retries': 0, ...options });
  return new Promise((resolve) => {
    client.Check({ service: 'plugin' }, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res: { status: string }) => {
      client.close();
      resolve(err ? err.code : res.status);
    });
  });
}

const tlsOptions = channelOptions({ own: generateIdentity(), peerCertPem: '' });

test('the plugin listens on loopback TCP and the host, with its certificate, is served', async () => {
  expect(plugin.network).toBe('tcp');
  expect(plugin.address).toMatch(/^127\.0\.0\.1:\d+$/);
  await expect(plugin.ping()).resolves.toBeUndefined();
});

test('control: a client of our own with the host\'s certificate, and the same options, is served', async () => {
  const own = (plugin as unknown as { internals: { tls: { own: { keyPem: string; certPem: string } } } }).internals.tls.own;
  const creds = grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(own.keyPem), Buffer.from(own.certPem));
  expect(await check(creds, tlsOptions)).toBe('SERVING');
});

test('a plaintext client is refused', async () => {
  expect(await check(grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
});

test('a TLS client that trusts the server but has no client certificate is refused', async () => {
  expect(await check(grpc.credentials.createSsl(Buffer.from(serverPem)), tlsOptions)).toBe(grpc.status.UNAVAILABLE);
});

test('a TLS client with another self-signed certificate is refused', async () => {
  const stranger = generateIdentity();
  const creds = grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(stranger.keyPem), Buffer.from(stranger.certPem));
  expect(await check(creds, tlsOptions)).toBe(grpc.status.UNAVAILABLE);
});

test('the refusals did not disturb the plugin: the host is still served', async () => {
  await expect(plugin.ping()).resolves.toBeUndefined();
});
