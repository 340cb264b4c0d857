/**
 * The newcomer's path, end to end with the built command only: `plughost serve` in one
 * process, and `plughost pack` / `plughost plugin ...` and HTTP requests from outside it.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { watchStdout } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const ID = 'com.example.hello';

describe('hello through the CLI', () => {
  let work: string;
  let server: ChildProcess;
  let url = '';
  let token = '';

  const plughost = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, PLUGHOST_URL: url, PLUGHOST_TOKEN: token } }, (error, stdout, stderr) =>
        resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-e2e-'));
    // The server makes its own admin token on first start, as for a new user.
    server = spawn(process.execPath, [BIN, 'serve', '--data-dir', path.join(work, 'data'), '--port', '0'], { cwd: work, env: { ...process.env, PLUGHOST_ADMIN_TOKEN: '' } });
    const output = watchStdout(server);
    token = (await output.waitFor(/admin token .*: (\S+)/, 'serve did not start'))[1];
    url = /listening on (\S+)/.exec(output.text)![1];
    expect(fs.readFileSync(path.join(work, 'data', 'admin-token'), 'utf8').trim()).toBe(token);
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.on('exit', resolve));
      server.kill('SIGINT');
      await exited;
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('packs, adds, enables, serves, reconfigures, disables and removes hello', async () => {
    const bundle = path.join(work, 'hello.tar.gz');
    const packed = await plughost('pack', path.join(ROOT, 'examples', 'hello'), '-o', bundle);
    expect(packed.status).toBe(0);
    expect(packed.stdout).toContain(`wrote ${bundle}`);

    const added = await plughost('plugin', 'add', bundle);
    expect([added.status, added.stdout]).toEqual([0, `installed ${ID} 0.1.0\n`]);
    expect((await fetch(`${url}/plugins/${ID}/hello`)).status).toBe(503);
    expect((await plughost('plugin', 'enable', ID)).stdout).toBe(`enabled ${ID} 0.1.0: running\n`);

    const first = await fetch(`${url}/plugins/${ID}/hello`);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ greeting: 'Hello', visits: 1 });

    const set = await plughost('plugin', 'config', 'set', ID, 'greeting=Good evening');
    expect(set.status).toBe(0);
    expect(await (await fetch(`${url}/plugins/${ID}/hello`)).json()).toEqual({ greeting: 'Good evening', visits: 2 });
    expect(JSON.parse((await plughost('plugin', 'config', 'get', ID, '--json')).stdout)).toEqual({ greeting: 'Good evening' });

    expect((await plughost('plugin', 'disable', ID)).stdout).toBe(`disabled ${ID} 0.1.0: not_running\n`);
    expect((await fetch(`${url}/plugins/${ID}/hello`)).status).toBe(503);
    expect((await plughost('plugin', 'remove', ID)).stdout).toBe(`removed ${ID}\n`);
    expect((await fetch(`${url}/plugins/${ID}/hello`)).status).toBe(404);
    const gone = await plughost('plugin', 'show', ID);
    expect([gone.status, gone.stderr]).toEqual([1, `plughost plugin show: no plugin with id "${ID}" is installed (HTTP 404 PLUGHOST_ERR_PLUGIN_NOT_FOUND)\n`]);
  });
});
