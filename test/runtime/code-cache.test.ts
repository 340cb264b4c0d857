/**
 * The V8 code cache of node plugins: written into the plugin's folder after a
 * first start, used (not rewritten) by the next, rewritten when V8 refuses a
 * damaged one, and never there when the host turns it off. Real plugin
 * processes, real files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { codeCacheFile } from '../../src/runtime/code-cache';
import { tempDir, until } from '../helpers';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });
const ID = 'com.test.code-cache';

let work: { dir: string; cleanup(): void };
const hosts: PluginHost[] = [];
const open = async (codeCache = true) => {
  const h = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: silent, defaults: { codeCache } });
  hosts.push(h);
  return h;
};

beforeEach(() => { work = tempDir(); });
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  work.cleanup();
});

test('written after the first start, used by the next, rewritten when damaged; the plugin answers each time', async () => {
  const h = await open();
  await h.install(await fixtureBundle(work.dir, { id: ID }));
  await h.enable(ID);
  const file = codeCacheFile(h.pluginDir(ID));
  await until(() => fs.existsSync(file), 'the code cache written after the first start');
  const written = fs.readFileSync(file);
  expect(written.length).toBeGreaterThan(0);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);

  // A restart with the cache: V8 takes it, so nothing rewrites it (the rewrite would come a second after the start).
  await h.disable(ID);
  await h.enable(ID);
  expect((await h.callHook(ID, 'Append', { text: 'x' })).payload).toEqual({ text: `x[${ID}]` });
  await new Promise((r) => setTimeout(r, 2_000));
  expect(fs.readFileSync(file).equals(written)).toBe(true);

  // A damaged cache is refused by V8: the plugin starts as usual and the cache is made again.
  fs.writeFileSync(file, Buffer.alloc(written.length, 0xab));
  await h.disable(ID);
  await h.enable(ID);
  expect((await h.callHook(ID, 'Append', { text: 'y' })).payload).toEqual({ text: `y[${ID}]` });
  await until(() => !fs.readFileSync(file).equals(Buffer.alloc(written.length, 0xab)), 'the damaged cache made again');
  // No temporary file is left beside it.
  expect(fs.readdirSync(h.pluginDir(ID)).filter((f) => f.startsWith('.plughost-code-cache'))).toEqual([path.basename(file)]);
});

test('a host with codeCache off starts plugins without one', async () => {
  const on = await open();
  await on.install(await fixtureBundle(work.dir, { id: ID }));
  await on.enable(ID);
  await until(() => fs.existsSync(codeCacheFile(on.pluginDir(ID))), 'the code cache');
  await on.close();
  hosts.splice(0);

  const off = await open(false);
  fs.rmSync(codeCacheFile(off.pluginDir(ID)));
  expect((await off.get(ID)).state).toBe('running');
  expect((await off.callHook(ID, 'Append', { text: 'z' })).payload).toEqual({ text: `z[${ID}]` });
  await new Promise((r) => setTimeout(r, 2_000));
  expect(fs.existsSync(codeCacheFile(off.pluginDir(ID)))).toBe(false);
});
