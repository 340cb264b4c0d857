import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packBundle } from '../../src/bundle';
import { ALWAYS_IGNORED, compileIgnore } from '../../src/bundle/pack-ignore';
import { Errors } from '../../src/errors';
import { MANIFEST } from '../fixtures/bundles/hostile';
import { rejected } from '../fixtures/expect-error';

/** A plugin folder holding every kind of litter that never belongs in a bundle, beside what does. */
const KEPT = ['plugin.json', 'bin/run', 'lib/util.py', 'assets/logo.png', 'docs/guide.md', 'cache/data.json', '.gitignore', 'env.txt'];
const JUNK = [
  '.git/HEAD', '.git/objects/ab/cdef', 'lib/.git', '.hg/store', '.svn/entries',
  'lib/__pycache__/util.cpython-311.pyc', 'old.pyc', 'x.pyo', '.pytest_cache/v/cache', '.mypy_cache/3.11/x.json', '.ruff_cache/c',
  'node_modules/dep/index.js', 'node_modules/.cache/junk',
  '.idea/workspace.xml', '.vscode/settings.json', 'lib/.util.py.swp', 'lib/.util.py.swo', 'lib/util.py~', '.DS_Store', 'assets/.DS_Store', 'Thumbs.db', 'desktop.ini', 'lib/.#util.py',
];

function writeTree(root: string, files: string[], manifest: object): void {
  for (const name of files) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), name === 'plugin.json' ? JSON.stringify(manifest) : `content of ${name}\n`);
  }
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
}

describe('what pack leaves out', () => {
  let work: string;
  let src: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-pack-ignore-'));
    src = path.join(work, 'src');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it('leaves out version control, caches, editor and system files, and an executable plugin\'s node_modules', async () => {
    writeTree(src, [...KEPT, ...JUNK], MANIFEST);
    // Emacs lock files are dangling symbolic links; packing refuses links, so this one must be skipped, not refused.
    fs.symlinkSync('user@host.1234', path.join(src, 'lib', '.#lock.py'));
    const out = path.join(work, 'p.tar.gz');
    const result = await packBundle(src, out);
    const listed = tarList(out).filter((n) => !n.endsWith('/'));
    expect(listed.sort()).toEqual([...KEPT].sort());
    expect(result.files).toBe(KEPT.length);
    expect(result.contentBytes).toBe(KEPT.reduce((n, f) => n + fs.statSync(path.join(src, f)).size, 0));
    // A left-out folder is reported once, not file by file.
    expect(result.skipped.map((s) => s.path)).toEqual(expect.arrayContaining(['.git/', 'lib/.git', 'lib/__pycache__/', 'node_modules/', '.idea/', 'lib/.#lock.py']));
    expect(result.skipped.find((s) => s.path === 'lib/__pycache__/')).toEqual({ path: 'lib/__pycache__/', pattern: '__pycache__/', source: 'always' });
  });

  it('keeps node_modules for a node runtime entry, which may require its packages, but not its .cache', async () => {
    const manifest = { ...MANIFEST, server: { runtime: 'node', entry: 'index.js' } };
    writeTree(src, ['plugin.json', 'index.js', 'node_modules/dep/index.js', 'node_modules/.cache/junk', 'node_modules/dep/node_modules/.cache/x'], manifest);
    const result = await packBundle(src, path.join(work, 'p.tar.gz'));
    expect(result.entries).toContain('node_modules/dep/index.js');
    expect(result.entries.filter((e) => e.includes('.cache'))).toEqual([]);
  });

  it('leaves out what the manifest lists under pack.ignore', async () => {
    const manifest = { ...MANIFEST, pack: { ignore: ['*.md', 'cache/', '/env.txt', 'assets/**/*.psd', 'tests'] } };
    writeTree(src, [...KEPT, 'sub/env.txt', 'assets/src/deep/art.psd', 'assets/art.psd', 'tests/test_a.py', 'lib/tests/t.py', 'cache.txt'], manifest);
    const result = await packBundle(src, path.join(work, 'p.tar.gz'));
    const files = result.entries.filter((n) => !n.endsWith('/'));
    expect(files.sort()).toEqual(['.gitignore', 'assets/logo.png', 'bin/run', 'cache.txt', 'lib/util.py', 'plugin.json', 'sub/env.txt']);
    expect(result.skipped).toContainEqual({ path: 'docs/guide.md', pattern: '*.md', source: 'pack.ignore' });
    expect(result.skipped).toContainEqual({ path: 'cache/', pattern: 'cache/', source: 'pack.ignore' });
  });

  it('refuses a pattern that would leave out the manifest or a file it names', async () => {
    writeTree(src, KEPT, { ...MANIFEST, pack: { ignore: ['bin/'] } });
    const err = await rejected(packBundle(src, path.join(work, 'p.tar.gz')));
    expect(err.code).toBe(Errors.PACK_IGNORES_NEEDED_FILE.code);
    expect(err.message).toContain('pack.ignore pattern "bin/" leaves out "bin/run" (manifest field server.executable names it)');
    writeTree(src, KEPT, { ...MANIFEST, pack: { ignore: ['*.json'] } });
    expect((await rejected(packBundle(src, path.join(work, 'p.tar.gz')))).message).toContain('leaves out "plugin.json" (it is the manifest)');
    expect(fs.existsSync(path.join(work, 'p.tar.gz'))).toBe(false);
  });

  it('compiles globs as documented', () => {
    const m = (pattern: string, rel: string, isDir = false) => compileIgnore(pattern, 'pack.ignore').matches(rel, isDir);
    expect([m('*.log', 'a.log'), m('*.log', 'x/y/a.log'), m('*.log', 'a.log.txt'), m('*.log', 'log')]).toEqual([true, true, false, false]);
    expect([m('a?c', 'abc'), m('a?c', 'a/c'), m('a*', 'a/b')]).toEqual([true, false, false]);
    expect([m('docs/*.md', 'docs/a.md'), m('docs/*.md', 'x/docs/a.md'), m('docs/*.md', 'docs/x/a.md')]).toEqual([true, false, false]);
    expect([m('/tmp', 'tmp'), m('/tmp', 'x/tmp'), m('tmp', 'x/tmp')]).toEqual([true, false, true]);
    expect([m('a/**/b', 'a/b'), m('a/**/b', 'a/x/y/b'), m('**/b', 'b'), m('a/**', 'a/x/y'), m('a/**', 'a')]).toEqual([true, true, true, true, false]);
    expect([m('out/', 'out', true), m('out/', 'out', false)]).toEqual([true, false]);
    expect([m('a.b', 'axb'), m('(x)+', '(x)+')]).toEqual([false, true]);
    for (const p of ALWAYS_IGNORED) expect(() => compileIgnore(p, 'always')).not.toThrow();
  });
});
