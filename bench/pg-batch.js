'use strict';
/**
 * PostgreSQL group commit (Store.batch on PostgresStore), in one run with
 * alternating rounds: the same kvSet calls, 64 to a CallStream message and two
 * messages in flight, either each committing alone (as outside a batch, and as
 * every KV call did before group commit) or a message's calls sharing one
 * transaction. Reports sets/s and the server's WAL flushes (pg_stat_wal.wal_sync)
 * per set: PostgreSQL already lets concurrent commits share a flush, so the
 * gain is what remains. Skipped when no PostgreSQL URL is set.
 *
 *   scripts/with-postgres.sh npm run bench -- pg-batch
 */
const { Client } = require('pg');
const { PostgresStore } = require('../dist/src/store/index.js');
const { freshDatabase, pgUrl } = require('./cluster');
const { median, round } = require('./lib');

const ROUNDS = 3;
const SETS = 20_000;
const PER_MESSAGE = 64;
const MESSAGES_IN_FLIGHT = 2;
const SIDES = ['alone', 'batched'];

async function walSyncs(adminUrl) {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return Number((await client.query('SELECT wal_sync FROM pg_stat_wal')).rows[0].wal_sync);
  } finally {
    await client.end();
  }
}

async function round1(store, side, adminUrl) {
  let next = 0;
  const lane = async () => {
    while (next < SETS) {
      const calls = [];
      const message = () => {
        for (let i = 0; i < PER_MESSAGE && next < SETS; i++) {
          const k = next++;
          calls.push(store.kvSet('bench', `k${k}`, Buffer.from(`v${k}`)));
        }
      };
      if (side === 'batched') store.batch(message);
      else message();
      await Promise.all(calls);
    }
  };
  const syncs = await walSyncs(adminUrl);
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: MESSAGES_IN_FLIGHT }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { perSecond: SETS / seconds, syncsPerSet: ((await walSyncs(adminUrl)) - syncs) / SETS };
}

async function run() {
  const adminUrl = pgUrl();
  if (!adminUrl) {
    return { skipped: 'no PostgreSQL: set PLUGHOST_BENCH_PG_URL, or run `scripts/with-postgres.sh npm run bench -- pg-batch`' };
  }
  const db = await freshDatabase(adminUrl, 'batch');
  const store = await PostgresStore.open({ url: db.url, sweepIntervalMs: 0 });
  const runs = Object.fromEntries(SIDES.map((s) => [s, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) runs[side].push(await round1(store, side, adminUrl));
    }
  } finally {
    await store.close();
    await db.drop();
  }
  const rows = SIDES.map((side) => ({
    what: `kvSet, ${PER_MESSAGE} per message, ${MESSAGES_IN_FLIGHT} messages in flight: ${side === 'batched' ? 'one transaction per message' : 'each call commits alone'}`,
    sets_per_s: round(median(runs[side].map((x) => x.perSecond)), 0),
    wal_flushes_per_set: round(median(runs[side].map((x) => x.syncsPerSet)), 3),
  }));
  return {
    name: `PostgreSQL group commit (median of ${ROUNDS} alternating rounds)`,
    rows,
    ratio: round(rows[1].sets_per_s / rows[0].sets_per_s, 2),
  };
}

module.exports = { run };

if (require.main === module) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)), (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
