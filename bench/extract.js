'use strict';
/**
 * Bundle extraction: plughost's safe extractBundle beside `tar xzf` on the same 20 MiB bundle of
 * 200 files, in the same run, alternating rounds. Runs the built dist/ code.
 *
 *   node bench/extract.js        # prints a table and the ratio
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { extractBundle } = require('../dist/src/bundle/extract.js');
const { packBundle } = require('../dist/src/bundle/pack.js');
const { median, round, table } = require('./lib');

const FILES = 200;
const TOTAL_BYTES = 20 * 1024 * 1024;
const ROUNDS = 7;

/** Half of each file is random bytes, half repeated text, so gzip has some work both ways. */
function writePlugin(dir) {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const manifest = { id: 'bench.extract', name: 'Bench', version: '1.0.0', server: { executable: 'bin/run' } };
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'bin', 'run'), '#!/bin/sh\n', { mode: 0o755 });
  const per = Math.floor(TOTAL_BYTES / FILES);
  const text = Buffer.from('plughost bench line, fairly compressible text. '.repeat(Math.ceil(per / 2 / 47))).subarray(0, per - Math.floor(per / 2));
  for (let i = 0; i < FILES - 2; i++) {
    fs.writeFileSync(path.join(dir, 'data', `file-${String(i).padStart(3, '0')}.bin`), Buffer.concat([crypto.randomBytes(Math.floor(per / 2)), text]));
  }
}

async function time(fn) {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function run() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-bench-extract-'));
  try {
    writePlugin(path.join(work, 'src'));
    const bundle = (await packBundle(path.join(work, 'src'), path.join(work, 'bench.tar.gz'))).path;
    const size = fs.statSync(bundle).size;
    const ours = [];
    const theirs = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = path.join(work, `ours-${i}`);
      ours.push(await time(() => extractBundle(bundle, a)));
      const b = path.join(work, `tar-${i}`);
      fs.mkdirSync(b);
      theirs.push(await time(() => execFileSync('tar', ['xzf', bundle, '-C', b])));
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
    const mib = TOTAL_BYTES / (1024 * 1024);
    const row = (tool, times) => ({ tool, median_ms: round(median(times)), min_ms: round(Math.min(...times)), MiB_per_s: round(mib / (median(times) / 1000)) });
    const rows = [row('plughost extractBundle (checks + staging + rename)', ours), row('tar xzf (GNU tar, no checks)', theirs)];
    return {
      name: `Extract a ${mib} MiB bundle of ${FILES} files (${round(size / 1048576)} MiB compressed), median of ${ROUNDS} rounds`,
      rows,
      ratio: round(median(ours) / median(theirs), 2),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { run };

if (require.main === module) {
  run().then(
    (r) => {
      console.log(table(r.name, Object.keys(r.rows[0]), r.rows));
      console.log(`ratio plughost / tar xzf: ${r.ratio}`);
    },
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
