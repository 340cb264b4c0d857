'use strict';
/**
 * Hook dispatch through the full runtime (PluginHost → supervisor → an SDK
 * plugin bundled by `plughost pack`), beside step 1's bare protocol round trip
 * (PluginClient → servePlugin Echo.Say) in the same run. Two hosts run the same
 * plugins: one with the default hookTransport 'stream' (RunHookStream, one
 * stream per plugin), one with 'unary' (a RunHook call per hook call, as before
 * streams), so each row has its unary counterpart from the same run. Rounds
 * alternate over every side so machine noise hits all alike; each figure is
 * the median over rounds.
 *
 * - notify, 1 plugin: host.notify('Noop'), a handler that does nothing.
 * - filter, 1 plugin: host.filter('Filter'), a handler that changes the payload.
 * - filter chain, 10 plugins: host.filter('Chain') across ten copies, each changing it.
 * - KV hook: host.notify('KvRoundTrip'), whose handler does one kv.set and one
 *   kv.get (two API calls back to the host over the broker, one SQLite write
 *   and one read); the same dispatch as the notify row, so the difference of
 *   the two p50s is the KV set+get round trip seen from inside a plugin.
 * - hung: a notify across a prompt plugin and a hung one, both with a 200 ms
 *   hook deadline: the prompt plugin's own durationMs, the hung one's, and the
 *   whole notify.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const pino = require('pino');
const { PluginHost } = require('../dist/src/runtime/index.js');
const { PluginClient } = require('../dist/src/protocol/client.js');
const { loadProtos } = require('../dist/src/protocol/proto.js');
const { extractBundle, packBundle } = require('../dist/src/bundle/index.js');
const { median, percentile, sequential, throughput, round, unary } = require('./lib');

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'runtime');
const ECHO_PLUGIN = path.join(ROOT, 'test', 'fixtures', 'echo-plugin.js');
const HUNG_DEADLINE_MS = 200;
const CHAIN = 10;
const PAYLOAD = { id: 'n1', n: 0 };

/** One bundle per plugin id, all from the fixture packed once by `plughost pack`. */
const PLUGINS = [
  { id: 'bench.solo', role: 'solo' },
  ...Array.from({ length: CHAIN }, (_, i) => ({ id: `bench.chain.${String(i).padStart(2, '0')}`, role: 'chain' })),
  { id: 'bench.prompt', role: 'prompt', limits: { hook_timeout_ms: HUNG_DEADLINE_MS } },
  { id: 'bench.hung', role: 'hung', limits: { hook_timeout_ms: HUNG_DEADLINE_MS } },
];

async function buildBundles(work, plugins = PLUGINS) {
  const packed = path.join(work, 'packed.tar.gz');
  execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', FIXTURE, '-o', packed], { stdio: 'pipe' });
  const template = (await extractBundle(packed, path.join(work, 'template'))).path;
  const base = JSON.parse(fs.readFileSync(path.join(template, 'plugin.json'), 'utf8'));
  const bundles = [];
  for (const p of plugins) {
    const dir = path.join(work, `src-${p.id}`);
    fs.cpSync(template, dir, { recursive: true });
    const manifest = { ...base, id: p.id, env: { BENCH_ROLE: p.role }, ...(p.limits ? { limits: p.limits } : {}) };
    fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
    bundles.push((await packBundle(dir, path.join(work, `${p.id}.tar.gz`))).path);
  }
  return bundles;
}

async function startBare() {
  const Echo = loadProtos(['echo.proto'], [path.join(ROOT, 'test', 'fixtures', 'proto')]).echo.Echo;
  const plugin = await PluginClient.start({ cmd: process.execPath, args: [ECHO_PLUGIN], onLog: () => undefined });
  const client = plugin.client(Echo);
  return {
    call: () => unary(client, 'Say', { text: 'x' }),
    // The client shares the plugin's channel, which kill() still needs for Controller.Shutdown.
    close: () => plugin.kill(),
  };
}

/** A host with `defaults.hookTransport` set to `hookTransport` (and any other `defaults`) running `plugins` from `bundles`. */
async function startHost(work, bundles, hookTransport, plugins = PLUGINS, label = hookTransport, defaults = {}) {
  const host = await PluginHost.open({ dataDir: path.join(work, `data-${label}`), logger: pino({ level: 'silent' }), defaults: { ...defaults, hookTransport } });
  for (const bundle of bundles) await host.install(bundle);
  await Promise.all(plugins.map((p) => host.enable(p.id)));
  return host;
}

/** Fails loudly if a side would measure an error path instead of the real work. */
async function checkSides(host) {
  const notified = [...(await host.notify('Noop', PAYLOAD)), ...(await host.notify('KvRoundTrip', PAYLOAD))];
  if (notified.length !== 2 || notified.some((o) => !o.ok)) throw new Error(`bench runtime: notify failed: ${JSON.stringify(notified)}`);
  const one = await host.filter('Filter', PAYLOAD);
  if (one.rejected || one.payload.n !== 1) throw new Error(`bench runtime: filter answered ${JSON.stringify(one)}`);
  const chain = await host.filter('Chain', PAYLOAD);
  if (chain.rejected || chain.payload.n !== CHAIN) throw new Error(`bench runtime: chain answered ${JSON.stringify(chain)}`);
}

async function measure(call, scale, opts) {
  const seq = await sequential(call, Math.ceil(opts.n * scale), Math.ceil(opts.warmup * scale));
  const perSecond = await throughput(call, Math.ceil(opts.total * scale), opts.inFlight);
  return { ...seq, perSecond };
}

/** The hung plugin's calls end at the deadline; the prompt plugin's must not wait for them. */
async function hungRows(host, trials) {
  const prompt = [];
  const hung = [];
  const total = [];
  for (let i = 0; i < trials; i++) {
    const t = process.hrtime.bigint();
    const outcomes = await host.notify('Deadline', PAYLOAD);
    total.push(Number(process.hrtime.bigint() - t) / 1e6);
    const byId = Object.fromEntries(outcomes.map((o) => [o.pluginId, o]));
    if (!byId['bench.prompt']?.ok || byId['bench.hung']?.ok !== false) throw new Error(`bench runtime: hung notify answered ${JSON.stringify(outcomes)}`);
    prompt.push(byId['bench.prompt'].durationMs);
    hung.push(byId['bench.hung'].durationMs);
  }
  const row = (what, values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { what, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), unit: 'ms', calls_per_s: '', vs_bare_p50: '' };
  };
  return [
    row(`hung: prompt plugin's own durationMs (deadline ${HUNG_DEADLINE_MS} ms, ms resolution)`, prompt),
    row("hung: hung plugin's durationMs (ends at its deadline)", hung),
    row('hung: the whole notify, both plugins', total),
  ];
}

async function run(options = {}) {
  // `transports` narrows the run to one host, e.g. to profile one transport alone.
  const opts = { rounds: 3, n: 1500, warmup: 200, total: 4000, inFlight: 64, hungTrials: 20, progress: false, transports: ['stream', 'unary'], ...options };
  const TRANSPORTS = opts.transports;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phbr-'));
  const hosts = {};
  let bare;
  try {
    const bundles = await buildBundles(work);
    for (const transport of TRANSPORTS) hosts[transport] = await startHost(work, bundles, transport);
    const host = hosts[TRANSPORTS[0]];
    bare = await startBare();
    for (const h of Object.values(hosts)) await checkSides(h);
    const sides = [{ what: 'bare protocol round trip (PluginClient → servePlugin Echo.Say)', key: 'bare', call: bare.call, scale: 1 }];
    for (const t of TRANSPORTS) {
      const h = hosts[t];
      sides.push(
        { what: `notify, 1 plugin (no-op handler) [${t}]`, key: `notify.${t}`, call: () => h.notify('Noop', PAYLOAD), scale: 1 },
        { what: `filter, 1 plugin (changes the payload) [${t}]`, key: `filter.${t}`, call: () => h.filter('Filter', PAYLOAD), scale: 1 },
        { what: `filter chain, ${CHAIN} plugins [${t}]`, key: `chain.${t}`, call: () => h.filter('Chain', PAYLOAD), scale: 0.2 },
        { what: `notify, 1 plugin, handler does kv.set + kv.get [${t}]`, key: `kv.${t}`, call: () => h.notify('KvRoundTrip', PAYLOAD), scale: 0.5 },
      );
    }
    const runs = Object.fromEntries(sides.map((s) => [s.key, []]));
    for (let r = 0; r < opts.rounds; r++) {
      for (const side of sides) {
        const t = Date.now();
        runs[side.key].push(await measure(side.call, side.scale, opts));
        if (opts.progress) process.stderr.write(`bench runtime: round ${r + 1} ${side.key} ${Date.now() - t} ms\n`);
      }
    }
    const m = Object.fromEntries(
      sides.map((s) => [
        s.key,
        { p50: median(runs[s.key].map((x) => x.p50_us)), p99: median(runs[s.key].map((x) => x.p99_us)), perSecond: median(runs[s.key].map((x) => x.perSecond)) },
      ]),
    );
    const blank = { calls_per_s: '', vs_bare_p50: '', stream_vs_unary: '' };
    const rows = sides.map((s) => {
      const [kind, transport] = s.key.split('.');
      const unary = transport === 'stream' ? m[`${kind}.unary`] : undefined; // absent when only one transport ran
      return {
        what: s.what,
        p50: m[s.key].p50,
        p99: m[s.key].p99,
        unit: 'µs',
        calls_per_s: m[s.key].perSecond,
        vs_bare_p50: round(m[s.key].p50 / m.bare.p50, 2),
        // p50 and 64-in-flight calls/s, each as stream ÷ unary.
        stream_vs_unary: unary ? `p50 ${round(m[s.key].p50 / unary.p50, 2)}, calls/s ${round(m[s.key].perSecond / unary.perSecond, 2)}` : '',
      };
    });
    for (const t of TRANSPORTS) {
      rows.push({ ...blank, what: `kv.set + kv.get from inside a plugin (KV row p50 − notify row p50) [${t}]`, p50: round(m[`kv.${t}`].p50 - m[`notify.${t}`].p50), p99: '', unit: 'µs' });
    }
    for (const t of TRANSPORTS) {
      rows.push({ ...blank, what: `filter chain p50 ÷ 1-plugin filter p50 [${t}]`, p50: round(m[`chain.${t}`].p50 / m[`filter.${t}`].p50, 2), p99: '', unit: '×' });
    }
    rows.push(...(await hungRows(host, opts.hungTrials)).map((r) => ({ ...r, what: `${r.what} [${TRANSPORTS[0]}]`, stream_vs_unary: '' })));
    return {
      name: 'Hooks through the full runtime, over RunHookStream and unary RunHook, beside the bare protocol round trip (median of alternating rounds)',
      rows,
      ratio: round(m[`filter.${TRANSPORTS[0]}`].p50 / m.bare.p50, 2),
    };
  } finally {
    if (bare) await bare.close();
    for (const h of Object.values(hosts)) await h.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run, buildBundles, startHost, startBare, PLUGINS, CHAIN, PAYLOAD };

if (require.main === module) {
  const { table } = require('./lib');
  run({ progress: true }).then(
    (r) => {
      console.log(table(r.name, Object.keys(r.rows[0]), r.rows));
      console.log(`\nratio (one-plugin filter p50 over the stream / bare round trip p50): ${r.ratio} (aim ≤ 1.5)`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
