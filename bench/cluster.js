'use strict';
/**
 * Cluster mode on PostgreSQL, in two parts (skipped when no PostgreSQL URL is
 * given in PLUGHOST_BENCH_PG_URL or PLUGHOST_TEST_PG_URL; scripts/with-postgres.sh
 * starts a throwaway server and sets the latter):
 *
 * 1. KV through a plugin: bench/fixtures/runtime's KvRoundTrip hook (one kv.set
 *    and one kv.get) on a PostgreSQL host beside the same plugin on a SQLite
 *    host, beside PostgreSQL's own round trip (`SELECT 1` through a pg Pool with
 *    the store's pool settings) and beside the store's two KV statements sent
 *    through that pool without plughost (a write commits, so it pays the WAL
 *    flush that SELECT 1 does not), in alternating rounds. The Noop hook on
 *    each host is measured too, so that hook dispatch can be taken out: what is
 *    left, halved, is one KV operation as a plugin sees it.
 * 2. Convergence: three `plughost serve --database <a fresh database>` processes;
 *    a small SDK plugin with an HTTP route is installed and enabled through node
 *    A's REST API, and the time from the enable's acknowledgment to the first 200
 *    from node B's and node C's route is taken, 20 times (removed between
 *    rounds). Beside it, the plugin's own start on A: install acknowledged →
 *    enable acknowledged and A's route answering.
 *
 * Runs the built dist/ code: `npm run build && node bench/cluster.js`.
 */
const { execFileSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, Pool } = require('pg');
const pino = require('pino');
const { PluginHost } = require('../dist/src/runtime/index.js');
const { AdminClient } = require('../dist/src/cli/client');
const { median, percentile, round, sequential, table, throughput } = require('./lib');

const ROOT = path.join(__dirname, '..');
const PLUGHOST = path.join(ROOT, 'bin', 'plughost.js');
const KV_FIXTURE = path.join(__dirname, 'fixtures', 'runtime');
const HTTP_FIXTURE = path.join(__dirname, 'fixtures', 'server', 'plugin');
const HTTP_PLUGIN_ID = 'com.plughost.bench';
const PAYLOAD = { id: 'n1', n: 0 };
/** What PostgresStore.open gives its pool, so the baseline pays the same pool. */
const STORE_POOL = { max: 10, connectionTimeoutMillis: 10_000 };
const NODES = ['a', 'b', 'c'];
const CONVERGE_ROUNDS = 20;
const CONVERGE_BOUND_MS = 30_000;
const POLL_MS = 5;

function pgUrl() {
  return process.env.PLUGHOST_BENCH_PG_URL || process.env.PLUGHOST_TEST_PG_URL || undefined;
}

/** A database of its own on the server at `adminUrl`, dropped (sessions and all) by drop(). */
async function freshDatabase(adminUrl, tag) {
  const name = `plughost_bench_${tag}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = async (sql) => {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

function pack(folder, out) {
  execFileSync(process.execPath, [PLUGHOST, 'pack', folder, '-o', out], { stdio: 'pipe' });
  return out;
}

// ---- part 1: KV through a plugin ---------------------------------------------------------------

/** A key of its own plugin id: the statements a kv.set and a kv.get make in PostgresStore, without plughost around them. */
const RAW_KEY = ['bench.raw', Buffer.from('counter'), Buffer.from('0')];
const RAW_SET = `INSERT INTO plughost_kv (plugin_id, key, value, expires_at) VALUES ($1, $2, $3, NULL)
  ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`;
const RAW_GET = `SELECT value FROM plughost_kv WHERE plugin_id = $1 AND key = $2
  AND (expires_at IS NULL OR expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint)`;

async function rawSetGet(pool) {
  await pool.query(RAW_SET, RAW_KEY);
  await pool.query(RAW_GET, RAW_KEY.slice(0, 2));
}

async function openHost(dataDir, bundle, database) {
  const host = await PluginHost.open({ dataDir, database, logger: pino({ level: 'silent' }) });
  try {
    const { id } = await host.install(bundle);
    await host.enable(id);
    const outcomes = [...(await host.notify('Noop', PAYLOAD)), ...(await host.notify('KvRoundTrip', PAYLOAD))];
    if (outcomes.length !== 2 || outcomes.some((o) => !o.ok)) throw new Error(`bench cluster: the KV plugin answered ${JSON.stringify(outcomes)}`);
    return host;
  } catch (err) {
    await host.close();
    throw err;
  }
}

async function kvPart(adminUrl, work, opts) {
  const bundle = pack(KV_FIXTURE, path.join(work, 'kv.tar.gz'));
  const db = await freshDatabase(adminUrl, 'kv');
  let sqlite;
  let pg;
  const pool = new Pool({ connectionString: db.url, ...STORE_POOL, application_name: 'plughost-bench' });
  pool.on('error', () => undefined);
  try {
    sqlite = await openHost(path.join(work, 'kv-sqlite'), bundle);
    pg = await openHost(path.join(work, 'kv-pg'), bundle, db.url);
    const sides = [
      { key: 'sqliteNoop', what: 'SQLite host: Noop hook (dispatch only)', call: () => sqlite.notify('Noop', PAYLOAD) },
      { key: 'sqliteKv', what: 'SQLite host: KvRoundTrip hook (kv.set + kv.get)', call: () => sqlite.notify('KvRoundTrip', PAYLOAD) },
      { key: 'pgNoop', what: 'PostgreSQL host: Noop hook (dispatch only)', call: () => pg.notify('Noop', PAYLOAD) },
      { key: 'pgKv', what: 'PostgreSQL host: KvRoundTrip hook (kv.set + kv.get)', call: () => pg.notify('KvRoundTrip', PAYLOAD) },
      { key: 'rawKv', what: "PostgreSQL, no plughost: the store's KV upsert + select through a pg Pool", call: () => rawSetGet(pool) },
      { key: 'select1', what: 'PostgreSQL round trip: SELECT 1 through a pg Pool', call: () => pool.query('SELECT 1') },
    ];
    const runs = Object.fromEntries(sides.map((s) => [s.key, []]));
    for (let r = 0; r < opts.rounds; r++) {
      for (const side of sides) {
        const seq = await sequential(side.call, opts.n, opts.warmup);
        const perSecond = await throughput(side.call, opts.total, opts.inFlight);
        runs[side.key].push({ ...seq, perSecond });
      }
      process.stderr.write(`bench cluster: KV round ${r + 1}/${opts.rounds} done\n`);
    }
    const m = Object.fromEntries(Object.entries(runs).map(([key, rs]) => [key, {
      p50: median(rs.map((x) => x.p50_us)),
      p99: median(rs.map((x) => x.p99_us)),
      perSecond: median(rs.map((x) => x.perSecond)),
    }]));
    // Two KV operations per KvRoundTrip call; SELECT 1 is one round trip per call.
    const opsPerCall = (key) => (key.endsWith('Kv') ? 2 : 1);
    const rawOp = round(m.rawKv.p50 / 2);
    const rows = sides.map((s) => ({
      what: s.what,
      p50_us: m[s.key].p50,
      p99_us: m[s.key].p99,
      calls_per_s: m[s.key].perSecond,
      ops_per_s: s.key.endsWith('Noop') ? '' : Math.round(m[s.key].perSecond * opsPerCall(s.key)),
    }));
    const perOp = (kv, noop) => round((m[kv].p50 - m[noop].p50) / 2);
    const sqliteOp = perOp('sqliteKv', 'sqliteNoop');
    const pgOp = perOp('pgKv', 'pgNoop');
    rows.push(
      { what: 'one KV op through a plugin on SQLite ((KV p50 − Noop p50) / 2)', p50_us: sqliteOp, p99_us: '', calls_per_s: '', ops_per_s: '' },
      { what: 'one KV op through a plugin on PostgreSQL ((KV p50 − Noop p50) / 2)', p50_us: pgOp, p99_us: '', calls_per_s: '', ops_per_s: '' },
      { what: 'one KV statement on PostgreSQL, no plughost (upsert + select p50 / 2)', p50_us: rawOp, p99_us: '', calls_per_s: '', ops_per_s: '' },
    );
    return {
      name: `KV through a plugin, PostgreSQL beside SQLite and beside PostgreSQL's own round trip (${opts.inFlight} in flight for calls/s; median of ${opts.rounds} alternating rounds)`,
      rows,
      ratios: {
        'KV op through a plugin on PG / PG round trip SELECT 1 (p50; aim ≤ 3)': round(pgOp / m.select1.p50, 2),
        'KV op through a plugin on PG / the same statement without plughost (p50)': round(pgOp / rawOp, 2),
        'KV op through a plugin on PG / on SQLite (p50)': round(pgOp / sqliteOp, 2),
        'PG round trips/s / KV ops/s through a plugin on PG': round(m.select1.perSecond / (m.pgKv.perSecond * 2), 2),
        'KV ops/s through a plugin: SQLite / PG': round(m.sqliteKv.perSecond / m.pgKv.perSecond, 2),
      },
    };
  } finally {
    if (pg) await pg.close();
    if (sqlite) await sqlite.close();
    await pool.end().catch(() => undefined);
    await db.drop();
  }
}

// ---- part 2: convergence over three serve processes --------------------------------------------

/** One `plughost serve` child; its stdout (the pino logs too) is drained and its tail kept for errors. */
function startNode(name, database, work, token) {
  const child = spawn(process.execPath, [
    PLUGHOST, 'serve', '--database', database, '--node-id', `bench-${name}`,
    '--data-dir', path.join(work, `node-${name}`), '--port', '0', '--host', '127.0.0.1',
  ], { env: { ...process.env, PLUGHOST_ADMIN_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk) => {
    tail = (tail + chunk.toString()).slice(-8192);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench cluster: node ${name} did not start within 60 s:\n${tail}`)), 60_000);
    const watch = () => {
      const m = /listening on (http:\/\/\S+)/.exec(tail);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', watch);
      resolve(m[1]);
    };
    child.stdout.on('data', watch);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench cluster: node ${name} exited with ${code} before listening:\n${tail}`));
    });
  });
  return {
    name,
    child,
    listening,
    tail: () => tail,
    /** SIGTERM (serve stops its plugins), then SIGKILL if it has not exited within 20 s. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function status(url) {
  try {
    const res = await fetch(url);
    const text = await res.text();
    return { code: res.status, text: text.slice(0, 200) };
  } catch (err) {
    return { code: 0, text: err.cause?.code ?? err.message };
  }
}

/** Polls `url` every POLL_MS until `done(answer)`; the ms from `since` to that answer, or the last answer if the bound passes. */
async function pollUntil(url, done, since, boundMs) {
  let last;
  for (;;) {
    last = await status(url);
    const now = performance.now();
    if (done(last)) return { ms: now - since };
    if (now - since > boundMs) return { timedOut: true, last };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function describeAnswer(a) {
  return a.code === 0 ? `no answer (${a.text})` : `HTTP ${a.code} ${a.text}`;
}

function summary(what, values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { what, rounds: values.length, p50_ms: round(percentile(sorted, 50)), p99_ms: round(percentile(sorted, 99)), max_ms: round(sorted[sorted.length - 1] ?? NaN) };
}

async function convergencePart(adminUrl, work, opts) {
  const bundle = pack(HTTP_FIXTURE, path.join(work, 'http.tar.gz'));
  const db = await freshDatabase(adminUrl, 'converge');
  const token = crypto.randomBytes(32).toString('base64url');
  const nodes = NODES.map((name) => startNode(name, db.url, work, token));
  const killAll = () => nodes.forEach((n) => n.child.exitCode === null && n.child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    const urls = await Promise.all(nodes.map((n) => n.listening));
    const [a, b, c] = urls;
    const admin = new AdminClient({ url: a, token });
    const route = (base) => `${base}/plugins/${HTTP_PLUGIN_ID}/ping`;
    const ok = (x) => x.code === 200;
    const gone = (x) => x.code === 404;
    const own = [];
    const onB = [];
    const onC = [];
    const onBoth = [];
    const removed = [];
    let failure;
    for (let i = 0; i < opts.rounds && !failure; i++) {
      const t0 = performance.now();
      await admin.upload({ bundle });
      const installed = performance.now();
      await admin.request('POST', `/plugins/${HTTP_PLUGIN_ID}/enable`);
      const enabled = performance.now();
      const onA = await pollUntil(route(a), ok, installed, opts.boundMs);
      if (onA.timedOut) throw new Error(`bench cluster: node A's own route did not answer 200 after its enable: ${describeAnswer(onA.last)}`);
      own.push(onA.ms);
      const [rb, rc] = await Promise.all([pollUntil(route(b), ok, enabled, opts.boundMs), pollUntil(route(c), ok, enabled, opts.boundMs)]);
      const late = [['B', rb], ['C', rc]].filter(([, r]) => r.timedOut);
      if (late.length) {
        failure = `convergence did not happen within ${opts.boundMs / 1000} s (round ${i + 1}): after the enable through node A was acknowledged, ${
          late.map(([n, r]) => `node ${n} still answered ${describeAnswer(r.last)}`).join('; ')}`;
        break;
      }
      onB.push(rb.ms);
      onC.push(rc.ms);
      onBoth.push(Math.max(rb.ms, rc.ms));
      await admin.request('DELETE', `/plugins/${HTTP_PLUGIN_ID}`);
      const deleted = performance.now();
      const [gb, gc] = await Promise.all([pollUntil(route(b), gone, deleted, opts.boundMs), pollUntil(route(c), gone, deleted, opts.boundMs)]);
      if (gb.timedOut || gc.timedOut) {
        failure = `removal did not converge within ${opts.boundMs / 1000} s (round ${i + 1}): node B answered ${describeAnswer(gb.last ?? { code: 404, text: '' })}, node C ${describeAnswer(gc.last ?? { code: 404, text: '' })}`;
        break;
      }
      removed.push(Math.max(gb.ms, gc.ms));
      process.stderr.write(`bench cluster: convergence round ${i + 1}/${opts.rounds}: B ${Math.round(rb.ms)} ms, C ${Math.round(rc.ms)} ms (A's own start ${Math.round(onA.ms)} ms; install ${Math.round(installed - t0)} ms)\n`);
    }
    const rows = [
      summary("baseline: the plugin's own start on node A (install ack → enable ack and A's route answering)", own),
      ...(onB.length ? [
        summary('install + enable through A (enable ack) → 200 from node B', onB),
        summary('install + enable through A (enable ack) → 200 from node C', onC),
        summary('… → 200 from both B and C (the later of the two)', onBoth),
        summary('remove through A (ack) → 404 from both B and C', removed),
      ] : []),
    ];
    const result = { name: `Convergence over ${NODES.length} plughost serve processes on one PostgreSQL (polling every ${POLL_MS} ms)`, rows };
    if (failure) result.failure = failure;
    else result.ratios = { 'convergence p50 (both B and C) − own start p50, ms (aim < 1000)': round(median(onBoth) - median(own)) };
    return result;
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    process.off('exit', killAll);
    await db.drop();
  }
}

async function run(options = {}) {
  const opts = {
    kv: { rounds: 3, n: 1000, warmup: 200, total: 3000, inFlight: 16 },
    convergence: { rounds: CONVERGE_ROUNDS, boundMs: CONVERGE_BOUND_MS },
    ...options,
  };
  const adminUrl = pgUrl();
  if (!adminUrl) {
    return { skipped: 'no PostgreSQL: set PLUGHOST_BENCH_PG_URL (a role that may CREATE DATABASE), or run `scripts/with-postgres.sh npm run bench -- cluster` (Debian\'s postgresql package)' };
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phbc-'));
  try {
    const kv = await kvPart(adminUrl, work, opts.kv);
    const convergence = await convergencePart(adminUrl, work, opts.convergence);
    return { kv, convergence };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** How bench/run.js prints what run() returns. */
function print(r) {
  if (r.skipped) return console.log(`\ncluster skipped: ${r.skipped}`);
  for (const part of [r.kv, r.convergence]) {
    console.log(table(part.name, Object.keys(part.rows[0]), part.rows));
    if (part.ratios) console.log(table('Ratios', ['ratio', 'value'], Object.entries(part.ratios).map(([ratio, value]) => ({ ratio, value }))));
    if (part.failure) console.log(`\n${part.failure}`);
  }
}

module.exports = { run, print, freshDatabase, pgUrl };

if (require.main === module) {
  run().then(print, (err) => {
    console.error(err);
    process.exit(1);
  });
}
