'use strict';
/**
 * npm run bench: every side-by-side measurement, printed as tables and written
 * to bench/results.json. These are measurements, never pass/fail tests: the
 * machines are shared, so read the ratios, not the absolute times.
 */
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { table } = require('./lib');

/** Each suite: a module exporting run(), and how to print what it returns. */
const SUITES = [
  { name: 'protocol', module: './protocol', print: printProtocol },
  { name: 'go-anchor', module: './go-anchor', print: printAnchor },
  { name: 'extract', module: './extract', print: printGeneric },
  { name: 'store', module: './store', print: printGeneric },
  { name: 'spawn', module: './spawn', print: printGeneric },
  { name: 'runtime', module: './runtime', print: printGeneric },
  { name: 'hooks', module: './hooks', print: printGeneric },
  { name: 'chain', module: './chain', print: (r) => require('./chain').print(r) },
  { name: 'server', module: './server', print: printGeneric },
  { name: 'cluster', module: './cluster', print: (r) => require('./cluster').print(r) },
  { name: 'api', module: './api', print: (r) => require('./api').print(r) },
  { name: 'pg-batch', module: './pg-batch', print: printGeneric },
];

function printProtocol(r) {
  const rows = Object.entries(r.calls).map(([side, v]) => ({ side, ...v }));
  console.log(table('Unary call host → plugin (median of alternating rounds)', ['side', 'p50_us', 'p99_us', 'throughput_per_s'], rows));
  console.log(table('Spawn to first reply', ['what', 'ms'], [
    { what: 'TS plugin via PluginClient (spawn → handshake → first call)', ms: r.spawn.plugin_ms },
    { what: 'node -e 0 (spawn → exit)', ms: r.spawn.node_e0_ms },
  ]));
  console.log(table('Ratios', ['ratio', 'value'], Object.entries(r.ratios).map(([ratio, value]) => ({ ratio, value }))));
}

function printAnchor(r) {
  if (r.skipped) return console.log(`\ngo-plugin anchor skipped: ${r.skipped}`);
  console.log(table(r.name, ['metric', 'value'], Object.entries(r.result).map(([metric, value]) => ({ metric, value }))));
}

function printGeneric(r) {
  if (r && Array.isArray(r.rows) && r.rows.length) {
    console.log(table(r.name || 'results', Object.keys(r.rows[0]), r.rows));
    if (r.ratio !== undefined) console.log(`ratio: ${r.ratio}`);
  } else {
    console.log(JSON.stringify(r, null, 2));
  }
}

async function main() {
  const only = process.argv.slice(2);
  const results = { machine: { cpus: os.cpus().length, node: process.version, date: new Date().toISOString() } };
  for (const suite of SUITES) {
    if (only.length && !only.includes(suite.name)) continue;
    const file = path.join(__dirname, `${suite.module}.js`);
    if (!fs.existsSync(file)) continue;
    process.stderr.write(`bench: running ${suite.name}...\n`);
    const r = await require(file).run();
    results[suite.name] = r;
    suite.print(r);
  }
  fs.writeFileSync(path.join(__dirname, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log('\nwrote bench/results.json');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
