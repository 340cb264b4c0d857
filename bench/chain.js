'use strict';
/**
 * Issue 15's chain row beside its anchors, every ratio from one run: what a
 * chain of ten plugin processes costs against one call, for
 *
 * - go-plugin: HashiCorp's Go host calling Go plugins (test/interop/go,
 *   `gohost -mode chain`): one Double; ten Doubles in a row to one plugin;
 *   one Double to each of ten plugin processes in turn;
 * - floor: bare grpc-js, no plughost code: a Node client calling unary
 *   Echo.Say on bench/fixtures/bare-server.js, the same three sequences over
 *   ten server processes;
 * - plughost: host.filter('Filter') on one SDK plugin; ten callHook calls in a
 *   row to that plugin; host.filter('Chain') across ten SDK plugins.
 *
 * Every Node process gets WARM_EACH calls first. Each figure is the p50 of
 * the whole sequence: "chain ÷ one" is the ratio issue 15 aims at ≤ 10,
 * "chain ÷ same" what ten processes cost over ten calls to one. Beside them,
 * for the Node sides, the CPU time the server processes spent per call
 * (/proc schedstat), which tells slower work apart from waiting for a CPU.
 * Rounds alternate over every side (gohost runs its three blocks in one
 * process per round, their order rotated), each figure the median over rounds.
 *
 *   npm run bench -- chain                       # or: node bench/chain.js
 *   BENCH_PLUGIN_NODE_FLAGS='--single-threaded' node bench/chain.js
 *     (node flags for the floor's servers and plughost's plugins, to try one out)
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const { loadProtos } = require('../dist/src/protocol/proto.js');
const { buildGoPeers } = require('../test/interop/go/build.js');
const { buildBundles, startHost, PLUGINS, CHAIN, PAYLOAD } = require('./runtime');
const { median, sequential, round, unary, table } = require('./lib');

const WARMUP = 200;
/**
 * Calls each Node process gets before the first round. V8 tiers code up per process by calls
 * seen, and a chain plugin sees a tenth of the solo plugin's calls: without this the chain's
 * processes run colder code than the solo one (measured: plugin CPU per call 452 µs after 300
 * warm-up chains, 359 µs after 3000).
 */
const WARM_EACH = 2000;
const KINDS = ['one', 'same', 'chain'];
const CHAIN_PLUGINS = PLUGINS.filter((p) => p.role === 'solo' || p.role === 'chain');

/** `count` bare grpc-js servers, each its own process, and an Echo client for each. */
async function startFloor(count, nodeFlags) {
  const Echo = loadProtos(['echo.proto'], [path.join(__dirname, '..', 'test', 'fixtures', 'proto')]).echo.Echo;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phbc-'));
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const socket = path.join(dir, `s${i}.sock`);
      const child = spawn(process.execPath, [...nodeFlags, path.join(__dirname, 'fixtures', 'bare-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push({ child, client: null });
      await new Promise((resolve, reject) => {
        child.stdout.once('data', resolve);
        child.once('exit', (code) => reject(new Error(`bench chain: bare server ${i} exited ${code}`)));
      });
      servers[i].client = new Echo(`unix:${socket}`, grpc.credentials.createInsecure());
    }
  } catch (err) {
    close();
    throw err;
  }
  function close() {
    for (const s of servers) {
      s.client?.close();
      s.child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const say = (i) => unary(servers[i].client, 'Say', { text: 'x' });
  return { say, close, pids: servers.map((s) => s.child.pid) };
}

/** gohost -mode chain once: its three blocks, in `order`, over `count` fresh plugin processes. */
function goRound(peers, count, n, order) {
  const r = spawnSync(peers.gohost, ['-mode', 'chain', '-plugin', peers.goplugin, '-plugins', String(count), '-n', String(n), '-order', order.join(',')], {
    encoding: 'utf8',
    timeout: 10 * 60 * 1000,
  });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  let out;
  try {
    out = JSON.parse(line);
  } catch {
    throw new Error(`gohost -mode chain exited ${r.status} without JSON:\n${r.stdout}\n${r.stderr}`);
  }
  if (r.status !== 0 || out.error) throw new Error(`gohost -mode chain failed (exit ${r.status}): ${out.error || line}\n${r.stderr}`);
  return Object.fromEntries(KINDS.map((k) => [k, out[`${k}_p50_us`]]));
}

/** On-CPU ns of every thread of `pids`, from /proc/<pid>/task/<tid>/schedstat (Linux; 0 elsewhere). */
function cpuNs(pids) {
  let ns = 0;
  for (const pid of pids) {
    try {
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      return 0;
    }
  }
  return ns;
}

/** Bench only: starts node plugins with `flags` before their entry, by wrapping the runtime's launchCommand (read at each launch). */
function withPluginNodeFlags(flags) {
  if (!flags.length) return;
  const launch = require('../dist/src/runtime/memory-limit.js');
  const plain = launch.launchCommand;
  launch.launchCommand = (...args) => {
    const cmd = plain(...args);
    return cmd.cmd === process.execPath ? { ...cmd, args: [...flags, ...cmd.args] } : cmd;
  };
}

/**
 * p50 of each of the three sequences, in `order`, n times each after a warm-up; and the CPU time
 * the server processes `pids` spent per call in the timed part, which tells work (or slower work)
 * apart from waiting.
 */
async function blocks(calls, n, order, pids) {
  const out = {};
  for (const kind of order) {
    await sequential(calls[kind], Math.min(n, WARMUP), 0);
    const before = cpuNs(pids);
    out[kind] = (await sequential(calls[kind], n, 0)).p50_us;
    out[`${kind}_cpu`] = (cpuNs(pids) - before) / 1000 / (n * (kind === 'one' ? 1 : CHAIN));
  }
  return out;
}

async function run(options = {}) {
  const nodeFlags = (process.env.BENCH_PLUGIN_NODE_FLAGS || '').split(/\s+/).filter(Boolean);
  const opts = { rounds: 8, n: 300, progress: false, ...options };
  const built = buildGoPeers();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phbc-'));
  let host;
  let floor;
  try {
    withPluginNodeFlags(nodeFlags);
    const bundles = await buildBundles(work, CHAIN_PLUGINS);
    host = await startHost(work, bundles, 'stream', CHAIN_PLUGINS, 'chain');
    const chained = await host.filter('Chain', PAYLOAD);
    if (chained.rejected || chained.payload.n !== CHAIN) throw new Error(`bench chain: chain answered ${JSON.stringify(chained)}`);
    floor = await startFloor(CHAIN, nodeFlags);
    const solo = CHAIN_PLUGINS.find((p) => p.role === 'solo').id;
    const pluginPids = [...host.supervisors.values()].map((sup) => sup.pid);
    for (let i = 0; i < WARM_EACH; i++) {
      await host.filter('Chain', PAYLOAD);
      await host.filter('Filter', PAYLOAD);
      for (let k = 0; k < CHAIN; k++) await floor.say(k);
    }

    const sides = [
      {
        key: 'floor',
        what: `bare grpc-js unary Echo.Say, Node → Node${nodeFlags.length ? ` (servers: ${nodeFlags.join(' ')})` : ''}`,
        run: (order) =>
          blocks(
            {
              one: () => floor.say(0),
              same: async () => {
                for (let i = 0; i < CHAIN; i++) await floor.say(0);
              },
              chain: async () => {
                for (let i = 0; i < CHAIN; i++) await floor.say(i);
              },
            },
            opts.n,
            order,
            floor.pids,
          ),
      },
      {
        key: 'plughost',
        what: `plughost: host.filter over SDK plugins (RunHookBatchStream)${nodeFlags.length ? ` (plugins: ${nodeFlags.join(' ')})` : ''}`,
        run: (order) =>
          blocks(
            {
              one: () => host.filter('Filter', PAYLOAD),
              same: async () => {
                for (let i = 0; i < CHAIN; i++) await host.callHook(solo, 'Filter', PAYLOAD);
              },
              chain: () => host.filter('Chain', PAYLOAD),
            },
            opts.n,
            order,
            pluginPids,
          ),
      },
    ];
    if (built.ok) sides.unshift({ key: 'go', what: 'go-plugin Go host → Go plugins, unary Double', run: async (order) => goRound(built.peers, CHAIN, opts.n, order) });
    const runs = Object.fromEntries(sides.map((s) => [s.key, []]));
    for (let r = 0; r < opts.rounds; r++) {
      const order = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]);
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + r) % sides.length];
        const t = Date.now();
        runs[side.key].push(await side.run(order));
        if (opts.progress) process.stderr.write(`bench chain: round ${r + 1} ${side.key} ${Date.now() - t} ms\n`);
      }
    }
    const rows = sides.map((s) => {
      const p50 = Object.fromEntries(KINDS.map((k) => [k, median(runs[s.key].map((x) => x[k]))]));
      return {
        what: s.what,
        one_p50_us: p50.one,
        [`same_x${CHAIN}_p50_us`]: p50.same,
        [`chain_${CHAIN}_p50_us`]: p50.chain,
        per_step_same_us: round(p50.same / CHAIN),
        per_step_chain_us: round(p50.chain / CHAIN),
        'chain÷one': `${round(p50.chain / p50.one, 2)}×`,
        'chain÷same': `${round(p50.chain / p50.same, 2)}×`,
        // gohost's plugin processes are its own children, out of this process's sight.
        server_cpu_us_per_call_same: s.key === 'go' ? '' : round(median(runs[s.key].map((x) => x.same_cpu))),
        server_cpu_us_per_call_chain: s.key === 'go' ? '' : round(median(runs[s.key].map((x) => x.chain_cpu))),
      };
    });
    return {
      name: `${CHAIN}-plugin chain vs 1 call, one run (median of ${opts.rounds} alternating rounds of ${opts.n} sequences each); aim: plughost chain÷one ≤ 10×${built.ok ? '' : `; go-plugin skipped: missing ${built.missing}`}`,
      rows,
      machine: { cpus: os.cpus().length, load: os.loadavg().map((x) => round(x, 2)) },
    };
  } finally {
    floor?.close();
    if (host) await host.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function print(r) {
  console.log(table(r.name, Object.keys(r.rows[0]), r.rows));
  console.log(`machine: ${JSON.stringify(r.machine)}`);
}

module.exports = { run, print, startFloor };

if (require.main === module) {
  run({ progress: true }).then(print, (err) => {
    console.error(err);
    process.exit(1);
  });
}
