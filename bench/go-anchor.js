'use strict';
/**
 * Anchor benchmark: go-plugin 1.0.1 Go host → Go plugin, same workload as the
 * plughost benches (Double latency, concurrent throughput, spawn-to-first-call).
 * Gives the numbers a native go-plugin deployment gets on this machine.
 *
 *   node bench/go-anchor.js            # prints the result JSON
 */
const { spawnSync } = require('child_process');
const { buildGoPeers } = require('../test/interop/go/build.js');

const NAME = 'go-plugin Go host → Go plugin (anchor)';

/**
 * @param {{automtls?: boolean, args?: string[]}} [opts] extra gohost flags
 * @returns {{name: string, result: object} | {skipped: string}}
 */
function run(opts = {}) {
  const built = buildGoPeers();
  if (!built.ok) return { skipped: `Go interop peers unavailable: missing ${built.missing} (${built.install})` };
  const { gohost, goplugin } = built.peers;
  const args = ['-mode', 'bench', '-plugin', goplugin];
  if (opts.automtls) args.push('-automtls');
  if (opts.args) args.push(...opts.args);
  const r = spawnSync(gohost, args, { encoding: 'utf8', timeout: 10 * 60 * 1000, maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new Error(`gohost: ${r.error.message}`);
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  let result;
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(`gohost exited ${r.status} without JSON output:\n${r.stdout}\n${r.stderr}`);
  }
  if (r.status !== 0 || result.error) {
    throw new Error(`gohost bench failed (exit ${r.status}): ${result.error || line}\n${r.stderr}`);
  }
  return { name: opts.automtls ? `${NAME} [AutoMTLS]` : NAME, result };
}

module.exports = { run };

if (require.main === module) {
  console.log(JSON.stringify(run(), null, 2));
}
