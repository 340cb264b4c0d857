/**
 * Provisioning: the file is checked field by field before anything starts; converge installs
 * missing or newer plugins, applies settings and enabled state, and a second run changes
 * nothing. The serve tests run the built CLI as a child process, as an operator would.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { packBundle } from '../../src/bundle';
import { isError, Errors } from '../../src/errors';
import { converge, loadProvisionFile, planProvision, type ProvisionFile } from '../../src/provision';
import { PluginHost } from '../../src/runtime';
import { serveOnce } from '../cli/helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const CONTRACT_PLUGIN = path.join(ROOT, 'test', 'fixtures', 'runtime', 'contract-plugin.js');

/** A plain-JS plugin folder around the runtime's contract fixture. */
function pluginFolder(dir: string, id: string, version: string): string {
  const folder = path.join(dir, `${id}-${version}`);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'plugin.json'), JSON.stringify({
    id, name: id, version,
    server: { runtime: 'node', entry: 'main.js' },
    settings_schema: { settings: [{ key: 'greeting', type: 'text', default: 'hello' }, { key: 'count', type: 'number', default: 1 }, { key: 'token', type: 'secret' }] },
  }));
  fs.writeFileSync(path.join(folder, 'main.js'), `require(${JSON.stringify(CONTRACT_PLUGIN)});\n`);
  return folder;
}

function write(file: string, text: string): string {
  fs.writeFileSync(file, text);
  return file;
}

/** Admin tokens are at least 32 characters. */
const SERVE_TOKEN = 'provision-test-token-of-at-least-32-chars';

describe('provisioning', () => {
  let work: string;
  beforeEach(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-prov-t-')); });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it('refuses a bad file listing every problem with its field path', () => {
    const file = write(path.join(work, 'bad.yaml'), [
      'port: 70000', 'metrics_port: -1', 'allow_url_hosts: [3]', 'host: 3', 'colour: blue', 'require_signature: true', 'trusted_keys: [missing.pem]',
      'plugins:', '  - path: nowhere', '    enabled: "yes"', '    settings: { a: [1] }', '    extra: 1', '  - 42', '  - {}',
    ].join('\n'));
    let message = '';
    try {
      loadProvisionFile(file);
    } catch (err) {
      expect(isError(err, Errors.PROVISION_INVALID)).toBe(true);
      message = (err as Error).message;
    }
    for (const expected of [
      'colour: unknown field; expected one of server, plugins, data_dir, host, port, metrics_port, allow_url_hosts, require_signature, trusted_keys',
      'port: expected a port number 0-65535, got number 70000',
      'metrics_port: expected a port number 0-65535, got number -1',
      'allow_url_hosts[0]: expected',
      'host: expected a host name or address to listen on, e.g. 127.0.0.1, got number 3',
      `trusted_keys[0]: ${path.join(work, 'missing.pem')} is not a file`,
      'plugins[0].enabled: expected true or false, got the string "yes"',
      'plugins[0].settings.a: expected a text, number or true/false value, or a list of texts, got a list holding number 1',
      'plugins[0].extra: unknown field',
      `plugins[0].path: ${path.join(work, 'nowhere')} does not exist`,
      'plugins[1]: expected an object with path, enabled and settings, got number 42',
      'plugins[2].path: required',
    ]) expect(message).toContain(expected);
    expect(message).toMatch(/has 1[23] problem\(s\)/);
  });

  it('reads metrics_port and allow_url_hosts, the file forms of --metrics-port and --allow-url-host', () => {
    const file = loadProvisionFile(write(path.join(work, 'ok.yaml'), 'metrics_port: 9464\nallow_url_hosts: [bundles.internal, 10.1.0.0/16]\n'));
    expect(file).toMatchObject({ metricsPort: 9464, allowUrlHosts: ['bundles.internal', '10.1.0.0/16'] });
  });

  it('refuses YAML syntax errors, alias bombs, prototype keys and a missing file', () => {
    const cases: Array<[string, string, string]> = [
      ['syntax.yaml', 'plugins: [', 'is not valid YAML or JSON'],
      ['bomb.yaml', `a: &a [1, 2]\nb: [${Array(60).fill('*a').join(', ')}]`, 'too many alias expansions (the limit is 50)'],
      ['proto.json', '{"plugins": [{"path": ".", "__proto__": {"x": 1}}]}', 'plugins[0].__proto__: this key is not allowed'],
      ['dup.yaml', 'port: 1\nport: 2', 'Map keys must be unique'],
    ];
    for (const [name, text, expected] of cases) expect(() => loadProvisionFile(write(path.join(work, name), text))).toThrow(expected);
    expect(() => loadProvisionFile(path.join(work, 'none.yaml'))).toThrow('no such file');
  });

  it('refuses two entries declaring one plugin id before changing anything', async () => {
    const folder = pluginFolder(work, 'com.test.dup', '1.0.0');
    const bundle = path.join(work, 'dup.tar.gz');
    await packBundle(folder, bundle);
    const file = loadProvisionFile(write(path.join(work, 'p.yaml'), `plugins:\n  - path: ${folder}\n  - path: dup.tar.gz\n`));
    await expect(planProvision(file.plugins)).rejects.toThrow('plugins[0] and plugins[1] both declare plugin "com.test.dup"');
  });

  it('converges: installs, configures, enables; then nothing; then upgrades, keeps newer, disables', async () => {
    const v1 = pluginFolder(work, 'com.test.a', '1.0.0');
    const v2 = pluginFolder(work, 'com.test.a', '1.1.0');
    const bundleB = path.join(work, 'b.tar.gz');
    await packBundle(pluginFolder(work, 'com.test.b', '2.0.0'), bundleB);
    const packFolder = (dir: string, out: string) => packBundle(dir, out).then(() => undefined);
    const host = await PluginHost.open({ dataDir: path.join(work, 'data'), logger: pino({ level: 'silent' }) });
    const run = async (yaml: string) => {
      const file: ProvisionFile = loadProvisionFile(write(path.join(work, 'p.yaml'), yaml));
      return converge(host, await planProvision(file.plugins), { packFolder });
    };
    try {
      const first = `plugins:\n  - path: ${path.basename(v1)}\n    settings: { greeting: hi, token: t0p }\n  - path: b.tar.gz\n    enabled: false\n`;
      const report = await run(first);
      expect(report.changes).toEqual([
        { id: 'com.test.a', action: 'installed', detail: '1.0.0' },
        { id: 'com.test.a', action: 'configured', detail: 'set greeting, token' },
        { id: 'com.test.a', action: 'enabled', detail: 'running' },
        { id: 'com.test.b', action: 'installed', detail: '2.0.0' },
      ]);
      expect(await host.getConfig('com.test.a', { reveal: true })).toEqual({ greeting: 'hi', count: 1, token: 't0p' });
      expect((await run(first)).changes).toEqual([]);

      // A setting changed by hand is put back; one not declared is left alone.
      await host.setConfig('com.test.a', { greeting: 'by hand', count: 9, token: 't0p' });
      expect((await run(first)).changes).toEqual([{ id: 'com.test.a', action: 'configured', detail: 'set greeting' }]);
      expect((await host.getConfig('com.test.a', { reveal: true })).count).toBe(9);

      const second = `plugins:\n  - path: ${path.basename(v2)}\n  - path: b.tar.gz\n    enabled: true\n`;
      const upgraded = await run(second);
      expect(upgraded.changes).toEqual([
        { id: 'com.test.a', action: 'upgraded', detail: '1.0.0 → 1.1.0' },
        { id: 'com.test.b', action: 'enabled', detail: 'running' },
      ]);
      expect((await host.get('com.test.a')).state).toBe('running');
      const older = await run(`plugins:\n  - path: ${path.basename(v1)}\n    enabled: false\n`);
      expect(older.changes).toEqual([{ id: 'com.test.a', action: 'disabled', detail: 'not_running' }]);
      expect(older.notes).toEqual(['com.test.a: kept the installed 1.1.0; plugins[0] declares the older 1.0.0']);
    } finally {
      await host.close();
    }
  });

  describe('plughost serve --config', () => {
    beforeAll(() => {
      spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    }, 180_000);

    const serve = (config: string, probe: (url: string) => Promise<void>) => serveOnce(['--config', config, '--port', '0'], { PLUGHOST_ADMIN_TOKEN: SERVE_TOKEN }, probe);

    it('converges at start, changes nothing on the second start, and refuses a bad file', async () => {
      const folder = pluginFolder(work, 'com.test.served', '1.0.0');
      const config = write(path.join(work, 'plughost.yaml'), `data_dir: ./state\nplugins:\n  - path: ${path.basename(folder)}\n    settings: { greeting: provisioned }\n`);
      const config1 = async (url: string) => {
        const res = await fetch(`${url}/api/v1/plugins/com.test.served/config`, { headers: { authorization: `Bearer ${SERVE_TOKEN}` } });
        expect(await res.json()).toEqual({ greeting: 'provisioned', count: 1 });
      };
      const first = await serve(config, config1);
      expect(first).toContain(`provisioning ${config}: 3 change(s)\n  installed com.test.served: 1.0.0\n  configured com.test.served: set greeting\n  enabled com.test.served: running\n`);
      expect(fs.existsSync(path.join(work, 'state', 'plughost.db'))).toBe(true);
      const second = await serve(config, config1);
      expect(second).toContain(`provisioning ${config}: nothing changed (1 plugin(s) as declared)`);

      const bad = write(path.join(work, 'bad.yaml'), 'data_dir: ./never\nplugins:\n  - path: missing\n    enabled: 1\n');
      const r = spawnSync(process.execPath, [BIN, 'serve', '--config', bad, '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`plughost serve: provisioning file ${JSON.stringify(bad)} has 2 problem(s):`);
      expect(r.stderr).toContain('plugins[0].enabled: expected true or false, got number 1');
      expect(fs.existsSync(path.join(work, 'never'))).toBe(false);
    });
  });
});
