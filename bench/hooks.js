'use strict';
/**
 * Issue 15's hook rows, every ratio from one run. Rounds alternate over every
 * side so machine noise hits all alike; each figure is the median over rounds.
 *
 * - go-plugin: HashiCorp's Go host calling a Go plugin (test/interop/go, the
 *   go-plugin 1.0.1 Double call), the anchor every ratio is taken against;
 * - floors: bare grpc-js between two Node processes, no plughost code: unary
 *   Echo.Say, and a bidirectional stream echoing a message the size of one of
 *   our hook frames (what any stream over grpc-js costs at the least);
 * - hooks through PluginHost (host.filter('Filter'), one SDK plugin whose
 *   handler changes the payload) over unary RunHook, RunHookStream (one call
 *   per message) and RunHookBatchStream (calls ready in one turn share a
 *   message) on the grpc-js channel (the default) and on a direct HTTP/2
 *   connection (hookHttp2), from four hosts running the same bundles;
 * - the 10-plugin filter chain on each host, and its ratio to the 1-plugin filter;
 *   beside it, on the default host, what a step costs without the chain's code:
 *   ten callHook calls in a row to the one plugin, and one to each of the ten
 *   chain plugins (per step, sequential p50 only).
 *
 * Every side is measured alike: 200 sequential calls of warm-up, `n` sequential
 * calls for p50 and p99, then `total` calls with 64 in flight for calls/s
 * (gohost -mode bench does the same: warm-up max(n/10, 200), n sequential,
 * then -total calls from -concurrency goroutines; it dials a fresh plugin per
 * round, spawn time not counted). The Go call carries a 2-byte int32 each way;
 * a hook call carries the hook name, its JSON payload and an empty context
 * (the frame size is printed).
 *
 *   npm run bench -- hooks          # or: node bench/hooks.js
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const { contract, jsonBytes } = require('../dist/src/protocol/contract.js');
const goAnchor = require('./go-anchor');
const { buildBundles, startHost, startBare, PLUGINS, CHAIN, PAYLOAD } = require('./runtime');
const { RAW_STREAM, median, sequential, throughput, round, table } = require('./lib');

const IN_FLIGHT = 64;
const WARMUP = 200;
/** Only the plugins these rows call: the solo one and the chain. */
const HOOK_PLUGINS = PLUGINS.filter((p) => p.role === 'solo' || p.role === 'chain');
/**
 * Hosts: unary RunHook, RunHookStream alone (defaults.hookBatching false), RunHookBatchStream
 * on the grpc-js channel (the default), RunHookBatchStream on a direct HTTP/2 connection
 * (defaults.hookHttp2 true).
 */
const HOSTS = [
  { key: 'unary', transport: 'unary', what: 'unary RunHook' },
  { key: 'stream', transport: 'stream', what: 'RunHookStream', defaults: { hookBatching: false } },
  { key: 'batched', transport: 'stream', what: 'RunHookBatchStream (default)' },
  { key: 'http2', transport: 'stream', what: 'RunHookBatchStream over direct HTTP/2 (hookHttp2)', defaults: { hookHttp2: true } },
];

/** One hook call's frame as the host writes it on RunHookBatchStream: the floor stream echoes this many bytes. */
function hookFrame() {
  const method = contract().Hooks.service.RunHookBatchStream;
  const request = { hook: 'Filter', payload: jsonBytes(PAYLOAD), context: { request_id: '', user_id: '', values: {}, caller_plugin_id: '' } };
  return method.requestSerialize({ calls: [{ call_id: 1, request, timeout_ms: 5000 }] });
}

/** The bare grpc-js server of bench/fixtures/bare-server.js: a raw bidi echo, answers matched in order. */
async function startFloorStream(frame) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phbh-'));
  const socket = path.join(dir, 'bare.sock');
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'bare-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const client = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure());
  const duplex = client.makeBidiStreamRequest(RAW_STREAM.Stream.path, (b) => b, (b) => b);
  const waiting = [];
  duplex.on('data', () => waiting.shift()());
  duplex.on('error', () => undefined);
  return {
    call: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        duplex.write(frame);
      }),
    close: () => {
      duplex.cancel();
      client.close();
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function measure(call, n, total) {
  const seq = await sequential(call, n, WARMUP);
  return { ...seq, perSecond: await throughput(call, total, IN_FLIGHT) };
}

function goSide(n, total) {
  return () => {
    const r = goAnchor.run({ args: ['-spawns', '0', '-n', String(n), '-concurrency', String(IN_FLIGHT), '-total', String(total)] });
    if (r.skipped) throw new Error(r.skipped);
    return { p50_us: r.result.seq_p50_us, p99_us: r.result.seq_p99_us, perSecond: r.result.throughput_per_s };
  };
}

async function run(options = {}) {
  // Many short rounds rather than a few long ones: load on a shared machine drifts within seconds, and short rounds spread it over every side.
  const opts = { rounds: 12, n: 600, total: 4000, chainScale: 0.2, progress: false, ...options };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phbh-'));
  const hosts = {};
  const closers = [];
  try {
    const bundles = await buildBundles(work, HOOK_PLUGINS);
    for (const h of HOSTS) hosts[h.key] = await startHost(work, bundles, h.transport, HOOK_PLUGINS, h.key, h.defaults);
    const frame = hookFrame();
    const bare = await startBare();
    closers.push(() => bare.close());
    const floor = await startFloorStream(frame);
    closers.push(() => floor.close());
    for (const h of HOSTS) {
      const chained = await hosts[h.key].filter('Chain', PAYLOAD);
      if (chained.rejected || chained.payload.n !== CHAIN) throw new Error(`bench hooks: chain on ${h.key} answered ${JSON.stringify(chained)}`);
    }

    const n = opts.n;
    const total = opts.total;
    const chainN = Math.ceil(n * opts.chainScale);
    const chainTotal = Math.ceil(total * opts.chainScale);
    const sides = [
      { key: 'go', what: 'go-plugin Go host → Go plugin, unary Double (anchor)', run: goSide(n, total) },
      { key: 'floor.unary', what: 'floor: bare grpc-js unary Echo.Say, Node → Node', run: () => measure(bare.call, n, total) },
      { key: 'floor.stream', what: `floor: bare grpc-js bidi stream echo of ${frame.length} bytes, Node → Node`, run: () => measure(floor.call, n, total) },
      ...HOSTS.map((h) => ({ key: `filter.${h.key}`, what: `hook through PluginHost, 1-plugin filter, ${h.what}`, run: () => measure(() => hosts[h.key].filter('Filter', PAYLOAD), n, total) })),
      ...HOSTS.map((h) => ({ key: `chain.${h.key}`, what: `${CHAIN}-plugin filter chain, ${h.what}`, run: () => measure(() => hosts[h.key].filter('Chain', PAYLOAD), chainN, chainTotal) })),
    ];
    const solo = HOOK_PLUGINS.find((p) => p.role === 'solo').id;
    const chainIds = HOOK_PLUGINS.filter((p) => p.role === 'chain').map((p) => p.id);
    const batched = hosts.batched;
    const steps = [
      { key: 'steps.same', what: `${CHAIN} callHook calls in a row to the one plugin, per call [batched]`, calls: () => Array(CHAIN).fill(solo), hook: 'Filter' },
      { key: 'steps.distinct', what: `${CHAIN} callHook calls, one to each chain plugin, per call [batched]`, calls: () => chainIds, hook: 'Chain' },
    ];
    for (const st of steps) {
      const tenCalls = async () => {
        for (const id of st.calls()) await batched.callHook(id, st.hook, PAYLOAD);
      };
      sides.push({ key: st.key, what: st.what, perStep: true, run: async () => ({ ...(await sequential(tenCalls, chainN, WARMUP)), perSecond: NaN }) });
    }
    const runs = Object.fromEntries(sides.map((s) => [s.key, []]));
    for (let r = 0; r < opts.rounds; r++) {
      // Each round starts at another side, so none always follows the same one (gohost's run blocks this process while it lasts).
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + r) % sides.length];
        const t = Date.now();
        runs[side.key].push(await side.run());
        if (opts.progress) process.stderr.write(`bench hooks: round ${r + 1} ${side.key} ${Date.now() - t} ms\n`);
      }
    }
    const m = Object.fromEntries(
      sides.map((s) => [s.key, { p50: median(runs[s.key].map((x) => x.p50_us)), p99: median(runs[s.key].map((x) => x.p99_us)), perSecond: median(runs[s.key].map((x) => x.perSecond)) }]),
    );
    const go = m.go;
    const blank = { p99_us: '', calls_per_s: '', p50_vs_go: '', p99_vs_go: '', calls_per_s_vs_go: '' };
    const rows = sides.map((s) =>
      s.perStep
        ? { ...blank, what: s.what, p50_us: round(m[s.key].p50 / CHAIN) }
        : {
            what: s.what,
            p50_us: m[s.key].p50,
            p99_us: m[s.key].p99,
            calls_per_s: m[s.key].perSecond,
            p50_vs_go: round(m[s.key].p50 / go.p50, 2),
            p99_vs_go: round(m[s.key].p99 / go.p99, 2),
            calls_per_s_vs_go: round(m[s.key].perSecond / go.perSecond, 2),
          },
    );
    for (const h of HOSTS) rows.push({ ...blank, what: `chain p50 ÷ 1-plugin filter p50, ${h.what} (aim ≤ 10)`, p50_us: `${round(m[`chain.${h.key}`].p50 / m[`filter.${h.key}`].p50, 2)}×` });
    for (const h of HOSTS) rows.push({ ...blank, what: `1-plugin filter p50 ÷ floor p50 (bidi stream echo), ${h.what}`, p50_us: `${round(m[`filter.${h.key}`].p50 / m['floor.stream'].p50, 2)}×` });
    return {
      name: `Hook calls vs go-plugin Go↔Go, one run (median of ${opts.rounds} alternating rounds; n=${n} sequential, ${total} calls at ${IN_FLIGHT} in flight; chain ×${opts.chainScale}); aims: p50 ≤ 0.6×, p99 ≤ 1.0×, calls/s ≥ 3× go`,
      rows,
      machine: { cpus: os.cpus().length, load: os.loadavg().map((x) => round(x, 2)) },
    };
  } finally {
    for (const close of closers) await close();
    for (const h of Object.values(hosts)) await h.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run };

if (require.main === module) {
  run({ progress: true }).then(
    (r) => console.log(table(r.name, Object.keys(r.rows[0]), r.rows)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
