/**
 * `plughost plugin ...` as a user runs it: the built CLI in a child process against a real
 * server on a loopback port, with the hello example's bundle.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/server';
import { fixtureBundle } from '../runtime/fixtures';
import { BIN, ROOT, cliRunner } from './helpers';

const TOKEN = 'cli-test-token-of-at-least-32-characters';
const ID = 'com.example.hello';

describe('plughost plugin', () => {
  let work: string;
  let bundle: string;
  let server: RunningServer;

  const { cli, ok, json } = cliRunner(() => ({ url: server.url, token: TOKEN, cwd: work }));
  const hello = async () => (await fetch(`${server.url}/plugins/${ID}/hello`)).json() as Promise<{ greeting: string; visits: number }>;

  beforeAll(async () => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    expect(fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'commands', 'plugin.js'))).toBe(true);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-clip-'));
    bundle = path.join(work, 'hello.tar.gz');
    const packed = spawnSync(process.execPath, [BIN, 'pack', path.join(ROOT, 'examples', 'hello'), '-o', bundle], { encoding: 'utf8' });
    expect(packed.stderr).toBe('');
    server = await startServer({ dataDir: path.join(work, 'data'), port: 0, adminToken: TOKEN, logger: pino({ level: 'silent' }), routes: { installFromUrl: { allowHosts: ['127.0.0.1'] } } });
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('adds, enables, lists and shows a plugin, in tables and in JSON', async () => {
    const added = await cli(['plugin', 'add', bundle, '--enable']);
    expect(added.status).toBe(0);
    expect(added.stdout).toContain(`installed ${ID} 0.1.0`);
    expect(added.stdout).toContain(`enabled ${ID}: running`);
    // stderr is not a terminal here, so the progress is one final line.
    expect(added.stderr).toMatch(/^uploading hello\.tar\.gz: sent [\d.]+ KiB in [\d.]+ s/);
    expect((await hello()).greeting).toBe('Hello');

    expect(await ok('plugin', 'list')).toMatch(new RegExp(`^ID\\s+VERSION\\s+ENABLED\\s+STATE.*\\n${ID.replace(/\./g, '\\.')}\\s+0\\.1\\.0\\s+yes\\s+running`));
    const listed = await json<Array<{ id: string; state: string }>>('plugin', 'list');
    expect(listed.map((p) => [p.id, p.state])).toEqual([[ID, 'running']]);
    expect(await ok('plugin', 'show', ID)).toMatch(/settings:\s+greeting \(text\), api_key \(secret\)/);
    const shown = await json<{ id: string; enabled: boolean; manifest: { version: string } }>('plugin', 'show', ID);
    expect([shown.id, shown.enabled, shown.manifest.version]).toEqual([ID, true, '0.1.0']);
  });

  it('shows each node of a plugin, and lists the cluster nodes in a table and in JSON', async () => {
    const nodeId = server.host.nodeId;
    expect(await ok('plugin', 'show', ID)).toMatch(new RegExp(`nodes:\\s+${nodeId}: running\\n`));
    expect(await ok('plugin', 'show', ID)).toMatch(/generation:\s+\d+: 1 of 1 live nodes converged, 1 running\n/);
    expect(await ok('cluster')).toMatch(new RegExp(`^NODE\\s+VERSION\\s+STARTED\\s+HEARTBEAT\\n${nodeId} \\(this node\\)\\s+\\S+\\s+\\d{4}-\\S+Z\\s+\\d+\\.\\d s ago\\n$`));
    const cluster = await json<{ nodeId: string; nodes: Array<{ nodeId: string }> }>('cluster', 'nodes');
    expect([cluster.nodeId, cluster.nodes.map((n) => n.nodeId)]).toEqual([nodeId, [nodeId]]);
    const wrong = await cli(['cluster', '--token', 'nope']);
    expect([wrong.status, wrong.stderr]).toEqual([1, 'plughost cluster: the admin token is not valid (HTTP 403 PLUGHOST_ERR_AUTH_WRONG)\n']);
    expect((await cli(['cluster', 'locks'])).status).toBe(2);
  });

  it('refuses a second add without --force with the server message, and replaces with --force', async () => {
    const again = await cli(['plugin', 'add', bundle]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/plughost plugin add: .*com\.example\.hello.*\(HTTP 409 PLUGHOST_ERR_\w+\)/);
    const forced = await json<{ id: string; enabled: boolean }>('plugin', 'add', bundle, '--force');
    expect([forced.id, forced.enabled]).toEqual([ID, true]);
  });

  it('gets and sets configuration typed by the settings schema, masking secrets', async () => {
    expect(await ok('plugin', 'config', 'set', ID, 'greeting=Bonjour', 'api_key=s3cret')).toMatch(/greeting\s+Bonjour\napi_key\s+\*{8}/);
    expect((await hello()).greeting).toBe('Bonjour');
    expect(await json('plugin', 'config', 'get', ID)).toEqual({ greeting: 'Bonjour', api_key: '********' });
    // Setting one key keeps the others, the secret included.
    await ok('plugin', 'config', 'set', ID, 'greeting=Hi');
    expect((await server.host.getConfig(ID, { reveal: true }))).toEqual({ greeting: 'Hi', api_key: 's3cret' });
    const file = path.join(work, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ greeting: 'From a file' }));
    expect(await json('plugin', 'config', 'set', ID, '--file', file)).toEqual({ greeting: 'From a file' });
    expect((await hello()).greeting).toBe('From a file');

    const unknown = await cli(['plugin', 'config', 'set', ID, 'colour=blue']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('colour: unknown setting; expected one of greeting, api_key');
    expect(unknown.stderr).toContain('HTTP 400 PLUGHOST_ERR_CONFIG_INVALID');
    const nothing = await cli(['plugin', 'config', 'set', ID]);
    expect([nothing.status, nothing.stderr]).toEqual([2, expect.stringContaining('nothing to set')]);
  });

  it('prints logs as text with fields and [host] lines, as JSON, by level, and followed over the stream until interrupted', async () => {
    const text = await ok('plugin', 'logs', ID, '--limit', '50');
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO  hello plugin activated greeting=Hello/m);
    expect(text).toMatch(/^\S+Z INFO  \[host\] started pid=\d+$/m);
    const records = await json<Array<{ message: string; pluginId: string }>>('plugin', 'logs', ID);
    expect(records.some((r) => r.message === 'hello plugin activated')).toBe(true);
    expect(await json('plugin', 'logs', ID, '--level', 'error')).toEqual([]);
    expect((await cli(['plugin', 'logs', ID, '--limit', 'lots'])).status).toBe(2);
    const badLevel = await cli(['plugin', 'logs', ID, '--level', 'loud']);
    expect([badLevel.status, badLevel.stderr]).toEqual([2, expect.stringContaining('--level loud: expected one of trace, debug, info, warn, error')]);

    const child = spawn(process.execPath, [BIN, 'plugin', 'logs', ID, '--follow', '--limit', '1'], {
      env: { ...process.env, PLUGHOST_URL: server.url, PLUGHOST_TOKEN: TOKEN },
    });
    let followed = '';
    child.stdout.on('data', (chunk: Buffer) => { followed += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(() => followed.includes('\n'));
    // A restart: the host's stop and start lines and the plugin's own activation line, as they happen.
    await server.host.disable(ID);
    await server.host.enable(ID);
    await until(() => /\[host\] started/.test(followed.split('\n').slice(1).join('\n')));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const lines = followed.trim().split('\n').slice(1).map((l) => l.replace(/^\S+Z /, ''));
    expect(lines).toEqual([
      'INFO  [host] stopped exit_code=0',
      // The configuration an earlier test saved.
      'INFO  hello plugin activated greeting=From a file',
      expect.stringMatching(/^INFO  \[host\] started pid=\d+$/),
    ]);
  });

  it('follows as JSON lines, and says so when the server ends the stream (plugin removed)', async () => {
    const id = 'com.test.cli-follow';
    await ok('plugin', 'add', await fixtureBundle(work, { id }), '--enable');
    const child = spawn(process.execPath, [BIN, 'plugin', 'logs', id, '--follow', '--json'], {
      env: { ...process.env, PLUGHOST_URL: server.url, PLUGHOST_TOKEN: TOKEN },
    });
    let out = '';
    let errText = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { errText += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(() => out.trim().split('\n').length >= 2);
    const records = out.trim().split('\n').map((l) => JSON.parse(l) as { source: string; message: string; pluginId: string });
    expect(records.map((r) => [r.pluginId, r.source, r.message])).toEqual([[id, 'api', 'activated'], [id, 'host', 'started']]);
    await ok('plugin', 'remove', id);
    expect(await exited).toBe(1);
    expect(errText).toContain(`plughost plugin logs: plugin ${id} was removed`);
  });

  it('disables, enables and removes', async () => {
    expect(await ok('plugin', 'disable', ID)).toBe(`disabled ${ID} 0.1.0: not_running\n`);
    const route = await fetch(`${server.url}/plugins/${ID}/hello`);
    expect(route.status).toBe(503);
    expect((await route.json()).error.message).toContain(`plughost plugin enable ${ID}`);
    expect((await json<{ state: string }>('plugin', 'enable', ID)).state).toBe('running');
    expect(await json('plugin', 'remove', ID)).toEqual({ removed: ID });
    expect(await ok('plugin', 'list')).toBe('no plugins installed\n');
  });

  it('installs from a URL', async () => {
    const files = http.createServer((req, res) => {
      if (req.url !== '/hello.tar.gz') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/gzip' });
      fs.createReadStream(bundle).pipe(res);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    try {
      const r = await cli(['plugin', 'install-url', `${base}/hello.tar.gz`, '--enable']);
      expect(r.stdout).toBe(`installed ${ID} 0.1.0 from ${base}/hello.tar.gz\nenabled ${ID}: running\n`);
      const missing = await cli(['plugin', 'install-url', `${base}/missing.tar.gz`, '--force']);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toMatch(/answered 404.*\(HTTP \d+ PLUGHOST_ERR_DOWNLOAD_FAILED\)/);
    } finally {
      await new Promise((resolve) => files.close(resolve));
      await ok('plugin', 'remove', ID);
    }
  });

  it('fails with the server message and status: unknown plugin, wrong or missing token, no server', async () => {
    for (const args of [['show', 'no.such.plugin'], ['enable', 'no.such.plugin'], ['remove', 'no.such.plugin'], ['logs', 'no.such.plugin'], ['config', 'get', 'no.such.plugin']]) {
      const r = await cli(['plugin', ...args]);
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toBe(`plughost plugin ${args[0]}: no plugin with id "no.such.plugin" is installed (HTTP 404 PLUGHOST_ERR_PLUGIN_NOT_FOUND)\n`);
    }
    const wrong = await cli(['plugin', 'list', '--token', 'nope']);
    expect([wrong.status, wrong.stderr]).toEqual([1, 'plughost plugin list: the admin token is not valid (HTTP 403 PLUGHOST_ERR_AUTH_WRONG)\n']);
    const missing = await cli(['plugin', 'list'], { PLUGHOST_TOKEN: undefined });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no admin token: pass --token or set PLUGHOST_TOKEN');
    const down = await cli(['plugin', 'list', '--url', 'http://127.0.0.1:1']);
    expect([down.status, down.stderr]).toEqual([1, 'plughost plugin list: cannot reach plughost at http://127.0.0.1:1: ECONNREFUSED\n']);
    const usage = await cli(['plugin', 'frob']);
    expect([usage.status, usage.stderr]).toEqual([2, expect.stringContaining('unknown subcommand "frob"')]);
    expect((await cli(['plugin', 'add', path.join(work, 'nothing.tar.gz')])).stderr).toContain('is not a file');
  });

  it('add --force of a version whose schema dropped a setting keeps the others and prints what was dropped', async () => {
    const id = 'com.test.cli-upgrade';
    const keep = { key: 'keep', type: 'text' };
    await ok('plugin', 'add', await fixtureBundle(work, { id, version: '0.1.0', settingsSchema: { settings: [keep, { key: 'gone', type: 'text' }] } }));
    await ok('plugin', 'config', 'set', id, 'keep=yes', 'gone=bye');
    const upgraded = await cli(['plugin', 'add', await fixtureBundle(work, { id, version: '0.2.0', settingsSchema: { settings: [keep] } }), '--force']);
    expect(upgraded.status).toBe(0);
    expect(upgraded.stdout).toContain(`installed ${id} 0.2.0`);
    expect(upgraded.stderr).toContain('warning: setting "gone" was dropped: the new version has no such setting');
    expect(await server.host.getConfig(id)).toEqual({ keep: 'yes' });
    await ok('plugin', 'remove', id);
  });
});

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
