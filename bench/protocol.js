'use strict';
/**
 * Step 1 bench: a tiny unary call host → plugin through PluginClient/servePlugin,
 * side by side with a bare grpc-js client and server on the same kind of socket,
 * and spawn-to-ready of a TS plugin beside `node -e 0`. Rounds alternate between
 * the two sides so machine noise hits both alike.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const { PluginClient } = require('../dist/src/protocol/client.js');
const { loadProtos } = require('../dist/src/protocol/proto.js');
const { median, sequential, throughput, round, unary } = require('./lib');

const ROOT = path.join(__dirname, '..');
const Echo = loadProtos(['echo.proto'], [path.join(ROOT, 'test', 'fixtures', 'proto')]).echo.Echo;
const ECHO_PLUGIN = path.join(ROOT, 'test', 'fixtures', 'echo-plugin.js');
const quiet = () => undefined;

async function startBare() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phb-'));
  const socket = path.join(dir, 'bare.sock');
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'bare-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const client = new Echo(`unix:${socket}`, grpc.credentials.createInsecure());
  return {
    call: () => unary(client, 'Say', { text: 'x' }),
    close: () => {
      client.close();
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startPlughost(autoMTLS) {
  const plugin = await PluginClient.start({ cmd: process.execPath, args: [ECHO_PLUGIN], onLog: quiet, autoMTLS });
  const client = plugin.client(Echo);
  return { call: () => unary(client, 'Say', { text: 'x' }), close: () => plugin.kill() };
}

async function measure(start, opts) {
  const side = await start();
  try {
    const seq = await sequential(side.call, opts.n);
    const tput = await throughput(side.call, opts.total, 64);
    return { ...seq, throughput_per_s: tput };
  } finally {
    await side.close();
  }
}

/** Medians over rounds that alternate the two sides. */
async function compare(sides, opts) {
  const results = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (const [name, start] of Object.entries(sides)) results[name].push(await measure(start, opts));
  }
  const summary = {};
  for (const [name, runs] of Object.entries(results)) {
    summary[name] = {
      p50_us: median(runs.map((x) => x.p50_us)),
      p99_us: median(runs.map((x) => x.p99_us)),
      throughput_per_s: median(runs.map((x) => x.throughput_per_s)),
    };
  }
  return summary;
}

async function spawnToReady(rounds) {
  const plugin = [];
  const bare = [];
  for (let i = 0; i < rounds; i++) {
    let t = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    const p = await PluginClient.start({ cmd: process.execPath, args: [ECHO_PLUGIN], onLog: quiet });
    const client = p.client(Echo);
    await unary(client, 'Say', { text: 'first' });
    plugin.push(Number(process.hrtime.bigint() - t) / 1e6);
    await p.kill();
  }
  return { plugin_ms: round(median(plugin)), node_e0_ms: round(median(bare)) };
}

async function run(opts = {}) {
  const o = { n: 3000, total: 20000, rounds: 3, spawnRounds: 10, ...opts };
  const calls = await compare(
    { bare_grpc_js: startBare, plughost: () => startPlughost(false), plughost_automtls: () => startPlughost(true) },
    o,
  );
  const spawn = await spawnToReady(o.spawnRounds);
  return {
    calls,
    ratios: {
      seq_p50_plughost_over_bare: round(calls.plughost.p50_us / calls.bare_grpc_js.p50_us, 3),
      throughput_plughost_over_bare: round(calls.plughost.throughput_per_s / calls.bare_grpc_js.throughput_per_s, 3),
      spawn_plugin_over_node_e0: round(spawn.plugin_ms / spawn.node_e0_ms, 2),
    },
    spawn,
  };
}

module.exports = { run };

if (require.main === module) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)), (e) => {
    console.error(e);
    process.exit(1);
  });
}
