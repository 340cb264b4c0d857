'use strict';
/**
 * Where a chain step's time goes, without plughost code: a Node client calls
 * unary Echo.Say on bare grpc-js server processes (bench/fixtures/bare-server.js)
 * and reads each process's /proc schedstat (on-CPU ns, run-queue wait ns) and
 * its main thread's voluntary/involuntary context switches around each block:
 *
 * - same: every call to server 0;
 * - rotate: call k to server k mod SERVERS (a chain over SERVERS processes);
 * - evict: every call to server 0, the client reading EVICT_MIB of memory
 *   between calls (outside the timed call), which empties the caches the way
 *   other processes running in between would, but adds no process.
 *
 * Per call it prints the servers' CPU and wait, the client's CPU, and the
 * servers' main-thread switches (voluntary: sleeps, one per call when nothing
 * else wakes a server). Linux only; a diagnostic, not a suite (run by hand).
 *
 *   node bench/chain-cpu.js                  # SERVERS=10 CALLS=1000 ROUNDS=4 WARM=2000 EVICT_MIB=64
 *   SERVERS=2 node bench/chain-cpu.js
 *   SERVER_NODE_FLAGS='--single-threaded' node bench/chain-cpu.js
 */
const fs = require('node:fs');
const { startFloor } = require('./chain');
const { median, round } = require('./lib');

const env = (name, fallback) => Number(process.env[name] || fallback);
const SERVERS = env('SERVERS', 10);
const CALLS = env('CALLS', 1000);
const ROUNDS = env('ROUNDS', 4);
const WARM = env('WARM', 2000);
const EVICT_MIB = env('EVICT_MIB', 64);
const FLAGS = (process.env.SERVER_NODE_FLAGS || '').split(/\s+/).filter(Boolean);

/** On-CPU ns, run-queue wait ns of every thread of `pid`; voluntary and involuntary switches of its main thread. */
function sched(pid) {
  const out = { cpu: 0, wait: 0, voluntary: 0, involuntary: 0 };
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const [cpu, wait] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
    out.cpu += cpu;
    out.wait += wait;
  }
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  out.voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1]);
  out.involuntary = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1]);
  return out;
}

function sum(pids) {
  const all = pids.map(sched);
  return Object.fromEntries(Object.keys(all[0]).map((k) => [k, all.reduce((s, x) => s + x[k], 0)]));
}

async function main() {
  const floor = await startFloor(SERVERS, FLAGS);
  try {
    const say = floor.say;
    for (let i = 0; i < SERVERS; i++) for (let k = 0; k < WARM; k++) await say(i);
    const big = Buffer.alloc(EVICT_MIB * 1024 * 1024, 1);
    let sink = 0;
    const evict = () => {
      for (let i = 0; i < big.length; i += 64) sink += big[i];
    };
    const modes = { same: () => say(0), rotate: (k) => say(k % SERVERS), evict: () => (evict(), say(0)) };
    const pids = floor.pids;
    const kinds = Object.keys(modes);
    const runs = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < kinds.length; i++) {
        const kind = kinds[(i + r) % kinds.length];
        const a = sum(pids);
        const me = process.cpuUsage();
        let callUs = 0;
        for (let k = 0; k < CALLS; k++) {
          // evict's memory sweep runs before the timer starts; only the call is timed.
          const pending = modes[kind](k);
          const t = process.hrtime.bigint();
          await pending;
          callUs += Number(process.hrtime.bigint() - t) / 1000;
        }
        const b = sum(pids);
        const clientUs = process.cpuUsage(me);
        runs[kind].push({
          call_us: callUs / CALLS,
          server_cpu_us: (b.cpu - a.cpu) / 1000 / CALLS,
          server_wait_us: (b.wait - a.wait) / 1000 / CALLS,
          // evict's own sweep is most of the client's CPU there, so that row leaves it out.
          ...(kind === 'evict' ? {} : { client_cpu_us: (clientUs.user + clientUs.system) / CALLS }),
          server_voluntary: (b.voluntary - a.voluntary) / CALLS,
          server_involuntary: (b.involuntary - a.involuntary) / CALLS,
        });
      }
    }
    if (sink < 0) console.log(sink);
    for (const kind of kinds) {
      const row = Object.fromEntries(Object.keys(runs[kind][0]).map((k) => [k, round(median(runs[kind].map((x) => x[k])), 2)]));
      console.log(JSON.stringify({ servers: SERVERS, flags: FLAGS.join(' '), mode: kind, ...row }));
    }
  } finally {
    floor.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
