import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractBundle } from '../../src/bundle';
import { Errors } from '../../src/errors';
import { rejected } from '../fixtures/expect-error';
import { HOSTILE_CASES, gz, plugin, tar } from '../fixtures/bundles/hostile';

describe('hostile bundles', () => {
  let work: string;
  let parent: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-hostile-'));
    parent = path.join(work, 'plugins');
    fs.mkdirSync(parent);
    fs.writeFileSync(path.join(parent, 'other-plugin.txt'), 'untouched');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('refuses: %s', async (_name, c) => {
    const bundlePath = path.join(work, 'hostile.tar.gz');
    fs.writeFileSync(bundlePath, c.bytes());
    const dest = path.join(parent, 'com.example.hostile');
    const err = await rejected(extractBundle(bundlePath, dest, c.limits));
    expect(err.code).toBe(c.code);
    for (const text of c.mentions) expect(err.message).toContain(text);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual(['other-plugin.txt']);
    expect(fs.readFileSync(path.join(parent, 'other-plugin.txt'), 'utf8')).toBe('untouched');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('stops a gzip bomb near the limit while streaming, not after inflating it', async () => {
    const c = HOSTILE_CASES.find((x) => x.name === 'gzip bomb')!;
    const bundlePath = path.join(work, 'bomb.tar.gz');
    fs.writeFileSync(bundlePath, c.bytes());
    const limit = c.limits!.maxUncompressedBytes!;
    const started = process.hrtime.bigint();
    const err = await rejected(extractBundle(bundlePath, path.join(parent, 'bomb'), c.limits));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(err.code).toBe(Errors.BUNDLE_UNCOMPRESSED_TOO_LARGE.code);
    // The bomb is 1 GiB; we may read at most one 64 KiB gunzip chunk past the 4 MiB limit.
    expect(err.details.inflated).toBeGreaterThan(limit);
    expect(err.details.inflated as number).toBeLessThanOrEqual(limit + 64 * 1024);
    expect(ms).toBeLessThan(3000);
    expect(fs.readdirSync(parent)).toEqual(['other-plugin.txt']);
  });

  it('leaves an existing destination alone', async () => {
    const bundlePath = path.join(work, 'good.tar.gz');
    fs.writeFileSync(bundlePath, gz(tar(...plugin())));
    const dest = path.join(parent, 'taken');
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, 'keep.txt'), 'mine');
    const err = await rejected(extractBundle(bundlePath, dest));
    expect(err.code).toBe(Errors.BUNDLE_DEST_EXISTS.code);
    expect(fs.readdirSync(dest)).toEqual(['keep.txt']);
    expect(fs.readdirSync(parent).sort()).toEqual(['other-plugin.txt', 'taken']);
  });

  it('removes a parent folder it created when the bundle is refused', async () => {
    const c = HOSTILE_CASES.find((x) => x.name === 'symlink')!;
    const bundlePath = path.join(work, 'link.tar.gz');
    fs.writeFileSync(bundlePath, c.bytes());
    await rejected(extractBundle(bundlePath, path.join(work, 'new', 'deeper', 'dest')));
    expect(fs.existsSync(path.join(work, 'new'))).toBe(false);
  });
});
