'use strict';
/**
 * Load run on loopback, over the built dist/ (npm run bench:load): a real
 * server with many plugins installed and running through REST, then
 *   hooks: a fixed number of hook calls spread across the plugins, with a fixed number in flight;
 *   kv:    KV operations (3 sets : 1 get) through plugins at a paced rate for a fixed time;
 *   http:  GETs through /plugins/:id/ at a fixed concurrency.
 * Every phase checks what comes back (each answer carries its own request), so
 * "lost" counts anything missing or mixed up; KV writes are read back from the
 * SQLite file afterwards. Reports p50/p99, errors, lost, rates, host RSS, and the
 * CPU time per op of the host process and of all plugin processes together
 * (from /proc; the machine's busy share counts every process on it) per
 * phase; exits 1 when anything failed or was lost. Not a pass/fail test of speed.
 *
 * The plugins are SDK plugins (bench/fixtures/load/plugin.js), so the runs go over the streamed
 * data path; --raw installs raw-plugin.js instead, the same on the raw contract with unary calls.
 *
 *   node bench/load.js [--plugins 50] [--hooks 100000] [--inflight 256] [--kv-rate 10000]
 *                      [--kv-seconds 30] [--http-requests 20000] [--http-concurrency 64] [--raw] [--json]
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const pino = require('pino');
const { packBundle } = require('../dist/src/bundle');
const { startServer } = require('../dist/src/server');
const { SqliteStore } = require('../dist/src/store/sqlite-store');
const { spawn } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const { RAW_STREAM, percentile, round, table } = require('./lib');

const DEFAULTS = { plugins: 50, hooks: 100_000, inflight: 256, kvRate: 10_000, kvSeconds: 30, httpRequests: 20_000, httpConcurrency: 64 };
/** The whole run is bounded: past this, it stops and fails. */
const WATCHDOG_MS = 15 * 60_000;
/** KV operations waiting at once before the pacer holds back (and the achieved rate shows it). */
const KV_MAX_INFLIGHT = 1024;
/** Linux's USER_HZ, the unit of /proc CPU times. */
const CLOCK_TICKS = 100;

function parseArgs(argv) {
  const opts = { ...DEFAULTS, json: false, raw: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') opts.json = true;
    else if (arg === '--raw') opts.raw = true;
    else {
      const key = arg.replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
      const value = Number(argv[++i]);
      if (!(key in DEFAULTS) || !Number.isFinite(value) || value <= 0) throw new Error(`unknown option or bad value: ${arg} ${argv[i]}`);
      opts[key] = value;
    }
  }
  return opts;
}

/** CPU ms (user+system) of one process from /proc, or 0 once it is gone. */
function processCpuMs(pid) {
  try {
    // Fields after the parenthesised name: utime and stime are the 12th and 13th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The machine's CPU ms busy and idle (all cores) since boot, and the host's and its plugins' own CPU ms: a phase's cost per op is the difference. */
function cpuSample(pluginPids) {
  const [, ...t] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const idle = t[3] + t[4];
  const busy = t.slice(0, 8).reduce((a, b) => a + b, 0) - idle;
  return {
    machineBusy: (busy * 1000) / CLOCK_TICKS,
    machineIdle: (idle * 1000) / CLOCK_TICKS,
    host: processCpuMs(process.pid),
    plugins: pluginPids.reduce((sum, pid) => sum + processCpuMs(pid), 0),
  };
}

/** CPU µs per op of the host and of all plugins together, and how busy the machine was (every process on it, ours or not). */
function cpuUse(before, after, ops) {
  const d = (k) => after[k] - before[k];
  return {
    hostCpuUsPerOp: round((d('host') * 1000) / ops, 0),
    pluginsCpuUsPerOp: round((d('plugins') * 1000) / ops, 0),
    machineBusyPct: round((100 * d('machineBusy')) / (d('machineBusy') + d('machineIdle')), 0),
  };
}

const rssMiB = () => round(process.memoryUsage().rss / (1024 * 1024), 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `total` tasks with at most `limit` in flight; each task's latency (ms) and failures are recorded. */
async function pool(total, limit, task) {
  const latencies = [];
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t = process.hrtime.bigint();
      try {
        await task(i);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch (err) {
        failures.push(err.message);
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: Math.min(limit, total) }, worker));
  return { latencies, failures, seconds: (Date.now() - started) / 1000 };
}

function summary(name, run, extra = {}) {
  const sorted = [...run.latencies].sort((a, b) => a - b);
  return {
    phase: name,
    ops: run.latencies.length + run.failures.length,
    errors: run.failures.filter((f) => !f.startsWith('lost:')).length,
    lost: run.failures.filter((f) => f.startsWith('lost:')).length,
    p50Ms: round(percentile(sorted, 50), 2),
    p99Ms: round(percentile(sorted, 99), 2),
    perSecond: round(run.latencies.length / run.seconds, 0),
    firstFailure: run.failures[0],
    ...extra,
  };
}

async function setUp(opts, work) {
  const token = crypto.randomBytes(16).toString('hex');
  const server = await startServer({ dataDir: path.join(work, 'data'), port: 0, host: '127.0.0.1', adminToken: token, logger: pino({ level: 'silent' }) });
  const auth = { authorization: `Bearer ${token}` };
  const ids = Array.from({ length: opts.plugins }, (_, i) => `bench.load.p${String(i).padStart(3, '0')}`);
  const installs = await pool(ids.length, 8, async (i) => {
    const id = ids[i];
    const src = path.join(work, `src-${id}`);
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'main.js'), `require(${JSON.stringify(path.join(__dirname, 'fixtures', 'load', opts.raw ? 'raw-plugin.js' : 'plugin.js'))});\n`);
    fs.writeFileSync(path.join(src, 'plugin.json'), JSON.stringify({ id, name: id, version: '1.0.0', server: { runtime: 'node', entry: 'main.js' }, limits: { hook_timeout_ms: 30_000 } }));
    const bundle = path.join(work, `${id}.tar.gz`);
    await packBundle(src, bundle);
    const form = new FormData();
    form.append('plugin', new Blob([fs.readFileSync(bundle)]), path.basename(bundle));
    const res = await fetch(`${server.url}/api/v1/plugins`, { method: 'POST', headers: auth, body: form });
    if (res.status !== 201) throw new Error(`install ${id}: ${res.status} ${await res.text()}`);
    const enabled = await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: auth });
    if (enabled.status !== 200) throw new Error(`enable ${id}: ${enabled.status} ${await enabled.text()}`);
  });
  if (installs.failures.length) throw new Error(installs.failures[0]);
  const running = (await server.host.list()).filter((p) => p.state === 'running').length;
  if (running !== ids.length) throw new Error(`${running} of ${ids.length} plugins running`);
  return { server, ids };
}

async function hooksPhase(host, ids, opts) {
  return pool(opts.hooks, opts.inflight, async (i) => {
    const res = await host.callHook(ids[i % ids.length], 'Echo', { i });
    if (res.payload?.i !== i) throw new Error(`lost: hook call ${i} answered ${JSON.stringify(res.payload)}`);
  });
}

/** Paced: by each moment, rate × elapsed operations have been started, unless KV_MAX_INFLIGHT are waiting. */
async function kvPhase(host, ids, opts) {
  const latencies = [];
  const failures = [];
  const acked = [];
  let started = 0;
  let inflight = 0;
  const begin = Date.now();
  const end = begin + opts.kvSeconds * 1000;
  const one = async (n) => {
    const id = ids[n % ids.length];
    const t = process.hrtime.bigint();
    try {
      if (n % 4 === 3 && acked.length > 0) {
        const [pid, key] = acked[(n * 7919) % acked.length];
        const res = await host.callHook(pid, 'Kv', { op: 'get', key });
        if (res.payload.value !== `v-${key}`) throw new Error(`lost: ${pid} ${key} read ${JSON.stringify(res.payload)}`);
      } else {
        const key = `k${n}`;
        await host.callHook(id, 'Kv', { op: 'set', key, value: `v-${key}` });
        acked.push([id, key]);
      }
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    } catch (err) {
      failures.push(err.message);
    } finally {
      inflight--;
    }
  };
  const pending = new Set();
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - begin) / 1000) * opts.kvRate);
    while (started < due && inflight < KV_MAX_INFLIGHT) {
      inflight++;
      const p = one(started++);
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
    await sleep(2);
  }
  await Promise.all(pending);
  const seconds = (Date.now() - begin) / 1000;
  return { latencies, failures, seconds, acked, target: opts.kvRate * opts.kvSeconds };
}

/** Every acknowledged write, read back from the SQLite file through a second connection. */
async function verifyKv(dataDir, acked) {
  const store = SqliteStore.open({ file: path.join(dataDir, 'plughost.db') });
  let missing = 0;
  try {
    for (const [id, key] of acked) if ((await store.kvGet(id, key))?.toString() !== `v-${key}`) missing++;
  } finally {
    await store.close();
  }
  return missing;
}

async function httpPhase(url, ids, opts) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.httpConcurrency });
  try {
    return await pool(opts.httpRequests, opts.httpConcurrency, (i) =>
      new Promise((resolve, reject) => {
        const req = http.get(`${url}/plugins/${ids[i % ids.length]}/echo?i=${i}`, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`GET ${i}: status ${res.statusCode} ${body}`));
            else if (body !== `echo ${i}`) reject(new Error(`lost: GET ${i} answered ${JSON.stringify(body)}`));
            else resolve();
          });
          res.on('error', reject);
        });
        req.on('error', reject);
      }),
    );
  } finally {
    agent.destroy();
  }
}

/** Messages per second the floor measure answers, one at a time: what one of 50 plugins gets at a KV rate of 10,000/s (each op is two). */
const FLOOR_RATE = 400;
const FLOOR_SECONDS = 3;

/**
 * The cost floor of a message answered alone: a bare grpc-js server with no
 * protocol layer (bench/fixtures/bare-server.js) echoing one message at a
 * time at FLOOR_RATE, its CPU µs per message. Each KV op wakes its plugin
 * twice for one message each (the hook call, then the API call's answer)
 * when the plugin's calls do not overlap, so 2 × this is what any node
 * plugin on grpc-js spends per op at that shape, before any work of ours.
 */
async function floorPerMessage(work) {
  const socket = path.join(work, 'floor.sock');
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'bare-server.js'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const client = new (grpc.makeGenericClientConstructor(RAW_STREAM, 'Raw'))(`unix:${socket}`, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.once('data', resolve);
      child.once('exit', (code) => reject(new Error(`bare-server exited with ${code}`)));
    });
    const stream = client.Stream();
    let answered;
    let failed;
    stream.on('data', () => answered());
    stream.on('error', (err) => failed?.(err));
    const ended = new Promise((resolve) => stream.on('status', resolve));
    const echo = () => new Promise((resolve, reject) => {
      answered = resolve;
      failed = reject;
      stream.write(Buffer.alloc(64, 1));
    });
    for (let i = 0; i < 500; i++) await echo();
    const n = FLOOR_RATE * FLOOR_SECONDS;
    const before = processCpuMs(child.pid);
    const begin = Date.now();
    for (let i = 0; i < n; i++) {
      await echo();
      const wait = begin + ((i + 1) * 1000) / FLOOR_RATE - Date.now();
      if (wait > 0) await sleep(wait);
    }
    const usPerMessage = round(((processCpuMs(child.pid) - before) * 1000) / n, 0);
    stream.end();
    await ended;
    return { ratePerSecond: FLOOR_RATE, serverCpuUsPerMessage: usPerMessage };
  } finally {
    client.close();
    child.kill('SIGKILL');
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phload-'));
  const watchdog = setTimeout(() => {
    process.stderr.write(`load run exceeded ${WATCHDOG_MS / 60_000} min; stopping\n`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  const rss = { start: rssMiB() };
  const { server, ids } = await setUp(opts, work);
  try {
    // Warm-up, then the baseline every later RSS is compared with.
    await pool(Math.min(2000, opts.hooks), 64, (i) => server.host.callHook(ids[i % ids.length], 'Echo', { i }));
    rss.afterSetup = rssMiB();
    const pids = (await server.host.list()).map((p) => p.pid).filter((pid) => pid !== undefined);
    const results = [];
    let cpu = cpuSample(pids);
    const measured = (r) => {
      const now = cpuSample(pids);
      Object.assign(r, cpuUse(cpu, now, r.ops));
      cpu = now;
      return r;
    };
    results.push(measured(summary('hooks', await hooksPhase(server.host, ids, opts), { rssAfterMiB: rssMiB() })));
    const kv = await kvPhase(server.host, ids, opts);
    const kvCpu = cpuSample(pids);
    const missing = await verifyKv(path.join(work, 'data'), kv.acked);
    const kvResult = summary('kv', { ...kv, failures: [...kv.failures, ...Array.from({ length: missing }, () => 'lost: acknowledged write missing')] }, {
      targetPerSecond: opts.kvRate,
      achievedPerSecond: round((kv.latencies.length + kv.failures.length) / kv.seconds, 0),
      acknowledgedWrites: kv.acked.length,
      rssAfterMiB: rssMiB(),
    });
    Object.assign(kvResult, cpuUse(cpu, kvCpu, kvResult.ops));
    results.push(kvResult);
    cpu = cpuSample(pids);
    results.push(measured(summary('http', await httpPhase(server.url, ids, opts), { concurrency: opts.httpConcurrency, rssAfterMiB: rssMiB() })));
    const floor = await floorPerMessage(work);
    rss.end = rssMiB();
    const stillRunning = (await server.host.list()).filter((p) => p.state === 'running' && p.restarts === 0).length;
    const report = { options: opts, plugins: ids.length, pluginsRunningWithoutRestart: stillRunning, rssMiB: rss, results, floor, node: process.version, cpus: os.cpus().length };
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      console.log(`${ids.length} plugins (${opts.raw ? "raw contract, unary calls" : "SDK, streamed data path"}), ${stillRunning} still running with no restart; host RSS MiB: start ${rss.start}, after setup ${rss.afterSetup}, end ${rss.end}`);
      console.log(
        table(
          'load (loopback; p50/p99 in ms)',
          ['phase', 'ops', 'errors', 'lost', 'p50', 'p99', 'ops/s', 'host CPU µs/op', 'plugins CPU µs/op', 'machine busy %', 'RSS after'],
          results.map((r) => ({
            phase: r.phase,
            ops: r.ops,
            errors: r.errors,
            lost: r.lost,
            p50: r.p50Ms,
            p99: r.p99Ms,
            'ops/s': r.phase === 'kv' ? `${r.achievedPerSecond} (target ${r.targetPerSecond})` : r.perSecond,
            'host CPU µs/op': r.hostCpuUsPerOp,
            'plugins CPU µs/op': r.pluginsCpuUsPerOp,
            'machine busy %': r.machineBusyPct,
            'RSS after': r.rssAfterMiB,
          })),
        ),
      );
      console.log(`\nfloor: a bare grpc-js echo server answering one message at a time at ${floor.ratePerSecond}/s spends ${floor.serverCpuUsPerMessage} µs CPU per message;`);
      console.log(`a KV op is two such messages in its plugin, so ${opts.kvRate} ops/s needs at least ${round((2 * floor.serverCpuUsPerMessage * opts.kvRate) / 1e6, 2)} CPU seconds per second in the plugins alone (this machine has ${os.cpus().length} cores)`);
      for (const r of results) if (r.firstFailure) console.log(`${r.phase}: first failure: ${r.firstFailure}`);
    }
    const bad = results.some((r) => r.errors > 0 || r.lost > 0) || stillRunning !== ids.length;
    process.exitCode = bad ? 1 : 0;
  } finally {
    await server.close();
    clearTimeout(watchdog);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
