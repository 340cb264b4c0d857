'use strict';
/**
 * Plugin → host API calls over API.CallStream beside unary calls, in one run:
 * two hosts per store, one with apiTransport 'stream' (the default: the SDK
 * batches its calls over one stream) and one with 'unary' (a gRPC call per API
 * call, as before the stream), each running bench/fixtures/runtime's KvPairs
 * hook, which times kv.set+kv.get pairs inside the plugin: the sequential p50
 * and p99 of a pair, then pairs/s with `inFlight` pairs outstanding. Rounds
 * alternate over the hosts; each figure is the median over rounds.
 *
 * With PLUGHOST_BENCH_PG_URL or PLUGHOST_TEST_PG_URL (scripts/with-postgres.sh
 * npm run bench -- api) the same runs on PostgreSQL too, beside PostgreSQL's
 * own round trip (SELECT 1 through a pg Pool): issue 14's aim is one KV op
 * through a plugin within 3× of it.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const pino = require('pino');
const { Pool } = require('pg');
const { freshDatabase, pgUrl } = require('./cluster');
const { PluginHost } = require('../dist/src/runtime/index.js');
const { median, sequential, round } = require('./lib');

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'runtime');
const TRANSPORTS = ['stream', 'unary'];

async function openHost(dataDir, bundle, apiTransport, database) {
  const host = await PluginHost.open({ dataDir, database, logger: pino({ level: 'silent' }), defaults: { apiTransport, hookTimeoutMs: 120_000 } });
  const { id } = await host.install(bundle);
  await host.enable(id);
  return host;
}

/** One KvPairs run inside the plugin. */
async function pairs(host, opts) {
  const res = await host.filter('KvPairs', { n: opts.n, warmup: opts.warmup, total: opts.total, inFlight: opts.inFlight });
  if (res.rejected || typeof res.payload?.pairs_per_s !== 'number') throw new Error(`bench api: KvPairs answered ${JSON.stringify(res)}`);
  return res.payload;
}

async function run(options = {}) {
  const opts = { rounds: 3, n: 1000, warmup: 200, total: 4000, inFlight: 64, ...options };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phba-'));
  const hosts = [];
  const dbs = [];
  let pool;
  try {
    const bundle = path.join(work, 'kv.tar.gz');
    execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', FIXTURE, '-o', bundle], { stdio: 'pipe' });
    const stores = [{ store: 'SQLite', database: undefined }];
    const adminUrl = pgUrl();
    if (adminUrl) {
      for (const t of TRANSPORTS) dbs.push({ ...(await freshDatabase(adminUrl, `api_${t}`)), transport: t });
      stores.push({ store: 'PostgreSQL', database: (t) => dbs.find((d) => d.transport === t).url });
      pool = new Pool({ connectionString: adminUrl, max: 10 });
      pool.on('error', () => undefined);
    }
    const sides = [];
    for (const { store, database } of stores) {
      for (const t of TRANSPORTS) {
        const host = await openHost(path.join(work, `${store}-${t}`), bundle, t, database?.(t));
        hosts.push(host);
        sides.push({ key: `${store}.${t}`, store, transport: t, host });
      }
    }
    const runs = Object.fromEntries(sides.map((s) => [s.key, []]));
    const select1 = [];
    for (let r = 0; r < opts.rounds; r++) {
      for (const side of sides) runs[side.key].push(await pairs(side.host, opts));
      if (pool) select1.push(await sequential(() => pool.query('SELECT 1'), opts.n, opts.warmup));
      process.stderr.write(`bench api: round ${r + 1}/${opts.rounds} done\n`);
    }
    const m = Object.fromEntries(sides.map((s) => [s.key, {
      p50: median(runs[s.key].map((x) => x.p50_us)),
      p99: median(runs[s.key].map((x) => x.p99_us)),
      perSecond: median(runs[s.key].map((x) => x.pairs_per_s)),
    }]));
    const rows = sides.map((s) => {
      const unary = m[`${s.store}.unary`];
      return {
        what: `${s.store}: kv.set + kv.get pair inside a plugin [${s.transport}]`,
        pair_p50_us: m[s.key].p50,
        pair_p99_us: m[s.key].p99,
        [`pairs_per_s_${opts.inFlight}_in_flight`]: m[s.key].perSecond,
        stream_vs_unary: s.transport === 'stream' ? `p50 ${round(m[s.key].p50 / unary.p50, 2)}, pairs/s ${round(m[s.key].perSecond / unary.perSecond, 2)}` : '',
      };
    });
    const ratios = {};
    if (pool) {
      const rtt = median(select1.map((x) => x.p50_us));
      rows.push({ what: 'PostgreSQL round trip: SELECT 1 through a pg Pool (p50)', pair_p50_us: rtt, pair_p99_us: median(select1.map((x) => x.p99_us)) });
      for (const t of TRANSPORTS) ratios[`one KV op through a plugin on PostgreSQL (pair p50 / 2) / SELECT 1 p50 [${t}] (aim ≤ 3)`] = round(m[`PostgreSQL.${t}`].p50 / 2 / rtt, 2);
    }
    return { name: `API calls from inside a plugin over CallStream and unary (median of ${opts.rounds} alternating rounds)`, rows, ratios };
  } finally {
    for (const h of hosts) await h.close();
    if (pool) await pool.end();
    for (const d of dbs) await d.drop().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function print(r) {
  const { table } = require('./lib');
  const columns = [...new Set(r.rows.flatMap((row) => Object.keys(row)))];
  console.log(table(r.name, columns, r.rows));
  if (Object.keys(r.ratios).length) console.log(table('Ratios', ['ratio', 'value'], Object.entries(r.ratios).map(([ratio, value]) => ({ ratio, value }))));
}

module.exports = { run, print };

if (require.main === module) {
  run().then(print, (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
