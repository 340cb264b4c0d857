/**
 * `plughost init` as a new author runs it: the built CLI in a child process, then real npm in
 * the new project (`npm install --offline`: plughost and its toolchain are `file:` links to this
 * checkout, @plughost/sdk a tarball packed from it, its few dependencies from npm's cache), its `npm test`, `npm run build` and `npm run deploy`
 * into a real server on a loopback port, whose PluginHost then answers the plugin's route and hook.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/server';
import { pythonPeer } from '../conformance/polyglot-peers';
import { availableOrSkip } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const TOKEN = 'init-test-token-of-at-least-32-characters';
const ID = 'com.acme.greeter';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the server under test runs in this process and must keep answering. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function plughost(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return run(process.execPath, [BIN, ...args], cwd, { ...process.env, ...env });
}

function npm(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  // npm_config_* from the npm that started jest would steer this one (e.g. a workspace): leave them out.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return run('npm', args, cwd, { ...clean, ...env });
}

async function ok(pending: Promise<Run>, what: string): Promise<string> {
  const r = await pending;
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('plughost init', () => {
  let work: string;

  beforeAll(() => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    expect(fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'commands', 'init.js'))).toBe(true);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-init-'));
  });

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('refuses a folder that is not empty, naming it and what it holds, unless --force', async () => {
    const dir = path.join(work, 'busy');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const refused = await plughost(['init', dir, '--id', 'com.acme.busy', '--name', 'Busy'], work);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe(`plughost init: "${dir}" is not empty (it holds "notes.txt"); choose a new or empty folder, or pass --force to write the project over what is there\n`);
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']);

    expect((await plughost(['init', dir, '--id', 'com.acme.busy', '--name', 'Busy', '--force'], work)).status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))).toMatchObject({ id: 'com.acme.busy', name: 'Busy' });
  });

  it('refuses a bad id and an unknown language as usage errors', async () => {
    const badId = await plughost(['init', path.join(work, 'x1'), '--id', 'no spaces!', '--name', 'X'], work);
    expect([badId.status, badId.stderr.split('\n')[0]]).toEqual([2, 'plughost init: --id "no spaces!": expected 3 to 190 characters of a-z A-Z 0-9 . _ - (e.g. com.example.greeter)']);
    const badLang = await plughost(['init', path.join(work, 'x2'), '--lang', 'cobol'], work);
    expect([badLang.status, badLang.stderr.split('\n')[0]]).toEqual([2, 'plughost init: --lang cobol: expected one of typescript, python, go']);
    expect(fs.existsSync(path.join(work, 'x1'))).toBe(false);
  });

  it('without flags or a terminal, derives the id and name from the folder and says so', async () => {
    const r = await plughost(['init', 'my_first-plugin'], work);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no --id given and no terminal to ask on: using id "com.example.my-first-plugin" (change it in plugin.json)\n');
    expect(r.stdout).toContain('no --name given and no terminal to ask on: using name "My first plugin" (change it in plugin.json)\n');
    expect(JSON.parse(fs.readFileSync(path.join(work, 'my_first-plugin', 'plugin.json'), 'utf8'))).toMatchObject({ id: 'com.example.my-first-plugin', name: 'My first plugin' });
  });

  it('--plughost and --sdk write other specs (a bare path as file:), and the tools then come from the registry at plughost\'s versions', async () => {
    await ok(plughost(['init', 'tarball', '--id', 'com.acme.tarball', '--name', 'T', '--plughost', '../plughost-0.1.0.tgz', '--sdk', '../plughost-sdk-0.1.0.tgz'], work), 'init --plughost --sdk');
    const own = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies;
    expect(JSON.parse(fs.readFileSync(path.join(work, 'tarball', 'package.json'), 'utf8')).devDependencies).toEqual({
      plughost: 'file:../plughost-0.1.0.tgz', '@plughost/sdk': 'file:../plughost-sdk-0.1.0.tgz', typescript: own.typescript, esbuild: own.esbuild, '@types/node': own['@types/node'],
    });
  });

  it('asks for the id (again, after a bad one) and the name on a terminal', () => {
    if (spawnSync('script', ['--version']).status !== 0) return void process.stderr.write('SKIP terminal prompts: no `script` (util-linux) on PATH\n');
    const dir = path.join(work, 'asked');
    // script(1) runs the command on a pseudo-terminal and types what it reads from its stdin.
    const r = spawnSync('script', ['-qec', `${process.execPath} ${BIN} init ${dir}`, '/dev/null'], { input: 'bad id!\ncom.acme.asked\nAsked plugin\n', encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('plugin id (com.example.asked): ');
    expect(r.stdout).toContain('id "bad id!": expected 3 to 190 characters');
    expect(r.stdout).toContain('plugin name (Asked): ');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))).toMatchObject({ id: 'com.acme.asked', name: 'Asked plugin' });
  });

  it('--lang python copies the Python starter under the new id, and it conforms', async () => {
    const dir = path.join(work, 'py');
    await ok(plughost(['init', dir, '--lang', 'python', '--id', 'com.acme.py', '--name', 'Py'], work), 'init --lang python');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))).toMatchObject({ id: 'com.acme.py', name: 'Py', server: { executable: 'bin/run' } });
    expect(fs.statSync(path.join(dir, 'bin', 'run')).mode & 0o111).not.toBe(0);
    expect(fs.existsSync(path.join(dir, 'main.py'))).toBe(true);
    await ok(plughost(['pack', dir, '-o', path.join(work, 'py.tar.gz')], work), 'pack the python starter');
    const python = pythonPeer();
    if (!availableOrSkip('the Python starter\'s conformance', python.ok ? null : `${python.missing}; ${python.install}`)) return;
    expect(await ok(plughost(['conformance', path.join(work, 'py.tar.gz')], work), 'conformance of the python starter')).toContain('the plugin conforms');
  }, 60_000);

  it('--lang go copies the Go starter, whose build.sh builds it offline, and it conforms', async () => {
    const dir = path.join(work, 'go');
    const created = await ok(plughost(['init', dir, '--lang', 'go', '--id', 'com.acme.go', '--name', 'Go'], work), 'init --lang go');
    expect(created).toContain('  sh build.sh ');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))).toMatchObject({
      id: 'com.acme.go', name: 'Go', server: { executable: 'bin/go-example' }, pack: { ignore: ['main.go', 'gen/', 'build.sh', '.gitignore'] },
    });
    expect(fs.readFileSync(path.join(dir, 'README.md'), 'utf8')).toMatch(/^# Go\n\nA plughost plugin in Go, `com\.acme\.go`/);
    const go = spawnSync('go', ['version']);
    const goPlugin = '/usr/share/gocode/src/github.com/hashicorp/go-plugin';
    const missing = go.status !== 0 ? 'go (not found on PATH)' : fs.existsSync(goPlugin) ? null : goPlugin;
    if (!availableOrSkip('the Go starter\'s build', missing && `${missing}; apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-goprotobuf-dev`)) return;
    // The build cache the Go interop tests share, so a second build is quick.
    await ok(run('sh', ['build.sh'], dir, { ...process.env, GOCACHE: path.join(ROOT, '.cache', 'interop-go', 'gocache') }), 'sh build.sh');
    const packed = await ok(plughost(['pack', dir, '-o', path.join(work, 'go.tar.gz'), '--verbose'], work), 'pack the go starter');
    expect(packed).toContain('  bin/go-example\n');
    expect(packed).toContain('  left out main.go (pack.ignore: main.go)\n');
    expect(await ok(plughost(['conformance', path.join(work, 'go.tar.gz')], work), 'conformance of the go starter')).toContain('the plugin conforms');
  }, 180_000);

  describe('the TypeScript project', () => {
    const dir = (): string => path.join(work, 'greeter');
    let server: RunningServer;
    const env = (): Record<string, string> => ({ PLUGHOST_URL: server.url, PLUGHOST_TOKEN: TOKEN });

    beforeAll(async () => {
      server = await startServer({ dataDir: path.join(work, 'data'), port: 0, adminToken: TOKEN, logger: pino({ level: 'silent' }) });
    });

    afterAll(async () => {
      await server?.close();
    });

    it('installs offline, and its npm test, npm run build and npm run deploy work', async () => {
      const created = await ok(plughost(['init', dir(), '--id', ID, '--name', 'Greeter'], work), 'init');
      expect(created).toContain(`created ${ID} (Greeter) in ${dir()}, typescript`);
      const pkg = JSON.parse(fs.readFileSync(path.join(dir(), 'package.json'), 'utf8'));
      expect(pkg.devDependencies).toEqual({
        plughost: `file:${ROOT}`,
        // The SDK's own package, packed from this checkout's build: what an author who installs the SDK alone has.
        '@plughost/sdk': `file:${path.join(ROOT, 'dist', 'packages', 'plughost-sdk-0.1.0.tgz')}`,
        typescript: `file:${path.join(ROOT, 'node_modules', 'typescript')}`,
        esbuild: `file:${path.join(ROOT, 'node_modules', 'esbuild')}`,
        '@types/node': `file:${path.join(ROOT, 'node_modules', '@types', 'node')}`,
      });
      expect(fs.readFileSync(path.join(dir(), 'src', 'settings.ts'), 'utf8')).toContain('  blocked_words: string[];\n');

      await ok(npm(['install', '--offline', '--no-audit', '--no-fund'], dir()), 'npm install --offline');
      // The code imports the SDK package it installed, not the host's copy of it.
      expect(fs.readFileSync(path.join(dir(), 'src', 'plugin.ts'), 'utf8')).toContain("from '@plughost/sdk';");
      expect(fs.readFileSync(path.join(dir(), 'test', 'plugin.test.ts'), 'utf8')).toContain("from '@plughost/sdk/testing';");
      expect(JSON.parse(fs.readFileSync(path.join(dir(), 'node_modules', '@plughost', 'sdk', 'package.json'), 'utf8')).name).toBe('@plughost/sdk');
      const tested = await ok(npm(['test'], dir()), 'npm test');
      expect(tested).toMatch(/^# pass 5$/m);
      expect(tested).toMatch(/^# fail 0$/m);

      await ok(npm(['run', 'build'], dir()), 'npm run build');
      const listed = spawnSync('tar', ['tzf', path.join(dir(), 'dist', 'plugin.tar.gz')], { encoding: 'utf8' }).stdout.split('\n');
      expect(listed).toEqual(expect.arrayContaining(['plugin.json', 'src/plugin.js', 'src/plugin.js.map']));
      expect(listed.filter((f) => f.endsWith('.ts'))).toEqual([]);

      const deployed = await ok(npm(['run', 'deploy'], dir(), env()), 'npm run deploy');
      expect(deployed).toContain(`installed ${ID} 0.1.0`);
      expect(deployed).toContain(`enabled ${ID}: running`);

      const hello = await fetch(`${server.url}/plugins/${ID}/hello`);
      expect([hello.status, await hello.json()]).toEqual([200, { greeting: 'Hello', user: null }]);
      expect(await server.host.callHook(ID, 'NoteWillBeSaved', { id: 'n1', text: '  buy milk ' })).toEqual({ payload: { id: 'n1', text: 'buy milk' }, rejected: false, reason: '' });
      expect(await server.host.callHook(ID, 'NoteWillBeSaved', { id: 'n2', text: 'cheap SPAM' })).toMatchObject({ rejected: true, reason: 'a note may not contain "spam"' });
    }, 240_000);

    it('takes a list setting from config set, with repeated keys or JSON', async () => {
      await ok(plughost(['plugin', 'config', 'set', ID, 'blocked_words=milk', 'blocked_words=eggs, bacon'], work, env()), 'config set with repeated keys');
      expect(await server.host.getConfig(ID)).toEqual({ greeting: 'Hello', blocked_words: ['milk', 'eggs, bacon'] });
      expect(await server.host.callHook(ID, 'NoteWillBeSaved', { id: 'n3', text: 'buy milk' })).toMatchObject({ rejected: true });
      expect(await server.host.callHook(ID, 'NoteWillBeSaved', { id: 'n4', text: 'spam' })).toMatchObject({ rejected: false });

      await ok(plughost(['plugin', 'config', 'set', ID, 'blocked_words=["a","b"]'], work, env()), 'config set with JSON');
      expect((await server.host.getConfig(ID)).blocked_words).toEqual(['a', 'b']);
      await ok(plughost(['plugin', 'config', 'set', ID, 'blocked_words='], work, env()), 'config set to an empty list');
      expect((await server.host.getConfig(ID)).blocked_words).toEqual([]);

      const bad = await plughost(['plugin', 'config', 'set', ID, 'blocked_words=[1,2]'], work, env());
      expect([bad.status, bad.stderr]).toEqual([2, expect.stringContaining('setting blocked_words is a list; expected a JSON list of strings such as ["a","b"]')]);
    });

    it('keeps the Settings type in step with plugin.json: types --check fails when stale, build refreshes it, and tsc catches code left behind', async () => {
      const manifestFile = path.join(dir(), 'plugin.json');
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
      expect(await ok(plughost(['types', '.', '--check'], dir()), 'types --check')).toBe('src/settings.ts is up to date\n');

      manifest.settings_schema.settings.push({ key: 'days', type: 'multiselect', options: [{ display_name: 'Monday', value: 'mon' }, { display_name: 'Tuesday', value: 'tue' }] });
      fs.writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
      const stale = await plughost(['types', '.', '--check'], dir());
      expect([stale.status, stale.stderr]).toEqual([1, `"src/settings.ts" does not match the settings_schema of "plugin.json"; run plughost types . to write it\n`]);
      expect(await ok(npm(['run', 'build'], dir()), 'npm run build after a new setting')).toContain('bundled src/plugin.ts');
      expect(fs.readFileSync(path.join(dir(), 'src', 'settings.ts'), 'utf8')).toContain('  days?: Array<"mon" | "tue">;\n');
      expect((await plughost(['types', '.', '--check'], dir())).status).toBe(0);

      manifest.settings_schema.settings[0].key = 'salutation';
      fs.writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
      const broken = await npm(['run', 'build'], dir());
      expect(broken.status).not.toBe(0);
      expect(broken.stdout).toMatch(/src\/plugin\.ts\(\d+,\d+\): error TS2339: Property 'greeting' does not exist on type 'Settings'/);
    }, 120_000);
  });
});
