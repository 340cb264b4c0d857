'use strict';
/** Measurement helpers shared by the bench scripts: percentiles, sequential latency, concurrent throughput. */

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Sequential latency of `call` (returns a promise), in µs: p50 and p99 after a warm-up. */
async function sequential(call, n, warmup = 500) {
  for (let i = 0; i < warmup; i++) await call();
  const times = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await call();
    times[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  times.sort((a, b) => a - b);
  return { p50_us: round(percentile(times, 50)), p99_us: round(percentile(times, 99)) };
}

/** Calls per second with `inFlight` calls outstanding, `total` calls in all. */
async function throughput(call, total, inFlight) {
  let started = 0;
  const t = process.hrtime.bigint();
  const worker = async () => {
    while (started < total) {
      started++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return round(total / seconds);
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function unary(client, method, req) {
  return new Promise((resolve, reject) => client[method](req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Prints rows as an aligned text table. */
function table(title, columns, rows) {
  const cells = [columns, ...rows.map((r) => columns.map((c) => String(r[c] ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ');
  return [`\n${title}`, line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** A bidirectional stream of raw bytes, no codec: bench/fixtures/bare-server.js echoes each message back, so it measures grpc-js and HTTP/2 alone. */
const RAW_STREAM = {
  Stream: {
    path: '/bare.Raw/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: (b) => b,
    requestDeserialize: (b) => b,
    responseSerialize: (b) => b,
    responseDeserialize: (b) => b,
  },
};

module.exports = { RAW_STREAM, percentile, median, sequential, throughput, round, unary, table };
