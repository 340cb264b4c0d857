'use strict';
/**
 * Spawn-to-activated of an SDK plugin beside `node -e 0`, in alternating
 * rounds of one run: the same plugin (examples/hello) as the unbundled
 * compiled SDK under dist/ and as the single esbuild bundle `plughost pack`
 * ships. "activated" = spawn → handshake → Implemented → OnActivate answered
 * (with the API served over the broker), as a host does it. The bundle (with
 * its source map beside it, as `plughost pack` ships it) runs plain; with
 * `--enable-source-maps`, as a host without the code cache runs it; and as
 * PluginHost starts it by default, with the V8 code cache its earlier start
 * left in the plugin folder and stack traces mapped by the same preload
 * (src/runtime/code-cache.ts).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { PluginClient } = require('../dist/src/protocol/client.js');
const { contract } = require('../dist/src/protocol/contract.js');
const { writeCodeCachePreload, codeCacheFile, CODE_CACHE_ENV } = require('../dist/src/runtime/code-cache.js');
const { median, round } = require('./lib');

const ROOT = path.join(__dirname, '..');
const ROUNDS = Number(process.env.BENCH_SPAWN_ROUNDS || 15);
const quiet = () => undefined;

/** The hello plugin as plain JS against dist/sdk (what a plugin without a bundler would run). */
const UNBUNDLED = `'use strict';
const { definePlugin } = require(${JSON.stringify(path.join(ROOT, 'dist', 'sdk', 'index.js'))});
definePlugin({
  onActivate(ctx) { ctx.log.info('activated'); },
  hooks: { NoteWillBeSaved: (n) => n },
  serveHTTP: () => Response.json({ ok: true }),
});
`;

function unary(client, method, req) {
  return new Promise((resolve, reject) => client[method](req, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))));
}

const noop = (_call, cb) => cb(null, {});
const API_IMPL = {
  Log: noop,
  GetConfiguration: (_c, cb) => cb(null, { configuration: Buffer.from('{}') }),
};

/** What each run of the bundle adds to its row's name. */
const BUNDLE_SIDES = {
  bundled: '',
  cached: ', V8 code cache and lazily mapped stacks (the host\'s default)',
  maps: ', --enable-source-maps',
};

async function activate(script, preload = [], env = undefined) {
  const t = process.hrtime.bigint();
  const plugin = await PluginClient.start({ cmd: process.execPath, args: [...preload, script], env, onLog: quiet });
  const handshake = Number(process.hrtime.bigint() - t) / 1e6;
  const hooks = plugin.client(contract().Hooks);
  await unary(hooks, 'Implemented', {});
  const id = plugin.broker.nextId();
  const server = await plugin.broker.acceptAndServe(id, [{ definition: contract().API.service, implementation: API_IMPL }]);
  await unary(hooks, 'OnActivate', { api_broker_id: id, plugin_id: 'com.example.hello', manifest: Buffer.from('{}'), configuration: Buffer.from('{"greeting":"hi"}'), host_version: '0.1.0' });
  const activated = Number(process.hrtime.bigint() - t) / 1e6;
  // The first run with a preload writes the cache a second after the start: let it.
  if (env && !fs.existsSync(env[CODE_CACHE_ENV])) await new Promise((r) => setTimeout(r, 1_500));
  await server.close();
  await plugin.kill();
  return { handshake, activated };
}

function bundleHello(dir) {
  const { bundlePlugin } = require('../dist/sdk/build.js');
  try {
    return bundlePlugin(path.join(ROOT, 'examples', 'hello', 'server', 'plugin.ts'), path.join(dir, 'server', 'plugin.js'));
  } catch (err) {
    process.stderr.write(`bench spawn: bundled row skipped: ${err.message}\n`);
    return null;
  }
}

async function run() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phbs-'));
  try {
    const unbundled = path.join(dir, 'unbundled.js');
    fs.writeFileSync(unbundled, UNBUNDLED);
    const bundle = bundleHello(dir);
    const sides = { unbundled: { script: unbundled, times: [] } };
    if (bundle) {
      sides.bundled = { script: bundle.outFile, times: [] };
      const preload = ['--require', writeCodeCachePreload(path.join(dir, 'runtime'))];
      const env = { [CODE_CACHE_ENV]: codeCacheFile(path.dirname(bundle.outFile)) };
      sides.cached = { script: bundle.outFile, preload, env, times: [] };
      sides.maps = { script: bundle.outFile, preload: ['--enable-source-maps'], times: [] };
    }
    const bare = [];
    for (const side of Object.values(sides)) await activate(side.script, side.preload, side.env); // warm the page cache, write the code cache
    for (let i = 0; i < ROUNDS; i++) {
      const t = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      bare.push(Number(process.hrtime.bigint() - t) / 1e6);
      for (const side of Object.values(sides)) side.times.push(await activate(side.script, side.preload, side.env));
    }
    const base = median(bare);
    const rows = [{ what: 'node -e 0 (spawn → exit)', handshake_ms: '', activated_ms: round(base), x_node: 1 }];
    for (const [name, side] of Object.entries(sides)) {
      const activated = median(side.times.map((x) => x.activated));
      rows.push({
        what: `SDK plugin, ${name === 'unbundled' ? 'dist/sdk, unbundled' : `esbuild bundle (${Math.round(bundle.bytes / 1024)} KiB)${BUNDLE_SIDES[name]}`}`,
        handshake_ms: round(median(side.times.map((x) => x.handshake))),
        activated_ms: round(activated),
        x_node: round(activated / base, 2),
      });
    }
    return { name: `Spawn to activated (median of ${ROUNDS} alternating rounds)`, rows };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };

if (require.main === module) {
  run().then(
    (r) => {
      const { table } = require('./lib');
      console.log(table(r.name, Object.keys(r.rows[0]), r.rows));
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
