'use strict';
/**
 * bench/server.js: the HTTP path through a plugin beside the same handlers as plain Fastify
 * routes in the same process, beside the grpc-js ceiling (bare ServeHTTP streams between this
 * process and a bare grpc-js server process, no Fastify and no SDK: see
 * fixtures/server/grpc-ceiling.js), and a 5 MiB bundle installed over REST. The plugin runs
 * under three hosts in this process: one multiplexing every exchange over ServeHTTPStream with
 * side channels off (every body on the stream), one with the default side channels (bodies from
 * 1 MiB over one-use unix sockets; the large rows only), one opening a ServeHTTP stream per
 * request (what plugins without the stream get). Rounds alternate between the sides, so drift
 * on a shared machine falls on all of them. The download declares its length on every side, so
 * the plugin's SDK may send it over a side channel. The large rows start with an unmeasured
 * round on every side (cold code), then take the best of two. Clients run in a worker thread over loopback with keep-alive agents. Run alone
 * with `node bench/server.js` after `npm run build`; it exports run() in the shape bench/run.js
 * expects of a suite. BENCH_STREAM_MB sets the body size of the upload and download rows
 * (default 100).
 */
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const Fastify = require('fastify');
const pino = require('pino');
const { startServer } = require('../dist/src/server');
const { AdminClient } = require('../dist/src/cli/client');
const { packBundle } = require('../dist/src/bundle');
const { median, round, table } = require('./lib');

/** Admin tokens are at least 32 characters; a fresh one per run. */
const BENCH_TOKEN = crypto.randomBytes(32).toString('base64url');
const handlers = require('./fixtures/server/handlers');
const ceiling = require('./fixtures/server/ceiling');

const ROOT = path.join(__dirname, '..');
const PLUGIN_ID = 'com.plughost.bench';
const SMALL = { concurrency: Number(process.env.BENCH_CONCURRENCY ?? 32), total: Number(process.env.BENCH_REQUESTS ?? 20000), rounds: 3 };
const STREAM_BYTES = Number(process.env.BENCH_STREAM_MB ?? 100) * 1024 * 1024;
const INSTALL_BYTES = 5 * 1024 * 1024;
const INSTALL_ROUNDS = 7;

function load(data) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'fixtures', 'server', 'load.js'), { workerData: data });
    worker.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m.result)));
    worker.once('error', reject);
  });
}

/** The same handlers as the plugin, as plain Fastify routes. */
async function directApp() {
  const app = Fastify({ logger: false, bodyLimit: STREAM_BYTES * 2 });
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.get('/ping', async () => handlers.ping());
  app.post('/upload', async (request) => handlers.countBytes(request.body));
  app.get('/download', async (request, reply) => {
    const { Readable } = require('node:stream');
    const bytes = Number(request.query.bytes);
    return reply.type('application/octet-stream').header('content-length', bytes).send(Readable.from(handlers.produce(bytes)));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, base: `http://127.0.0.1:${app.server.address().port}` };
}

/** A plain plugin folder with 5 MiB of random (incompressible) bytes beside its entry. */
async function bigBundle(dir) {
  const folder = path.join(dir, 'big');
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'plugin.json'), JSON.stringify({ id: 'com.plughost.bench.big', name: 'Big', version: '1.0.0', server: { runtime: 'node', entry: 'main.js' } }));
  fs.writeFileSync(path.join(folder, 'main.js'), '// never started by the bench\n');
  fs.writeFileSync(path.join(folder, 'blob.bin'), crypto.randomBytes(INSTALL_BYTES));
  const out = path.join(dir, 'big.tar.gz');
  await packBundle(folder, out);
  return out;
}

async function run() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-bench-srv-'));
  const bundle = path.join(work, 'bench.tar.gz');
  execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', path.join(__dirname, 'fixtures', 'server', 'plugin'), '-o', bundle], { stdio: 'ignore' });
  const TRANSPORTS = { stream: { httpTransport: 'stream', httpSideChannel: false }, 'side channel': { httpTransport: 'stream' }, 'per-request': { httpTransport: 'per-request' } };
  const servers = {};
  for (const [transport, defaults] of Object.entries(TRANSPORTS)) {
    servers[transport] = await startServer({
      dataDir: path.join(work, `data-${transport.replace(' ', '-')}`),
      port: 0,
      adminToken: BENCH_TOKEN,
      logger: pino({ level: 'warn' }),
      hostOptions: { defaults },
    });
  }
  const direct = await directApp();
  try {
    const via = {};
    for (const transport of Object.keys(TRANSPORTS)) {
      const client = new AdminClient({ url: servers[transport].url, token: BENCH_TOKEN });
      await client.upload({ bundle });
      await client.request('POST', `/plugins/${PLUGIN_ID}/enable`);
      via[transport] = `${servers[transport].url}/plugins/${PLUGIN_ID}`;
    }
    const sides = { direct: direct.base, ...via };
    // Small requests never take a side channel: that host would only repeat the stream's numbers.
    const smallSides = Object.fromEntries(Object.entries(sides).filter(([side]) => side !== 'side channel'));

    // Alternating rounds, so drift on a shared machine falls on every side.
    const smallRuns = Object.fromEntries(Object.keys(smallSides).map((k) => [k, []]));
    for (let i = 0; i < SMALL.rounds; i++) {
      for (const [side, base] of Object.entries(smallSides)) smallRuns[side].push(await load({ kind: 'small', url: `${base}/ping`, ...SMALL }));
    }
    const best = (runs) => runs.reduce((a, b) => (b.req_per_s > a.req_per_s ? b : a));
    const small = Object.fromEntries(Object.entries(smallRuns).map(([side, runs]) => [side, best(runs)]));

    const streams = {};
    for (const direction of ['upload', 'download']) {
      const url = (base) => (direction === 'upload' ? `${base}/upload` : `${base}/download?bytes=${STREAM_BYTES}`);
      const runs = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
      // One round unmeasured first: a plugin's first large body runs its code cold (JIT), the direct route's too.
      for (const base of Object.values(sides)) await load({ kind: 'stream', direction, bytes: STREAM_BYTES, url: url(base) });
      for (let i = 0; i < 2; i++) {
        for (const [side, base] of Object.entries(sides)) runs[side].push((await load({ kind: 'stream', direction, bytes: STREAM_BYTES, url: url(base) })).mb_per_s);
      }
      streams[direction] = Object.fromEntries(Object.entries(runs).map(([side, v]) => [side, Math.max(...v)]));
    }

    // The grpc-js ceiling, measured in the same run: what ServeHTTP streams cost with nothing else in the path.
    const bare = await ceiling.startCeiling();
    const ceil = { small: 0, upload: 0, download: 0, download256: 0 };
    try {
      for (let i = 0; i < SMALL.rounds; i++) ceil.small = Math.max(ceil.small, await ceiling.streamsPerSecond(bare.client, SMALL));
      for (let i = 0; i < 2; i++) {
        ceil.upload = Math.max(ceil.upload, await ceiling.streamMBps(bare.client, 'upload', STREAM_BYTES));
        ceil.download = Math.max(ceil.download, await ceiling.streamMBps(bare.client, 'download', STREAM_BYTES));
        ceil.download256 = Math.max(ceil.download256, await ceiling.streamMBps(bare.client, 'download', STREAM_BYTES, 256 * 1024));
      }
    } finally {
      await bare.close();
    }

    const big = await bigBundle(work);
    const admin = new AdminClient({ url: servers.stream.url, token: BENCH_TOKEN });
    const installs = [];
    for (let i = 0; i < INSTALL_ROUNDS; i++) {
      const t = process.hrtime.bigint();
      await admin.upload({ bundle: big, query: { force: 'true' } });
      installs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }

    const mb = STREAM_BYTES / 1024 / 1024;
    const row = (measure, v, grpc, aim) => ({
      measure,
      stream: round(v.stream, 0),
      'side channel': v['side channel'] === undefined ? '' : round(v['side channel'], 0),
      'per-request': round(v['per-request'], 0),
      direct: round(v.direct, 0),
      'grpc-js ceiling': grpc === undefined ? '' : round(grpc, 0),
      'stream/direct': round(v.stream / v.direct, 2),
      'side/direct': v['side channel'] === undefined ? '' : round(v['side channel'] / v.direct, 2),
      'per-request/direct': round(v['per-request'] / v.direct, 2),
      aim,
    });
    const pick = (key) => Object.fromEntries(Object.entries(small).map(([side, r]) => [side, r[key]]));
    const blank = { 'grpc-js ceiling': '', 'stream/direct': '', 'side/direct': '', 'per-request/direct': '', aim: '' };
    const ms = (v) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k, round(x, 2)]));
    const rows = [
      row(`small GET, ${SMALL.concurrency} clients: req/s`, pick('req_per_s'), ceil.small, '>= 0.60'),
      { measure: 'small GET: p50 ms', 'side channel': '', ...ms(pick('p50_ms')), ...blank },
      { measure: 'small GET: p99 ms', 'side channel': '', ...ms(pick('p99_ms')), ...blank },
      ...['upload', 'download'].map((dir) => row(`${mb} MiB ${dir}: MB/s`, streams[dir], ceil[dir], '>= 0.50')),
      { measure: `${mb} MiB download, bare grpc-js with 256 KiB parts: MB/s`, stream: '', 'side channel': '', 'per-request': '', direct: '', ...blank, 'grpc-js ceiling': round(ceil.download256, 0) },
      { measure: `install 5 MiB bundle over REST: ms (median of ${INSTALL_ROUNDS})`, stream: round(median(installs), 1), 'side channel': '', 'per-request': '', direct: '', ...blank },
    ];
    return { name: 'HTTP through a plugin (ServeHTTPStream without and with side channels, per-request ServeHTTP) vs the same handlers as plain Fastify routes', rows };
  } finally {
    await direct.app.close();
    for (const server of Object.values(servers)) await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run };

if (require.main === module) {
  run().then((r) => console.log(table(r.name, Object.keys(r.rows[0]), r.rows)), (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
