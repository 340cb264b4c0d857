'use strict';
/**
 * Spawn-to-activated of an SDK plugin beside `node -e 0`, in alternating
 * rounds of one run: the same plugin (examples/hello) as the unbundled
 * compiled SDK under dist/ and as the single esbuild bundle `plughost pack`
 * ships, that bundle also run with `--enable-source-maps` as a host runs a
 * bundle whose source map is beside it. "activated" = spawn → handshake →
 * Implemented → OnActivate answered (with the API served over the broker),
 * as a host does it.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { PluginClient } = require('../dist/src/protocol/client.js');
const { contract } = require('../dist/src/protocol/contract.js');
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

async function activate(args) {
  const t = process.hrtime.bigint();
  const plugin = await PluginClient.start({ cmd: process.execPath, args, onLog: quiet });
  const handshake = Number(process.hrtime.bigint() - t) / 1e6;
  const hooks = plugin.client(contract().Hooks);
  await unary(hooks, 'Implemented', {});
  const id = plugin.broker.nextId();
  const server = await plugin.broker.acceptAndServe(id, [{ definition: contract().API.service, implementation: API_IMPL }]);
  await unary(hooks, 'OnActivate', { api_broker_id: id, plugin_id: 'com.example.hello', manifest: Buffer.from('{}'), configuration: Buffer.from('{"greeting":"hi"}'), host_version: '0.1.0' });
  const activated = Number(process.hrtime.bigint() - t) / 1e6;
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
    const sides = { 'dist/sdk, unbundled': { args: [unbundled], times: [] } };
    if (bundle) {
      const kib = (file) => Math.round(fs.statSync(file).size / 1024);
      sides[`esbuild bundle (${kib(bundle.outFile)} KiB)`] = { args: [bundle.outFile], times: [] };
      sides[`same bundle, --enable-source-maps (map ${kib(bundle.mapFile)} KiB)`] = { args: ['--enable-source-maps', bundle.outFile], times: [] };
    }
    const bare = [];
    for (const side of Object.values(sides)) await activate(side.args); // warm the page cache
    for (let i = 0; i < ROUNDS; i++) {
      const t = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      bare.push(Number(process.hrtime.bigint() - t) / 1e6);
      for (const side of Object.values(sides)) side.times.push(await activate(side.args));
    }
    const base = median(bare);
    const rows = [{ what: 'node -e 0 (spawn → exit)', handshake_ms: '', activated_ms: round(base), x_node: 1 }];
    for (const [name, side] of Object.entries(sides)) {
      const activated = median(side.times.map((x) => x.activated));
      rows.push({
        what: `SDK plugin, ${name}`,
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
