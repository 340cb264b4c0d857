import { parseHandshakeLine, chooseAppVersion, formatHandshakeLine } from '../../src/protocol/handshake';
import { generateIdentity } from '../../src/protocol/mtls';
import { PluginClient } from '../../src/protocol/client';
import { Errors } from '../../src/errors';
import { NODE, fixture } from '../helpers';

const cert = generateIdentity().certDer;
const certField = cert.toString('base64').replace(/=+$/, '');

describe('handshake line: valid', () => {
  test.each([
    ['plaintext unix, empty cert field', '1|1|unix|/tmp/ph-x/p1.sock|grpc|', { network: 'unix', address: '/tmp/ph-x/p1.sock', serverCertDer: null, multiplex: false }],
    ['five fields, no cert field at all', '1|2|tcp|127.0.0.1:1234|grpc', { appVersion: 2, network: 'tcp', address: '127.0.0.1:1234' }],
    ['seventh field false', '1|1|unix|/s.sock|grpc||false', { multiplex: false }],
    ['seventh field true', '1|1|unix|/s.sock|grpc||true', { multiplex: true }],
    ['trailing CRLF and spaces', ' 1|1|tcp|[::1]:5000|grpc| \r\n', { network: 'tcp', address: '[::1]:5000' }],
    ['with certificate', `1|1|tcp|127.0.0.1:99|grpc|${certField}`, { serverCertDer: cert }],
  ])('%s', (_name, line, expected) => {
    expect(parseHandshakeLine(line)).toMatchObject(expected);
  });

  test('format and parse round-trip', () => {
    const line = formatHandshakeLine({ appVersion: 3, network: 'unix', address: '/a/b.sock', serverCertDer: cert });
    expect(line.endsWith('=')).toBe(false);
    expect(parseHandshakeLine(line)).toMatchObject({ appVersion: 3, address: '/a/b.sock', serverCertDer: cert });
    expect(formatHandshakeLine({ appVersion: 1, network: 'unix', address: '/a', serverCertDer: null })).toBe('1|1|unix|/a|grpc|');
  });
});

describe('handshake line: malformed', () => {
  test.each([
    ['empty line', '', /at least 5/],
    ['too few fields', '1|1|unix|/s', /at least 5 .* got 4/],
    ['too many fields', '1|1|unix|/s|grpc||false|extra', /at most 7/],
    ['core not a number', 'x|1|unix|/s|grpc|', /core protocol version "x" is not a number/],
    ['wrong core version', '2|1|unix|/s|grpc|', /core protocol version 2 is not supported; expected 1/],
    ['app not a number', '1|v1|unix|/s|grpc|', /app protocol version "v1"/],
    ['unknown network', '1|1|udp|/s|grpc|', /network "udp"/],
    ['empty address', '1|1|unix||grpc|', /address is empty/],
    ['tcp without port', '1|1|tcp|localhost|grpc|', /not host:port/],
    ['net/rpc plugin', '1|1|unix|/s|netrpc|', /netrpc.*not supported/],
    ['unknown protocol', '1|1|unix|/s|http|', /protocol "http"/],
    ['padded base64 cert', '1|1|unix|/s|grpc|AAAA==', /unpadded standard base64/],
    ['cert not DER', '1|1|unix|/s|grpc|aGVsbG8gd29ybGQ', /X.509 DER/],
    ['bad multiplex field', '1|1|unix|/s|grpc||yes', /multiplex field "yes"/],
  ])('%s', (_name, line, why) => {
    let err: any;
    try {
      parseHandshakeLine(line);
    } catch (e) {
      err = e;
    }
    expect(err?.code).toBe(Errors.HANDSHAKE_BAD_LINE.code);
    expect(err.message).toMatch(why);
    expect(err.message).toContain(JSON.stringify(line.trim()));
  });
});

describe('version choice on the plugin side', () => {
  test.each([
    [[1, 2, 3], [2, 3, 4], 3],
    [[1], [1], 1],
    [[5, 6], [1, 2], 1],
    [[], [2, 3], 2],
  ])('host %j, plugin %j → %i', (host, plugin, expected) => {
    expect(chooseAppVersion(host, plugin)).toBe(expected);
  });
});

describe('handshake lines from real processes', () => {
  test.each([
    ['netrpc plugin', '1|1|unix|/tmp/x.sock|netrpc|', Errors.HANDSHAKE_BAD_LINE.code],
    ['multiplexing asked for', '1|1|unix|/tmp/x.sock|grpc||true', Errors.HANDSHAKE_BAD_LINE.code],
    ['unsupported app version', '1|7|unix|/tmp/x.sock|grpc|', Errors.HANDSHAKE_VERSION.code],
    ['cert without AutoMTLS', `1|1|unix|/tmp/x.sock|grpc|${certField}`, Errors.HANDSHAKE_BAD_LINE.code],
  ])('%s is refused and the process killed', async (_name, line, code) => {
    const err = await PluginClient.start({ cmd: NODE, args: [fixture('raw-handshake.js')], env: { FIXTURE_LINE: line }, onLog: () => undefined }).catch((e) => e);
    expect(err.code).toBe(code);
    expect(err.message).toContain(line.slice(0, 20));
  });

  test('AutoMTLS requested but no certificate sent', async () => {
    const err = await PluginClient.start({
      cmd: NODE,
      args: [fixture('raw-handshake.js')],
      env: { FIXTURE_LINE: '1|1|unix|/tmp/x.sock|grpc|' },
      autoMTLS: true,
      onLog: () => undefined,
    }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_BAD_LINE.code);
    expect(err.message).toMatch(/AutoMTLS was requested but the plugin sent no certificate/);
  });
});
