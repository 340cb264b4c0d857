/**
 * `plughost serve` as a real process: a plugin with the longest valid id goes
 * through every route and CLI command, then SIGTERM with an upload cut off
 * mid-body stops the server within its grace period and stops the plugin.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitGone, watchStdout } from '../helpers';
import { pluginBundle } from '../server/helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const TOKEN = 'serve-limits-test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
// The longest id a manifest may have.
const ID = `com.${'a'.repeat(186)}`;

describe('plughost serve: longest id and prompt shutdown', () => {
  let work: string;
  let server: ChildProcess;
  let url: string;
  let output: ReturnType<typeof watchStdout>;

  const cli = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, PLUGHOST_URL: url, PLUGHOST_TOKEN: TOKEN } }, (error, out, err) =>
        resolve({ status: error ? Number(error.code ?? 1) : 0, stdout: out, stderr: err }),
      );
    });

  beforeAll(async () => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-sl-'));
    server = spawn(process.execPath, [BIN, 'serve', '--data-dir', path.join(work, 'data'), '--port', '0'], { cwd: work, env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN } });
    output = watchStdout(server);
    url = (await output.waitFor(/listening on (\S+)/, 'serve did not start'))[1];
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.on('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    if (r.status !== 0) throw new Error(`plughost ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };

  it('a plugin with a 190-character id works through every route and command', async () => {
    expect(ID).toHaveLength(190);
    const bundle = await pluginBundle(work, ID, 'server/http-plugin.js');
    expect(await ok('plugin', 'add', bundle, '--enable')).toContain(`enabled ${ID}`);
    expect(JSON.parse(await ok('plugin', 'show', ID, '--json'))).toMatchObject({ id: ID, state: 'running' });
    expect(JSON.parse(await ok('plugin', 'list', '--json'))).toEqual([expect.objectContaining({ id: ID })]);
    expect(JSON.parse(await ok('plugin', 'config', 'get', ID, '--json'))).toEqual({});
    await ok('plugin', 'logs', ID, '--json');
    const echo = await fetch(`${url}/plugins/${ID}/echo`);
    expect(echo.status).toBe(200);
    expect((await echo.json()).path).toBe('/echo');
    expect((await fetch(`${url}/plugins/${ID}/public/index.html`)).status).toBe(200);
    for (const route of ['', '/config', '/logs']) {
      expect([route, (await fetch(`${url}/api/v1/plugins/${ID}${route}`, { headers: AUTH })).status]).toEqual([route, 200]);
    }
    expect(await ok('plugin', 'disable', ID)).toContain(`disabled ${ID}`);
    expect(await ok('plugin', 'enable', ID)).toContain(`enabled ${ID}`);
    expect(await ok('plugin', 'remove', ID)).toContain(`removed ${ID}`);
    expect(await ok('plugin', 'add', bundle, '--enable')).toContain(`enabled ${ID}`);
  });

  it('SIGTERM with an upload cut off mid-body stops the server and its plugin', async () => {
    const shown = await (await fetch(`${url}/api/v1/plugins/${ID}`, { headers: AUTH })).json();
    expect(shown.state).toBe('running');
    const pluginPid = shown.pid as number;

    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /api/v1/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n` +
      'Content-Type: application/gzip\r\nContent-Length: 10000000\r\n\r\n');
    socket.write(Buffer.alloc(100_000, 1));
    await new Promise((r) => setTimeout(r, 300));

    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    // A bound on the wait: before the fix this hung until the client gave up.
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), 40_000); })]);
    clearTimeout(timer);
    expect(code).toBe(0);
    expect(output.text).toContain('stopping plugins...');
    expect(await waitGone(pluginPid, 10_000)).toBe(true);
    await closed;
  }, 90_000);
});
