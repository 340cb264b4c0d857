/**
 * `plughost serve` configured as an operator would: a provisioning file's server: section,
 * PLUGHOST_* variables and flags, each shown to take effect on real plugins (AutoMTLS, hook
 * and start timeouts, upload limit, log level, trusted keys and required signatures, the
 * user id of plugin requests, integrator API methods from a module), and each way the API
 * module or the settings can be wrong refused before anything listens.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packBundle, signBundle } from '../../src/bundle';
import { FIXTURES, tempDir } from '../helpers';
import { upload } from '../server/helpers';
import { BIN, ROOT, serveOnce } from './helpers';

const TOKEN = 'serve-options-test-token-of-32-characters';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const CONTRACT = 'com.test.serve-contract';
const WEB = 'com.test.serve-web';
const SILENT = 'com.test.serve-silent';
const API = `module.exports = {
  greet: (args, caller) => ({ hello: args.name, from: caller.pluginId }),
  fail: () => { throw new Error('api says no'); },
};
`;

describe('plughost serve settings, on real plugins', () => {
  const work = tempDir();
  const at = (...parts: string[]) => path.join(work.dir, ...parts);
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
  /** A plugin folder whose entry is `main` (code, or a fixture under test/fixtures); no limits, so the host's defaults apply. */
  const folder = (id: string, main: string, extra: Record<string, unknown> = {}) => {
    const dir = at('plugins', id);
    write(path.join(dir, 'plugin.json'), JSON.stringify({ id, name: id, version: '1.0.0', server: { runtime: 'node', entry: 'main.js' }, ...extra }));
    write(path.join(dir, 'main.js'), main.endsWith('.js') ? `require(${JSON.stringify(path.join(FIXTURES, main))});\n` : main);
    return dir;
  };
  const post = async (url: string, route: string, body: unknown) => {
    const res = await fetch(`${url}/api/v1${route}`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { payload?: unknown; error?: { code: string; message: string } } };
  };
  const echo = async (url: string, headers: Record<string, string>) => {
    const res = await fetch(`${url}/plugins/${WEB}/echo`, { headers });
    return { status: res.status, body: (await res.json()) as { user?: string; error?: { code: string } } };
  };
  /** A bundle over 4096 bytes however it compresses. */
  const bigBundle = async () => {
    const dir = folder('com.test.serve-big', 'runtime/contract-plugin.js');
    write(path.join(dir, 'noise.bin'), crypto.randomBytes(16 * 1024).toString('base64'));
    const out = at('big.tar.gz');
    await packBundle(dir, out);
    return out;
  };

  beforeAll(() => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  }, 180_000);
  afterAll(() => work.cleanup());

  it('takes the file, the variables over it and the flags over both: AutoMTLS, timeouts, upload limit, log level, user header, API module', async () => {
    // Their own start deadline, so the host's short one below applies to SILENT alone.
    const starts = { limits: { start_timeout_ms: 60_000 } };
    folder(CONTRACT, 'runtime/contract-plugin.js', { env: { HOOKS: 'Mtls,Invoke,Slow,Context', HANG: '1' }, permissions: ['greet', 'fail'], ...starts });
    folder(WEB, 'server/http-plugin.js', starts);
    // It never prints its handshake line: it fails at the host's start deadline.
    folder(SILENT, 'setInterval(() => undefined, 1000);\n');
    write(at('api.js'), API);
    const config = write(at('plughost.yaml'), [
      'server:',
      '  data_dir: ./data-1',
      '  auto_mtls: true',
      '  hook_timeout_ms: 60000',
      '  log_level: warn',
      '  api: ./api.js',
      '  trust_user_header: X-User-Id',
      '  max_upload_bytes: 1',
      'plugins:',
      ...[CONTRACT, WEB, SILENT].map((id) => `  - path: plugins/${id}`),
    ].join('\n'));
    const big = await bigBundle();
    const printed = await serveOnce(
      ['--config', config, '--port', '0', '--start-timeout-ms', '700', '--max-upload-bytes', '4096'],
      { PLUGHOST_ADMIN_TOKEN: TOKEN, PLUGHOST_HOOK_TIMEOUT_MS: '2000' },
      async (url) => {
        expect(await post(url, `/plugins/${CONTRACT}/hooks/Mtls`, { payload: null })).toEqual({ status: 200, body: { payload: { clientCert: true }, rejected: false, reason: '' } });
        const slow = await post(url, `/plugins/${CONTRACT}/hooks/Slow`, { payload: null });
        expect([slow.status, slow.body.error?.message]).toEqual([504, `hook Slow of plugin "${CONTRACT}" passed its deadline of 2000 ms (Deadline exceeded)`]);
        expect((await post(url, `/plugins/${CONTRACT}/hooks/Invoke`, { payload: { method: 'greet', args: { name: 'ann' } } })).body.payload)
          .toEqual({ result: { hello: 'ann', from: CONTRACT } });
        expect((await post(url, `/plugins/${CONTRACT}/hooks/Invoke`, { payload: { method: 'fail', args: {} } })).body.payload)
          .toEqual({ code: expect.any(Number), error: 'api says no' });
        expect((await post(url, `/plugins/${CONTRACT}/hooks/Invoke`, { payload: { method: 'other', args: {} } })).body.payload)
          .toEqual({ code: 7, error: expect.stringContaining(`plugin "${CONTRACT}" may not invoke "other"`) });
        expect(await echo(url, { 'x-user-id': 'ann' })).toMatchObject({ status: 200, body: { user: 'ann' } });
        expect((await echo(url, {})).body.user).toBe('');
        const tooBig = await upload(url, big, '', AUTH);
        expect([tooBig.status, ((await tooBig.json()) as { error: { message: string } }).error.message]).toEqual([413, expect.stringContaining('the limit of 4096 bytes')]);
      },
      { keepLogLines: true },
    );
    expect(printed).toContain(`note: ${SILENT}: enabled but failed_to_start: plugin "${SILENT}" failed to activate during launch: plugin sent no handshake line within 700 ms`);
    expect(printed).toContain(`API methods for plugins (from ${at('api.js')}): greet, fail`);
    expect(printed).toContain('user id of plugin requests: the X-User-Id header, trusted as sent (safe only behind a proxy that sets it on every request)');
    // At warn: the failed start's error line, none of the info lines a start logs.
    expect(printed).toMatch(/^\{"level":50,.*"plugin_id":"com\.test\.serve-silent","source":"host","msg":"failed to start: /m);
    expect(printed).not.toMatch(/"level":30/);
  });

  it('takes flags alone: trusted key and required signature, a JWT secret, an ES module API, log level from the variable', async () => {
    const keys = crypto.generateKeyPairSync('ed25519');
    const pub = write(at('release.pub.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const secret = write(at('jwt.secret'), `${crypto.randomBytes(48).toString('base64')}\n`);
    // Node requires ES modules from 20.19 on; before, the CommonJS form stands in.
    const esm = (process.features as { require_module?: boolean }).require_module === true;
    const apiFile = esm ? write(at('api.mjs'), 'export default { greet: (args) => ({ hello: args.name }) };\n') : write(at('api.cjs'), API);
    const web = at('web.tar.gz');
    await packBundle(folder(WEB, 'server/http-plugin.js'), web);
    const signed = at('signed', 'web.tar.gz');
    fs.mkdirSync(path.dirname(signed), { recursive: true });
    fs.copyFileSync(web, signed);
    fs.writeFileSync(`${signed}.sig`, signBundle(signed, keys.privateKey));
    const token = (sub: string, key: string) => {
      const head = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}`;
      return `Bearer ${head}.${crypto.createHmac('sha256', key).update(head).digest('base64url')}`;
    };
    const printed = await serveOnce(
      ['--data-dir', at('data-2'), '--port', '0', '--require-signature', '--trusted-key', pub, '--jwt-secret-file', secret, '--api-module', apiFile],
      { PLUGHOST_ADMIN_TOKEN: TOKEN, PLUGHOST_LOG_LEVEL: 'silent' },
      async (url) => {
        const unsigned = await upload(url, web, '', AUTH);
        expect([unsigned.status, ((await unsigned.json()) as { error: { code: string } }).error.code]).toEqual([401, 'PLUGHOST_ERR_BUNDLE_UNSIGNED']);
        const form = new FormData();
        form.append('plugin', new Blob([fs.readFileSync(signed)]), 'web.tar.gz');
        form.append('signature', new Blob([fs.readFileSync(`${signed}.sig`)]), 'web.tar.gz.sig');
        expect((await fetch(`${url}/api/v1/plugins`, { method: 'POST', headers: AUTH, body: form })).status).toBe(201);
        expect((await fetch(`${url}/api/v1/plugins/${WEB}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
        expect(await echo(url, { authorization: token('bob', fs.readFileSync(secret, 'utf8').trim()) })).toMatchObject({ status: 200, body: { user: 'bob' } });
        expect(await echo(url, { authorization: token('bob', 'not-the-secret') })).toMatchObject({ status: 401, body: { error: { code: 'PLUGHOST_ERR_USER_TOKEN_INVALID' } } });
      },
      { keepLogLines: true },
    );
    expect(printed).toContain(`API methods for plugins (from ${apiFile}): greet`);
    expect(printed).toContain(`user id of plugin requests: the "sub" of an HS256 JWT in Authorization: Bearer (secret from ${secret})`);
    expect(printed).not.toMatch(/^\{/m);
  });

  it('refuses an API module that is missing, broken or exports no methods, naming the file, before anything listens', () => {
    const serve = (args: string[]) => {
      const r = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', at('never'), '--port', '0', ...args], {
        cwd: work.dir, encoding: 'utf8', env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN }, timeout: 60_000,
      });
      expect([args.join(' '), r.stdout]).toEqual([args.join(' '), '']);
      return { status: r.status, stderr: r.stderr };
    };
    const module = (name: string, text: string) => write(at('modules', name), text);
    expect(serve(['--api-module', 'modules/missing.js'])).toEqual({ status: 1, stderr: `plughost serve: the API module "${at('modules', 'missing.js')}" (from --api-module) could not be loaded: no such file\n` });
    expect(serve(['--api-module', module('syntax.js', 'module.exports = {')]).stderr)
      .toMatch(/^plughost serve: the API module ".*syntax\.js" \(from --api-module\) could not be loaded: SyntaxError: /);
    expect(serve(['--api-module', module('throws.js', 'throw new Error("no database");')]).stderr)
      .toContain('throws.js" (from --api-module) could not be loaded: Error: no database');
    expect(serve(['--api-module', module('number.js', 'module.exports = 42;')]).stderr)
      .toContain('(from --api-module) exports number; expected its export (module.exports, or export default) to be an object of methods');
    expect(serve(['--api-module', module('empty.js', 'module.exports = {};')]).stderr).toContain('exports an object with no methods');
    expect(serve(['--api-module', module('fields.js', 'module.exports = { greet() {}, limit: 3, name: "x" };')]).stderr)
      .toContain('exports an object whose "limit", "name" are not functions');
    const viaEnv = spawnSync(process.execPath, [BIN, 'serve', '--port', '0'], { cwd: work.dir, encoding: 'utf8', env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN, PLUGHOST_API_MODULE: 'modules/missing.js' }, timeout: 60_000 });
    expect(viaEnv.stderr).toContain('(from PLUGHOST_API_MODULE) could not be loaded: no such file');
    const config = write(at('missing-api.yaml'), 'server:\n  api: ./nowhere.js\n');
    const viaFile = serve(['--config', config]);
    expect([viaFile.status, viaFile.stderr]).toEqual([1, expect.stringContaining(`server.api: ${at('nowhere.js')} is not a file; expected a JavaScript module whose export is the API object`)]);
    expect(fs.existsSync(at('never'))).toBe(false);
  });

  it('refuses settings it cannot use, naming the flag or variable', () => {
    const serve = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [BIN, 'serve', '--data-dir', at('never'), '--port', '0', ...args], { encoding: 'utf8', env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN, ...env }, timeout: 60_000 });
    const hook = serve([], { PLUGHOST_HOOK_TIMEOUT_MS: 'soon' });
    expect([hook.status, hook.stderr]).toEqual([2, expect.stringContaining('PLUGHOST_HOOK_TIMEOUT_MS=soon: expected milliseconds, a whole number 1 or more')]);
    const both = serve(['--trust-user-header', 'X-User-Id', '--jwt-secret-file', at('jwt.secret')]);
    expect([both.status, both.stderr]).toEqual([2, expect.stringContaining('a user is known one way: choose one')]);
    const short = serve(['--jwt-secret-file', write(at('short.secret'), 'tiny\n')]);
    expect([short.status, short.stderr]).toEqual([1, 'plughost serve: the JWT secret from --jwt-secret-file is 4 bytes; HS256 needs at least 32 (e.g. openssl rand -base64 48 > jwt.secret)\n']);
    const key = serve(['--trusted-key', at('nokey.pem')]);
    expect([key.status, key.stderr]).toEqual([2, expect.stringContaining(`trusted key ${at('nokey.pem')}: no such file`)]);
    expect(serve(['--help']).stdout).toContain('--trust-user-header NAME      PLUGHOST_TRUST_USER_HEADER       trust_user_header');
    expect(fs.existsSync(at('never'))).toBe(false);
  });
});
