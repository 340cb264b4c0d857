/**
 * Where each `plughost serve` setting comes from: flag, then PLUGHOST_* variable, then the
 * provisioning file (its server: section, or the top level for the older keys), then the
 * default; and what is refused, naming the flag, variable or field.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SERVE_OPTIONS, resolveServeSettings } from '../../src/cli/commands/serve/settings';
import { UsageError } from '../../src/cli/io';
import { checkProvision } from '../../src/provision';
import { tempDir } from '../helpers';

describe('serve settings', () => {
  const work = tempDir();
  const file = path.join(work.dir, 'conf', 'plughost.yaml');
  const touch = (name: string, text = 'x') => {
    const at = path.join(work.dir, 'conf', name);
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, text);
    return at;
  };
  const provision = (server: Record<string, unknown>, top: Record<string, unknown> = {}) => checkProvision({ ...top, server }, file);
  const settings = (args: string[], env: NodeJS.ProcessEnv = {}, server?: Record<string, unknown>) =>
    resolveServeSettings(parseArgs({ args, options: SERVE_OPTIONS }).values, server ? provision(server) : undefined, env);
  const refused = (args: string[], env: NodeJS.ProcessEnv, message: string) => {
    expect(() => settings(args, env)).toThrow(UsageError);
    expect(() => settings(args, env)).toThrow(message);
  };
  afterAll(() => work.cleanup());

  test('flag, then variable, then file, then default', () => {
    const file = { hook_timeout_ms: 300, start_timeout_ms: 3000, max_upload_bytes: 30, log_level: 'error', auto_mtls: true, require_signature: false };
    expect(settings([], {}, {})).toMatchObject({ hookTimeoutMs: undefined, startTimeoutMs: undefined, maxUploadBytes: undefined, logLevel: 'info', autoMTLS: undefined, port: 8065, host: '127.0.0.1' });
    expect(settings([], {}, file)).toMatchObject({ hookTimeoutMs: 300, startTimeoutMs: 3000, maxUploadBytes: 30, logLevel: 'error', autoMTLS: true });
    const env = { PLUGHOST_HOOK_TIMEOUT_MS: '200', PLUGHOST_START_TIMEOUT_MS: '2000', PLUGHOST_MAX_UPLOAD_BYTES: '20', PLUGHOST_LOG_LEVEL: 'warn', PLUGHOST_AUTO_MTLS: 'false' };
    expect(settings([], env, file)).toMatchObject({ hookTimeoutMs: 200, startTimeoutMs: 2000, maxUploadBytes: 20, logLevel: 'warn', autoMTLS: false });
    const flags = ['--hook-timeout-ms', '100', '--start-timeout-ms', '1000', '--max-upload-bytes', '10', '--log-level', 'debug', '--auto-mtls'];
    expect(settings(flags, env, file)).toMatchObject({ hookTimeoutMs: 100, startTimeoutMs: 1000, maxUploadBytes: 10, logLevel: 'debug', autoMTLS: true });
    expect(settings(['--no-auto-mtls'], {}, file).autoMTLS).toBe(false);
    // An empty variable is unset.
    expect(settings([], { PLUGHOST_HOOK_TIMEOUT_MS: '' }, file).hookTimeoutMs).toBe(300);
  });

  test('trusted keys and require-signature from each source; paths relative to the working folder or to the file', () => {
    const key = touch('release.pub.pem', crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(settings([], {}, { trusted_keys: ['release.pub.pem'], require_signature: true })).toMatchObject({ trustedKeys: [key], requireSignature: true });
    // The older top-level form is still read.
    expect(resolveServeSettings({}, checkProvision({ trusted_keys: ['release.pub.pem'], require_signature: true }, file), {})).toMatchObject({ trustedKeys: [key], requireSignature: true });
    expect(settings([], { PLUGHOST_TRUSTED_KEYS: 'a.pem,b.pem', PLUGHOST_REQUIRE_SIGNATURE: 'yes' }, { trusted_keys: ['release.pub.pem'] }))
      .toMatchObject({ trustedKeys: [path.resolve('a.pem'), path.resolve('b.pem')], requireSignature: true });
    expect(settings(['--trusted-key', 'c.pem', '--no-require-signature'], { PLUGHOST_TRUSTED_KEYS: 'a.pem', PLUGHOST_REQUIRE_SIGNATURE: 'true' }))
      .toMatchObject({ trustedKeys: [path.resolve('c.pem')], requireSignature: false });
  });

  test('user id and API module: the file names them relative to itself, a flag or variable relative to the working folder', () => {
    const api = touch('api.js');
    const secret = touch('jwt.secret');
    expect(settings([], {}, { trust_user_header: 'X-User-Id', api: 'api.js' })).toMatchObject({
      trustUserHeader: 'X-User-Id',
      apiModule: { file: api, source: `server.api in ${file}` },
    });
    expect(settings([], {}, { jwt_secret_file: 'jwt.secret' }).jwtSecretFile).toEqual({ file: secret, source: `server.jwt_secret_file in ${file}` });
    expect(settings(['--api-module', 'my-api.js'], { PLUGHOST_API_MODULE: 'other.js' }, { api: 'api.js' }).apiModule).toEqual({ file: path.resolve('my-api.js'), source: '--api-module' });
    expect(settings([], { PLUGHOST_API_MODULE: 'other.js', PLUGHOST_TRUST_USER_HEADER: 'X-Remote-User' }).apiModule).toEqual({ file: path.resolve('other.js'), source: 'PLUGHOST_API_MODULE' });
  });

  test('refuses text that does not parse, naming the flag or the variable (never a database password)', () => {
    refused(['--port', 'eighty'], {}, '--port eighty: expected a port number 0-65535');
    refused([], { PLUGHOST_PORT: 'eighty' }, 'PLUGHOST_PORT=eighty: expected a port number 0-65535');
    refused(['--hook-timeout-ms', '0'], {}, '--hook-timeout-ms 0: expected milliseconds, a whole number 1 or more');
    refused([], { PLUGHOST_START_TIMEOUT_MS: 'soon' }, 'PLUGHOST_START_TIMEOUT_MS=soon: expected milliseconds');
    refused([], { PLUGHOST_MAX_UPLOAD_BYTES: '1.5' }, 'PLUGHOST_MAX_UPLOAD_BYTES=1.5: expected a whole number of bytes, 1 or more');
    refused(['--log-level', 'loud'], {}, '--log-level loud: expected one of trace, debug, info, warn, error, fatal, silent');
    refused([], { PLUGHOST_AUTO_MTLS: 'maybe' }, 'PLUGHOST_AUTO_MTLS=maybe: expected true or false');
    refused(['--trust-user-header', 'X User'], {}, '--trust-user-header X User: expected an HTTP header name such as X-User-Id');
    refused(['--auto-mtls', '--no-auto-mtls'], {}, '--auto-mtls and --no-auto-mtls say opposite things; give one');
    refused(['--trust-user-header', 'X-User-Id', '--jwt-secret-file', 's'], {}, 'a trusted user header (X-User-Id) and a JWT secret (--jwt-secret-file) are both set');
    refused(['--require-signature'], {}, 'signatures are required but no trusted key is given');
    expect(() => settings([], { PLUGHOST_DATABASE_URL: 'mysql://u:hunter2@db/app' })).toThrow(/^PLUGHOST_DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL$/);
  });

  test("the file's server: section is checked field by field", () => {
    const bad = () => checkProvision({
      port: 1,
      server: { port: 2, auto_mtls: 'yes', max_upload_bytes: 0, hook_timeout_ms: -1, log_level: 'loud', trust_user_header: 'bad header', jwt_secret_file: 'missing.secret', api: 'missing.js', colour: 'red' },
    }, file);
    for (const expected of [
      'server.port: is also given at the top level; give it once, here',
      'server.auto_mtls: expected true or false, got the string "yes"',
      'server.max_upload_bytes: expected a positive whole number, got number 0',
      'server.hook_timeout_ms: expected a positive whole number, got number -1',
      'server.log_level: expected one of trace, debug, info, warn, error, fatal, silent, got the string "loud"',
      'server.trust_user_header: expected an HTTP header name such as X-User-Id',
      `server.jwt_secret_file: ${path.join(work.dir, 'conf', 'missing.secret')} is not a file; expected a file holding the HS256 secret of user JWTs`,
      `server.api: ${path.join(work.dir, 'conf', 'missing.js')} is not a file; expected a JavaScript module whose export is the API object`,
      'server.colour: unknown field',
    ]) expect(bad).toThrow(expected);
    touch('jwt.secret');
    expect(() => checkProvision({ server: { trust_user_header: 'X-User-Id', jwt_secret_file: 'jwt.secret' } }, file))
      .toThrow('server.jwt_secret_file: is given with trust_user_header; a user is known one way: choose one');
    expect(() => checkProvision({ auto_mtls: true }, file)).toThrow('auto_mtls: unknown field; expected one of server, plugins,');
    expect(() => checkProvision({ server: [] }, file)).toThrow('server: expected an object, got a list');
  });
});
