const path = require('path'); const fs = require('fs'); const os = require('os'); const { spawnSync } = require('child_process');
const { PluginClient } = require('../dist/src/protocol/client.js');
const { contract } = require('../dist/src/protocol/contract.js');
const { median } = require('./lib');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-'));
const script = require('../dist/sdk/build.js').bundlePlugin('/work/main/examples/hello/server/plugin.ts', path.join(dir, 'server', 'plugin.js')).outFile;
const unary = (c, m, r) => new Promise((res, rej) => c[m](r, { deadline: Date.now() + 10000 }, (e, x) => (e ? rej(e) : res(x))));
const noop = (_c, cb) => cb(null, {});
async function activate(args, env) {
  const t = process.hrtime.bigint();
  const plugin = await PluginClient.start({ cmd: process.execPath, args, env, onLog: () => {} });
  const hooks = plugin.client(contract().Hooks);
  await unary(hooks, 'Implemented', {});
  const id = plugin.broker.nextId();
  const server = await plugin.broker.acceptAndServe(id, [{ definition: contract().API.service, implementation: { Log: noop, GetConfiguration: (_c, cb) => cb(null, { configuration: Buffer.from('{}') }) } }]);
  await unary(hooks, 'OnActivate', { api_broker_id: id, plugin_id: 'com.example.hello', manifest: Buffer.from('{}'), configuration: Buffer.from('{"greeting":"hi"}'), host_version: '0.1.0' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  await new Promise((r) => setTimeout(r, env ? 1200 : 0));
  await server.close(); await plugin.kill();
  return ms;
}
(async () => {
  const cache = path.join(dir, 'plugin.v8');
  const sides = { plain: [[script], undefined], cached: [['--require', '/tmp/cc/loader.js', script], { PLUGHOST_CODE_CACHE: cache }] };
  await activate(...sides.cached); // writes the cache
  console.log('cache bytes', fs.statSync(cache).size);
  const times = { node: [], plain: [], cached: [] };
  const N = Number(process.env.ROUNDS || 20);
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint(); spawnSync(process.execPath, ['-e', '0']); times.node.push(Number(process.hrtime.bigint() - t) / 1e6);
    for (const k of (i % 2 ? ['plain', 'cached'] : ['cached', 'plain'])) {
      const [a, e] = sides[k];
      const t0 = process.hrtime.bigint();
      const plugin = await PluginClient.start({ cmd: process.execPath, args: a, env: e, onLog: () => {} });
      const hooks = plugin.client(contract().Hooks);
      await unary(hooks, 'Implemented', {});
      const id = plugin.broker.nextId();
      const server = await plugin.broker.acceptAndServe(id, [{ definition: contract().API.service, implementation: { Log: noop, GetConfiguration: (_c, cb) => cb(null, { configuration: Buffer.from('{}') }) } }]);
      await unary(hooks, 'OnActivate', { api_broker_id: id, plugin_id: 'com.example.hello', manifest: Buffer.from('{}'), configuration: Buffer.from('{"greeting":"hi"}'), host_version: '0.1.0' });
      times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
      await server.close(); await plugin.kill();
    }
  }
  const base = median(times.node);
  for (const [k, v] of Object.entries(times)) console.log(k.padEnd(8), median(v).toFixed(1), 'ms', (median(v) / base).toFixed(2), '× node -e 0');
  fs.rmSync(dir, { recursive: true, force: true });
})();
