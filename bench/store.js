'use strict';
/**
 * KV store: plughost's SqliteStore set and get beside raw better-sqlite3
 * statements on the same schema shape and the same pragmas, in the same run,
 * alternating rounds, for both durability modes. The difference is our
 * overhead (promises, expiry checks, argument handling). Runs the built dist/ code.
 *
 *   node bench/store.js        # prints a table
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { SqliteStore } = require('../dist/src/store/index.js');
const { median, round, table } = require('./lib');

const ROUNDS = 3;
/** power-loss fsyncs every commit, so it gets fewer operations per round. */
const MODES = [
  { durability: 'process-crash', synchronous: 'NORMAL', ops: 20_000 },
  { durability: 'power-loss', synchronous: 'FULL', ops: 2_000 },
];
const VALUE = Buffer.alloc(100, 'v');

function opsPerSecond(ops, started) {
  return ops / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function roundOurs(file, mode) {
  const store = SqliteStore.open({ file, durability: mode.durability, sweepIntervalMs: 0 });
  try {
    let t = process.hrtime.bigint();
    for (let i = 0; i < mode.ops; i++) await store.kvSet('bench', `key-${i}`, VALUE);
    const set = opsPerSecond(mode.ops, t);
    t = process.hrtime.bigint();
    for (let i = 0; i < mode.ops; i++) await store.kvGet('bench', `key-${i}`);
    return { set, get: opsPerSecond(mode.ops, t) };
  } finally {
    await store.close();
  }
}

function roundRaw(file, mode) {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${mode.synchronous}`);
    db.exec('CREATE TABLE kv (plugin_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (plugin_id, key)) WITHOUT ROWID');
    const insert = db.prepare('INSERT OR REPLACE INTO kv (plugin_id, key, value) VALUES (?, ?, ?)');
    const select = db.prepare('SELECT value FROM kv WHERE plugin_id = ? AND key = ?');
    let t = process.hrtime.bigint();
    for (let i = 0; i < mode.ops; i++) insert.run('bench', `key-${i}`, VALUE);
    const set = opsPerSecond(mode.ops, t);
    t = process.hrtime.bigint();
    for (let i = 0; i < mode.ops; i++) select.get('bench', `key-${i}`);
    return { set, get: opsPerSecond(mode.ops, t) };
  } finally {
    db.close();
  }
}

async function run() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-bench-store-'));
  try {
    const rows = [];
    for (const mode of MODES) {
      const ours = [];
      const raw = [];
      for (let r = 0; r < ROUNDS; r++) {
        ours.push(await roundOurs(path.join(work, `ours-${mode.durability}-${r}.db`), mode));
        raw.push(roundRaw(path.join(work, `raw-${mode.durability}-${r}.db`), mode));
      }
      const row = (what, results) => ({
        durability: `${mode.durability} (synchronous=${mode.synchronous})`,
        what,
        ops: mode.ops,
        set_ops_per_s: Math.round(median(results.map((x) => x.set))),
        get_ops_per_s: Math.round(median(results.map((x) => x.get))),
      });
      const a = row('plughost SqliteStore kvSet / kvGet', ours);
      const b = row('raw better-sqlite3 insert / select', raw);
      rows.push(a, b, {
        durability: a.durability,
        what: 'ratio plughost / raw',
        ops: '',
        set_ops_per_s: round(a.set_ops_per_s / b.set_ops_per_s, 2),
        get_ops_per_s: round(a.get_ops_per_s / b.get_ops_per_s, 2),
      });
    }
    return { name: `KV store, one write per commit, 100-byte values, median of ${ROUNDS} rounds (temp dir ${os.tmpdir()})`, rows };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run };

if (require.main === module) {
  run().then(
    (r) => console.log(table(r.name, Object.keys(r.rows[0]), r.rows)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
