import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MANIFEST, gz, plugin, special, tar } from '../fixtures/bundles/hostile';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('the plughost command', () => {
  let work: string;

  beforeAll(() => {
    // Type errors elsewhere in the tree must not block these tests: tsc still emits, so only
    // the presence of the compiled CLI is checked.
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    expect(fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))).toBe(true);
  }, 180_000);

  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-cli-'));
    fs.mkdirSync(path.join(work, 'hello', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(work, 'hello', 'plugin.json'), JSON.stringify(MANIFEST));
    fs.writeFileSync(path.join(work, 'hello', 'bin', 'run'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const plughost = (...args: string[]): Run => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('prints help', () => {
    const r = plughost('--help');
    expect(r.status).toBe(0);
    for (const command of ['pack', 'keygen', 'sign', 'verify', 'manifest check', 'serve']) expect(r.stdout).toContain(`plughost ${command}`);
    expect(plughost().status).toBe(2);
    expect(plughost('frobnicate').stderr).toContain('unknown command "frobnicate"');
  });

  it('prints what pack wrote and left out: file count and size, and the lists with --verbose', () => {
    fs.writeFileSync(path.join(work, 'hello', 'plugin.json'), JSON.stringify({ ...MANIFEST, pack: { ignore: ['*.log'] } }));
    fs.mkdirSync(path.join(work, 'hello', '__pycache__'));
    fs.writeFileSync(path.join(work, 'hello', '__pycache__', 'x.pyc'), 'junk');
    fs.writeFileSync(path.join(work, 'hello', 'debug.log'), 'junk');
    const bytes = fs.statSync(path.join(work, 'hello', 'plugin.json')).size + fs.statSync(path.join(work, 'hello', 'bin', 'run')).size;
    const packed = plughost('pack', 'hello', '-o', 'p.tar.gz');
    expect(packed.status).toBe(0);
    const compressed = fs.statSync(path.join(work, 'p.tar.gz')).size;
    expect(packed.stdout).toContain(`packed ${MANIFEST.id} ${MANIFEST.version}: 2 files, ${bytes} B (${compressed} B compressed)\n`);
    expect(packed.stdout).toContain('left out 2 paths (__pycache__/, *.log); --verbose lists them\n');
    const verbose = plughost('pack', 'hello', '-o', 'p.tar.gz', '--verbose');
    expect(verbose.status).toBe(0);
    expect(verbose.stdout).toContain('  bin/run\n  plugin.json\n');
    expect(verbose.stdout).toContain('  left out __pycache__/ (never bundled: __pycache__/)\n  left out debug.log (pack.ignore: *.log)\n');
  });

  it('packs, keygens, signs and verifies', () => {
    const packed = plughost('pack', 'hello');
    expect(packed.stderr).toBe('');
    expect(packed.status).toBe(0);
    const bundle = path.join(work, `${MANIFEST.id}-${MANIFEST.version}.tar.gz`);
    expect(packed.stdout).toContain(`wrote ${bundle}`);
    expect(plughost('pack', 'hello', '-o', 'again.tar.gz').status).toBe(0);
    expect(fs.readFileSync(path.join(work, 'again.tar.gz')).equals(fs.readFileSync(bundle))).toBe(true);

    expect(plughost('keygen', '--out', 'dev').status).toBe(0);
    expect(fs.statSync(path.join(work, 'dev.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(work, 'dev.pub.pem'), 'utf8')).toContain('BEGIN PUBLIC KEY');
    expect(plughost('keygen', '--out', 'dev').stderr).toContain('EEXIST');

    expect(plughost('sign', path.basename(bundle), '--key', 'dev.pem').status).toBe(0);
    expect(fs.readFileSync(`${bundle}.sig`, 'utf8')).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
    const ok = plughost('verify', path.basename(bundle), '--pubkey', 'dev.pub.pem');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('signature ok');

    // openssl verifies what the CLI signed, once the base64 is decoded to raw bytes.
    fs.writeFileSync(path.join(work, 'sig.raw'), Buffer.from(fs.readFileSync(`${bundle}.sig`, 'utf8'), 'base64'));
    const verified = execFileSync('/usr/bin/openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'dev.pub.pem', '-rawin', '-in', bundle, '-sigfile', 'sig.raw'], { cwd: work, encoding: 'utf8' });
    expect(verified).toContain('Signature Verified Successfully');
  });

  it('reports the three signature failures with distinct messages and a non-zero exit', () => {
    plughost('pack', 'hello', '-o', 'b.tar.gz');
    plughost('keygen', '--out', 'mine');
    plughost('keygen', '--out', 'theirs');
    const unsigned = plughost('verify', 'b.tar.gz', '--pubkey', 'mine.pub.pem');
    expect(unsigned.status).toBe(1);
    expect(unsigned.stderr).toContain('is unsigned');
    fs.writeFileSync(path.join(work, 'b.tar.gz.sig'), 'garbage!');
    expect(plughost('verify', 'b.tar.gz', '--pubkey', 'mine.pub.pem').stderr).toContain('is not an Ed25519 signature');
    plughost('sign', 'b.tar.gz', '--key', 'theirs.pem');
    const untrusted = plughost('verify', 'b.tar.gz', '--pubkey', 'mine.pub.pem');
    expect(untrusted.status).toBe(1);
    expect(untrusted.stderr).toContain('verifies under none of the 1 trusted key(s)');
    expect(plughost('verify', 'b.tar.gz', '--pubkey', 'mine.pub.pem', '--pubkey', 'theirs.pub.pem').status).toBe(0);
    fs.renameSync(path.join(work, 'b.tar.gz.sig'), path.join(work, 'elsewhere.sig'));
    expect(plughost('verify', 'b.tar.gz', '--pubkey', 'theirs.pub.pem', '--sig', 'elsewhere.sig').status).toBe(0);
  });

  it('checks manifests in folders and bundles, printing every problem', () => {
    expect(plughost('manifest', 'check', 'hello').stdout).toContain('ok (com.example.hostile 1.0.0)');
    fs.writeFileSync(path.join(work, 'hello', 'plugin.json'), JSON.stringify({ id: 'x', version: 'new', server: { executables: { 'linux-amd64': '/bin/sh' } } }));
    const bad = plughost('manifest', 'check', 'hello');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('4 problems');
    for (const field of ['id', 'name', 'version', 'server.executables.linux-amd64']) expect(bad.stderr).toContain(`  - ${field}: `);

    fs.writeFileSync(path.join(work, 'hostile.tar.gz'), gz(tar(...plugin(), special('link', '2', { linkpath: '/etc/shadow' }))));
    const hostile = plughost('manifest', 'check', 'hostile.tar.gz');
    expect(hostile.status).toBe(1);
    expect(hostile.stderr).toContain('"link" is a symbolic link');

    fs.writeFileSync(path.join(work, 'missing.tar.gz'), gz(tar(...plugin().slice(0, 1))));
    expect(plughost('manifest', 'check', 'missing.tar.gz').stderr).toContain('server.executable names "bin/run"');
    expect(plughost('pack', 'hello').status).toBe(1);
  });

  it('refuses a serve command line it cannot use, before starting anything', () => {
    const r = plughost('serve', '--port', 'eighty');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--port eighty: expected a port number 0-65535');
    const metrics = plughost('serve', '--metrics-port', 'ninety');
    expect(metrics.status).toBe(2);
    expect(metrics.stderr).toContain('--metrics-port ninety: expected a port number 0-65535');
    const memory = plughost('serve', '--memory-limit-mb', '1.5GB');
    expect(memory.status).toBe(2);
    expect(memory.stderr).toContain('--memory-limit-mb 1.5GB: expected a whole number of MiB (0 for no limit)');
    const node = plughost('serve', '--node-id', 'no spaces');
    expect(node.status).toBe(2);
    expect(node.stderr).toContain('node id "no spaces" (from --node-id) is invalid: expected 1 to 63 characters');
  });

  it('refuses to serve with an admin token under 32 characters, saying why, before listening', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', path.join(work, 'data'), '--port', '0'], {
      cwd: work, encoding: 'utf8', env: { ...process.env, PLUGHOST_ADMIN_TOKEN: 'hunter2' }, timeout: 60_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('the admin token from PLUGHOST_ADMIN_TOKEN is 7 characters; at least 32 are required');
    expect(r.stdout).not.toContain('listening on');
  });
});
