/**
 * The load run (bench/load.js) cut down for CI: several plugins, thousands of
 * hook calls with many in flight, paced KV writes read back from the SQLite
 * file, and concurrent plugin HTTP. Asserts zero errors and nothing lost;
 * never a timing threshold (the full run is `npm run bench:load`).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { NODE } from '../helpers';

const LOAD = path.join(__dirname, '..', '..', 'bench', 'load.js');
const ARGS = ['--plugins', '5', '--hooks', '3000', '--inflight', '64', '--kv-rate', '400', '--kv-seconds', '3', '--http-requests', '600', '--http-concurrency', '16', '--json'];

interface Phase {
  phase: string;
  ops: number;
  errors: number;
  lost: number;
  firstFailure?: string;
  acknowledgedWrites?: number;
}

test('a short load run: every hook call, KV write and HTTP request answered, none lost, no plugin restarted', async () => {
  const child = spawn(NODE, [LOAD, ...ARGS], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect({ code, err }).toEqual({ code: 0, err: '' });
  const report = JSON.parse(out) as { plugins: number; pluginsRunningWithoutRestart: number; results: Phase[] };
  expect(report.pluginsRunningWithoutRestart).toBe(5);
  const byPhase = Object.fromEntries(report.results.map((r) => [r.phase, r]));
  expect(byPhase.hooks).toMatchObject({ ops: 3000, errors: 0, lost: 0 });
  expect(byPhase.http).toMatchObject({ ops: 600, errors: 0, lost: 0 });
  expect(byPhase.kv).toMatchObject({ errors: 0, lost: 0 });
  expect(byPhase.kv.acknowledgedWrites).toBeGreaterThan(0);
}, 120_000);
