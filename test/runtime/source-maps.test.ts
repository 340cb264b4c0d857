/**
 * Stack traces of a packed TypeScript plugin name the author's file and line: `plughost pack`
 * (the built CLI, in a child process) writes the source map into the bundle, and the host maps
 * the stacks of a node entry that has one: through its code-cache preload (the default), or with
 * `--enable-source-maps` when the code cache is off. Plugins are real TypeScript projects in a
 * temp folder that import `plughost/sdk` through node_modules, as an author's do.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { nodeEntryArgs } from '../../src/protocol/process';
import { codeCacheFile } from '../../src/runtime/code-cache';
import { PluginHost } from '../../src/runtime/plugin-host';
import type { RuntimeDefaults } from '../../src/runtime/types';
import { tempDir } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const DEFAULTS: Partial<RuntimeDefaults> = { restartBackoffMs: 50, restartBackoffMaxMs: 100, maxFailures: 1, killGraceMs: 500, healthIntervalMs: 60_000 };

/** Throws at import from line 5 (inside `explode`, called from line 8). */
const THROWS_AT_IMPORT = `import { definePlugin } from 'plughost/sdk';

/** Fails on purpose. */
function explode(reason: string): never {
  throw new Error(\`boom: \${reason}\`);
}

explode('at import');

export default definePlugin({});
`;

/** Answers GET /fail by throwing from line 6; the SDK logs the stack through the API. */
const THROWS_IN_ROUTE = `import { definePlugin } from 'plughost/sdk';

export default definePlugin({
  async serveHTTP(request) {
    if (new URL(request.url).pathname === '/fail') {
      throw new TypeError('route failed on purpose');
    }
    return new Response('ok');
  },
});
`;

describe('source maps of packed TypeScript plugins', () => {
  const work = tempDir('phsm-');
  const hosts: PluginHost[] = [];
  let packs = 0;

  /** A plugin project with `source` as src/plugin.ts, packed by the CLI; returns the bundle. */
  function packed(id: string, source: string): string {
    const dir = path.join(work.dir, `p${++packs}`);
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'plughost'));
    fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ id, name: id, version: '0.1.0', server: { runtime: 'node', entry: 'src/plugin.ts' } }));
    fs.writeFileSync(path.join(dir, 'src', 'plugin.ts'), source);
    const bundle = path.join(work.dir, `p${packs}.tar.gz`);
    const r = spawnSync(process.execPath, [BIN, 'pack', dir, '-o', bundle], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pack ${id} exited ${r.status}: ${r.stderr}`);
    expect(r.stdout).toContain('bundled src/plugin.ts → src/plugin.js (');
    expect(r.stdout).toContain(' with its source map src/plugin.js.map\n');
    return bundle;
  }

  async function openHost(codeCache: boolean): Promise<PluginHost> {
    const host = await PluginHost.open({ dataDir: path.join(work.dir, `data-${hosts.length}`), logger: pino({ level: 'silent' }), defaults: { ...DEFAULTS, codeCache } });
    hosts.push(host);
    return host;
  }

  beforeAll(() => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  }, 120_000);

  afterAll(async () => {
    for (const host of hosts) await host.close();
    work.cleanup();
  });

  it('puts the map in the bundle with the author\'s source text and positions only for dependencies', async () => {
    const host = await openHost(true);
    const { id } = await host.install(packed('com.example.sm-map', THROWS_IN_ROUTE));
    const map = JSON.parse(fs.readFileSync(path.join(host.pluginDir(id), 'src', 'plugin.js.map'), 'utf8')) as { sources: string[]; sourcesContent: Array<string | null> };
    const own = map.sources.indexOf('plugin.ts');
    expect(own).toBeGreaterThanOrEqual(0);
    expect(map.sourcesContent[own]).toBe(THROWS_IN_ROUTE);
    expect(map.sourcesContent.filter((c) => c !== null)).toHaveLength(1);
    expect(fs.readFileSync(path.join(host.pluginDir(id), 'src', 'plugin.js'), 'utf8').trimEnd().endsWith('//# sourceMappingURL=plugin.js.map')).toBe(true);
  });

  describe.each([
    ['the code-cache preload', true, (args: string[]) => args.some((a) => /code-cache-preload-[0-9a-f]+\.js$/.test(a)) && !args.includes('--enable-source-maps')],
    ['--enable-source-maps (code cache off)', false, (args: string[]) => args.includes('--enable-source-maps')],
  ])('mapped by %s', (_how, codeCache, launchedSo) => {
    let host: PluginHost;
    beforeAll(async () => {
      host = await openHost(codeCache);
    });

    it('reports a throw at import at src/plugin.ts:<line> in the last error and the logs', async () => {
      const { id } = await host.install(packed('com.example.sm-import', THROWS_AT_IMPORT));
      await host.enable(id).catch(() => undefined);
      const info = await host.get(id);
      expect(info.state).toMatch(/^failed_/);
      expect(info.lastError).toMatch(/src\/plugin\.ts:5:9/);
      expect(info.lastError).toContain('Error: boom: at import');
      const lines = host.logs(id).map((r) => r.message);
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/at explode \(.*src\/plugin\.ts:5:9\)$/), expect.stringMatching(/src\/plugin\.ts:8:1\)$/)]));
      expect(lines.filter((l) => /^\s+at .*plugin\.js:\d+/.test(l))).toEqual([]);
    });

    it('maps the stack a route handler threw', async () => {
      const { id } = await host.install(packed('com.example.sm-route', THROWS_IN_ROUTE));
      const info = await host.enable(id);
      expect(info.state).toBe('running');
      expect(launchedSo(fs.readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').split('\0'))).toBe(true);
      const status = await new Promise<number>((resolve, reject) => {
        const exchange = host.openHttpExchange(id, {
          head: (head) => resolve(head.status),
          body: () => undefined,
          end: () => undefined,
          fail: (failure) => reject(new Error(JSON.stringify(failure))),
        });
        exchange.start({ method: 'GET', path: '/fail', query: '', headers: [], remote_addr: '127.0.0.1', user_id: '' }, undefined, true);
      });
      expect(status).toBe(500);
      const logged = await waitFor(() => host.logs(id).find((r) => r.message === 'serveHTTP failed'));
      expect(String(logged.fields.error)).toMatch(/^TypeError: route failed on purpose\n\s+at .*src\/plugin\.ts:6:13\)?$/m);
      // Mapped stacks do not cost the code cache: the preload still writes it.
      if (codeCache) await waitFor(() => fs.existsSync(codeCacheFile(host.pluginDir(id))) || undefined);
    });
  });

  it('leaves --enable-source-maps out for an entry without a map beside it', () => {
    const entry = path.join(work.dir, 'plain.js');
    fs.writeFileSync(entry, '');
    expect(nodeEntryArgs(entry)).toEqual([entry]);
    fs.writeFileSync(`${entry}.map`, '{}');
    expect(nodeEntryArgs(entry)).toEqual(['--enable-source-maps', entry]);
  });
});

async function waitFor<T>(find: () => T | undefined, boundMs = 10_000): Promise<T> {
  const until = Date.now() + boundMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`nothing matched within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
