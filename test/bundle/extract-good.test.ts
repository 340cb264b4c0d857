import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractBundle } from '../../src/bundle';
import { MANIFEST, entry, gz, plugin, tar } from '../fixtures/bundles/hostile';

const mode = (p: string) => fs.statSync(p).mode & 0o7777;

describe('extracting good bundles', () => {
  let work: string;
  let src: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-good-'));
    src = path.join(work, 'src', 'hello');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'plugin.json'), JSON.stringify(MANIFEST));
    fs.writeFileSync(path.join(src, 'bin', 'run'), '#!/bin/sh\necho hi\n');
    fs.chmodSync(path.join(src, 'bin', 'run'), 0o4755);
    const deep = path.join(src, 'assets', 'a-rather-long-folder-name-for-testing', 'another-long-folder-name-to-pass-100-bytes');
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'file-with-a-long-name-as-well.txt'), 'deep');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const deepFile = 'assets/a-rather-long-folder-name-for-testing/another-long-folder-name-to-pass-100-bytes/file-with-a-long-name-as-well.txt';

  it.each(['gnu', 'pax', 'ustar'])('reads a %s-format archive from GNU tar with the manifest at the root', async (format) => {
    const bundle = path.join(work, 'root.tar.gz');
    execFileSync('tar', [`--format=${format}`, '-czf', bundle, '-C', src, '.']);
    const dest = path.join(work, 'installed', 'hello');
    const result = await extractBundle(bundle, dest);
    expect(result.path).toBe(dest);
    expect(result.manifest).toEqual(MANIFEST);
    expect(result.sha256).toBe(execFileSync('sha256sum', [bundle], { encoding: 'utf8' }).split(' ')[0]);
    expect(fs.readFileSync(path.join(dest, deepFile), 'utf8')).toBe('deep');
    expect(mode(path.join(dest, 'bin', 'run'))).toBe(0o755);
    expect(mode(dest)).toBe(0o755);
    expect(fs.readdirSync(path.join(work, 'installed'))).toEqual(['hello']);
  });

  it('reads a bundle whose manifest is inside one top-level folder', async () => {
    const bundle = path.join(work, 'folder.tar.gz');
    execFileSync('tar', ['-czf', bundle, '-C', path.dirname(src), 'hello']);
    const dest = path.join(work, 'out');
    await extractBundle(bundle, dest);
    expect(fs.readdirSync(dest).sort()).toEqual(['assets', 'bin', 'plugin.json']);
    expect(fs.readFileSync(path.join(dest, 'bin', 'run'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
  });

  it('strips setuid, setgid and sticky bits and keeps execute bits', async () => {
    const bundle = path.join(work, 'modes.tar.gz');
    fs.writeFileSync(bundle, gz(tar(
      ...plugin(),
      entry('suid', 'x', { mode: 0o4755 }),
      entry('sgid', 'x', { mode: 0o2750 }),
      entry('private-exec', 'x', { mode: 0o700 }),
      entry('world-writable', 'x', { mode: 0o666 }),
      entry('sticky/', '', { type: '5', mode: 0o1777 }),
    )));
    const dest = path.join(work, 'out');
    await extractBundle(bundle, dest);
    expect(mode(path.join(dest, 'suid'))).toBe(0o755);
    expect(mode(path.join(dest, 'sgid'))).toBe(0o755);
    expect(mode(path.join(dest, 'private-exec'))).toBe(0o755);
    expect(mode(path.join(dest, 'world-writable'))).toBe(0o644);
    expect(mode(path.join(dest, 'sticky'))).toBe(0o755);
  });

  it('accepts the "./" root entry and "./" prefixes that tar writes', async () => {
    const bundle = path.join(work, 'dot.tar.gz');
    fs.writeFileSync(bundle, gz(tar(entry('./', '', { type: '5', mode: 0o755 }), ...plugin('./'))));
    const result = await extractBundle(bundle, path.join(work, 'out'));
    expect(result.entries).toBe(3);
    expect(fs.readdirSync(result.path).sort()).toEqual(['bin', 'plugin.json']);
  });
});
