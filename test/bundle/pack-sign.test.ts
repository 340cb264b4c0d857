import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractBundle, generateKeyPair, packBundle, signBundle, verifyBundle, verifyBundleFile } from '../../src/bundle';
import { Errors } from '../../src/errors';
import { MANIFEST } from '../fixtures/bundles/hostile';
import { caught, rejected } from '../fixtures/expect-error';

function writeTree(root: string, files: Record<string, string | Buffer>, exec: string[] = []): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), content);
  }
  for (const name of exec) fs.chmodSync(path.join(root, name), 0o755);
}

const FILES: Record<string, string | Buffer> = {
  'plugin.json': JSON.stringify(MANIFEST),
  'bin/run': '#!/bin/sh\necho hi\n',
  'lib/data.bin': Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256)),
  'lib/empty.txt': '',
  [`docs/${'long-name-'.repeat(12)}.md`]: '# long',
  '.git/HEAD': 'ref: refs/heads/main\n',
  'node_modules/.cache/junk': 'junk',
  'node_modules/dep/index.js': 'module.exports = 1;\n',
};

describe('packing', () => {
  let work: string;
  let src: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-pack-'));
    src = path.join(work, 'src');
    writeTree(src, FILES, ['bin/run']);
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it('writes sorted entries with fixed owners, times and modes, skipping .git and node_modules', async () => {
    const out = path.join(work, 'a.tar.gz');
    const result = await packBundle(src, out);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvzf', out], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const lines = listing.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(result.entries);
    expect(result.entries).toEqual([...result.entries].sort());
    expect(result.entries).not.toContain('.git/');
    expect(result.entries).not.toContain('node_modules/.cache/');
    // An executable plugin's node_modules is never run; pack-ignore.test.ts covers the node runtime keeping it.
    expect(result.entries).not.toContain('node_modules/dep/index.js');
    for (const line of lines) expect(line).toMatch(/^[-d]rw[-x]r-[-x]r-[-x] 0\/0 +\d+ 2000-01-01 00:00:00 /);
    expect(lines.find((l) => l.endsWith(' bin/run'))).toMatch(/^-rwxr-xr-x/);
    expect(lines.find((l) => l.endsWith(' plugin.json'))).toMatch(/^-rw-r--r--/);
  });

  it('packs the same folder to the same bytes, wherever it is and whatever its mtimes', async () => {
    const a = await packBundle(src, path.join(work, 'a.tar.gz'));
    const b = await packBundle(src, path.join(work, 'b.tar.gz'));
    const copy = path.join(work, 'elsewhere', 'copy');
    fs.cpSync(src, copy, { recursive: true });
    fs.utimesSync(path.join(copy, 'plugin.json'), new Date('2021-05-05'), new Date('2021-05-05'));
    const c = await packBundle(copy, path.join(work, 'c.tar.gz'));
    expect(fs.readFileSync(a.path).equals(fs.readFileSync(b.path))).toBe(true);
    expect(fs.readFileSync(a.path).equals(fs.readFileSync(c.path))).toBe(true);
    expect(a.sha256).toBe(c.sha256);
    expect(fs.readFileSync(a.path)[9]).toBe(3);
  });

  it('round-trips pack, sign, verify and extract byte for byte', async () => {
    const keys = generateKeyPair();
    const packed = await packBundle(src, path.join(work, 'hello.tar.gz'));
    fs.writeFileSync(`${packed.path}.sig`, signBundle(packed.path, keys.privateKey).toString('base64'));
    expect(verifyBundleFile(packed.path, { trustedKeys: [keys.publicKey], required: true })?.keyIndex).toBe(0);
    const extracted = await extractBundle(packed.path, path.join(work, 'installed'));
    expect(extracted.sha256).toBe(packed.sha256);
    for (const name of Object.keys(FILES).filter((n) => !n.startsWith('.git/') && !n.startsWith('node_modules/'))) {
      expect(fs.readFileSync(path.join(extracted.path, name)).equals(fs.readFileSync(path.join(src, name)))).toBe(true);
    }
    expect(fs.existsSync(path.join(extracted.path, '.git'))).toBe(false);
    expect(fs.statSync(path.join(extracted.path, 'bin/run')).mode & 0o777).toBe(0o755);
  });

  it('validates the manifest and its files before writing anything', async () => {
    const out = path.join(work, 'bad.tar.gz');
    fs.writeFileSync(path.join(src, 'plugin.json'), JSON.stringify({ ...MANIFEST, version: 'latest' }));
    expect((await rejected(packBundle(src, out))).code).toBe(Errors.MANIFEST_INVALID.code);
    fs.writeFileSync(path.join(src, 'plugin.json'), JSON.stringify({ ...MANIFEST, server: { executable: 'bin/missing' } }));
    expect((await rejected(packBundle(src, out))).message).toContain('bin/missing');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses symlinks in the source folder', async () => {
    fs.symlinkSync('/etc/passwd', path.join(src, 'lib', 'passwd'));
    const err = await rejected(packBundle(src, path.join(work, 'x.tar.gz')));
    expect(err.code).toBe(Errors.PACK_UNSUPPORTED_FILE.code);
    expect(err.message).toContain('symbolic link');
  });
});

describe('signatures', () => {
  let work: string;
  let bundle: string;
  const keys = generateKeyPair();
  const other = generateKeyPair();
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-sig-'));
    bundle = path.join(work, 'b.tar.gz');
    fs.writeFileSync(bundle, 'pretend bundle bytes');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: work, encoding: 'utf8', stdio: 'pipe' });

  it('verifies raw and base64 signature files, with any trusted key', () => {
    const sig = signBundle(bundle, keys.privateKey);
    expect(sig.length).toBe(64);
    expect(verifyBundle(bundle, sig, [other.publicKey, keys.publicKey]).keyIndex).toBe(1);
    expect(verifyBundle(bundle, Buffer.from(`${sig.toString('base64')}\n`), [keys.publicKey]).keyIndex).toBe(0);
  });

  it('keeps its three failures apart', () => {
    const sig = signBundle(bundle, keys.privateKey);
    const unsigned = caught(() => verifyBundleFile(bundle, { trustedKeys: [keys.publicKey], required: true }));
    expect(unsigned.code).toBe(Errors.BUNDLE_UNSIGNED.code);
    expect(unsigned.status).toBe(401);
    expect(verifyBundleFile(bundle, { trustedKeys: [keys.publicKey] })).toBeNull();

    for (const bad of [sig.subarray(0, 63), Buffer.from('not base64 at all!'), Buffer.from(sig.subarray(0, 40).toString('base64')), Buffer.alloc(0)]) {
      const err = caught(() => verifyBundle(bundle, bad, [keys.publicKey]));
      expect(err.code).toBe(Errors.BUNDLE_SIGNATURE_MALFORMED.code);
      expect(err.status).toBe(400);
    }

    const untrusted = caught(() => verifyBundle(bundle, sig, [other.publicKey]));
    expect(untrusted.code).toBe(Errors.BUNDLE_SIGNATURE_UNTRUSTED.code);
    expect(untrusted.status).toBe(403);
    fs.appendFileSync(bundle, '!');
    expect(caught(() => verifyBundle(bundle, sig, [keys.publicKey])).code).toBe(Errors.BUNDLE_SIGNATURE_UNTRUSTED.code);
    expect(caught(() => verifyBundle(bundle, sig, [])).message).toContain('no trusted public keys');
  });

  it('names a key that is not Ed25519', () => {
    const rsa = openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024');
    const err = caught(() => verifyBundle(bundle, Buffer.alloc(64), [rsa]));
    expect(err.code).toBe(Errors.BAD_KEY.code);
    expect(err.message).toContain('it is a rsa key');
  });

  it('verifies what openssl signed', () => {
    openssl('genpkey', '-algorithm', 'ed25519', '-out', 'key.pem');
    openssl('pkey', '-in', 'key.pem', '-pubout', '-out', 'pub.pem');
    openssl('pkeyutl', '-sign', '-rawin', '-inkey', 'key.pem', '-in', bundle, '-out', 'sig.raw');
    const pub = fs.readFileSync(path.join(work, 'pub.pem'));
    const raw = fs.readFileSync(path.join(work, 'sig.raw'));
    expect(verifyBundle(bundle, raw, [pub]).keyIndex).toBe(0);
    openssl('base64', '-A', '-in', 'sig.raw', '-out', 'sig.b64');
    expect(verifyBundle(bundle, fs.readFileSync(path.join(work, 'sig.b64')), [pub]).keyIndex).toBe(0);
    expect(caught(() => verifyBundle(bundle, raw, [keys.publicKey])).code).toBe(Errors.BUNDLE_SIGNATURE_UNTRUSTED.code);
  });

  it('signs what openssl verifies', () => {
    fs.writeFileSync(path.join(work, 'pub.pem'), keys.publicKey);
    fs.writeFileSync(path.join(work, 'sig.raw'), signBundle(bundle, keys.privateKey));
    const out = openssl('pkeyutl', '-verify', '-pubin', '-inkey', 'pub.pem', '-rawin', '-in', bundle, '-sigfile', 'sig.raw');
    expect(out).toContain('Signature Verified Successfully');
    fs.writeFileSync(path.join(work, 'other.pem'), other.publicKey);
    expect(() => openssl('pkeyutl', '-verify', '-pubin', '-inkey', 'other.pem', '-rawin', '-in', bundle, '-sigfile', 'sig.raw')).toThrow();
  });
});
