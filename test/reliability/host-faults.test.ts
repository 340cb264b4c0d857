/**
 * SIGKILL of the host process at chosen points of install, enable, disable
 * and a stream of KV writes (test/fixtures/reliability/fault-runner.js dies
 * there). After each, a restart converges: no half-installed plugin, every
 * acknowledged write present, enabled plugins running and disabled ones not,
 * and no plugin process left over from the dead host.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { BUNDLE_MARKER } from '../../src/runtime/installer';
import { FIXTURES, NODE, tempDir } from '../helpers';
import { exited, misbehavingBundle, until } from './helpers';

const ID = 'com.test.faults';
const RUNNER = path.join(FIXTURES, 'reliability', 'fault-runner.js');
const silent = pino({ level: 'silent' });

let work: { dir: string; cleanup(): void };
let v1: string;
let v2: string;
let big: string;
beforeAll(async () => {
  work = tempDir();
  v1 = await misbehavingBundle(work.dir, ID, { version: '1.0.0' });
  v2 = await misbehavingBundle(work.dir, ID, { version: '2.0.0' });
  // Big enough that extraction takes a while, so a kill from outside can land inside it.
  const filler: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) filler[`assets/f${i}.bin`] = Buffer.alloc(512 * 1024, i);
  big = await misbehavingBundle(work.dir, ID, { version: '3.0.0', files: filler });
});
afterAll(() => work.cleanup());

interface Scenario {
  action: 'install' | 'enable' | 'disable' | 'kv';
  id?: string;
  bundle?: string;
  force?: boolean;
  die?: string;
}

/**
 * Runs the fault runner until it kills itself at `scenario.die`, or, given
 * `kill`, SIGKILLs it `afterMs` after its output first satisfies `when`.
 * Returns its output lines once every plugin process it started is gone.
 */
async function crash(dataDir: string, scenario: Scenario, kill?: { when: (lines: string[]) => boolean; afterMs: number }): Promise<string[]> {
  const runner = spawn(NODE, [RUNNER, dataDir, JSON.stringify({ id: ID, ...scenario })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  let timer: NodeJS.Timeout | undefined;
  runner.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  runner.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    if (kill && !timer && kill.when(lines)) timer = setTimeout(() => runner.kill('SIGKILL'), kill.afterMs);
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => runner.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
  if (scenario.die) expect(lines).not.toContain('done');
  // Plugins of the dead host notice they were orphaned and exit by themselves.
  const pids = lines.filter((l) => l.startsWith('pid ')).map((l) => Number(l.slice(4)));
  await until(() => pids.every(exited), `plugin processes ${pids} of the killed host to exit`, 10_000);
  return lines;
}

async function withHost<T>(dataDir: string, fn: (h: PluginHost) => Promise<T>): Promise<T> {
  const h = await PluginHost.open({ dataDir, logger: silent });
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/** The state a restart must converge to: the plugin at `version` (or absent), complete on disk, running iff enabled. */
async function converged(dataDir: string, expected: { version: string | null; enabled?: boolean; versions?: string[] }): Promise<void> {
  await withHost(dataDir, async (h) => {
    const list = await h.list();
    expect(fs.readdirSync(path.join(dataDir, 'staging'))).toEqual([]);
    const installed = fs.readdirSync(path.join(dataDir, 'plugins'));
    if (expected.version === null) {
      expect(list).toEqual([]);
      expect(installed).toEqual([]);
      return;
    }
    expect(list.map((p) => p.id)).toEqual([ID]);
    const info = list[0];
    if (expected.versions) expect(expected.versions).toContain(info.version);
    else expect(info.version).toBe(expected.version);
    const dir = h.pluginDir(ID);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8')).version).toBe(info.version);
    expect(fs.readFileSync(path.join(dir, BUNDLE_MARKER), 'utf8').trim()).toBe(info.bundleSha256);
    expect(fs.existsSync(path.join(dir, 'main.js'))).toBe(true);
    expect(info.enabled).toBe(expected.enabled ?? false);
    expect(info.state).toBe(info.enabled ? 'running' : 'not_running');
    if (info.enabled) expect((await h.callHook(ID, 'Echo', 'up')).payload).toMatchObject({ echo: 'up' });
  });
}

async function prepared(version: '1.0.0' | null, enabled: boolean): Promise<string> {
  const dataDir = path.join(work.dir, `data-${Math.random().toString(36).slice(2, 8)}`);
  if (version) {
    await withHost(dataDir, async (h) => {
      await h.install(v1);
      if (enabled) await h.enable(ID);
    });
  }
  return dataDir;
}

describe('SIGKILL during an install', () => {
  test.each([
    ['placing', null],
    ['after-first-rename', null],
    ['before-record', null],
    ['before-commit', '1.0.0'],
  ])('a new plugin, killed at %s: after a restart it is absent or whole (%s)', async (die, version) => {
    const dataDir = await prepared(null, false);
    await crash(dataDir, { action: 'install', bundle: v1, die });
    await converged(dataDir, { version });
  });

  test.each([
    ['placing', '1.0.0'],
    ['after-first-rename', '1.0.0'],
    ['before-record', '1.0.0'],
    ['before-commit', '2.0.0'],
  ])('replacing an enabled plugin, killed at %s: after a restart it is whole at %s and running', async (die, version) => {
    const dataDir = await prepared('1.0.0', true);
    await crash(dataDir, { action: 'install', bundle: v2, force: true, die });
    await converged(dataDir, { version, enabled: true });
  });

  test.each([5, 40, 120])('replacing, killed from outside %i ms into a large install: whole at one version or the other', async (ms) => {
    const dataDir = await prepared('1.0.0', true);
    await crash(dataDir, { action: 'install', bundle: big, force: true }, { when: (lines) => lines.includes('installing'), afterMs: ms });
    await converged(dataDir, { version: '1.0.0', enabled: true, versions: ['1.0.0', '3.0.0'] });
  });
});

describe('SIGKILL during enable and disable', () => {
  test.each(['after-persist', 'mid-start'])('enable, killed at %s: after a restart the plugin is enabled and running', async (die) => {
    const dataDir = await prepared('1.0.0', false);
    await crash(dataDir, { action: 'enable', die });
    await converged(dataDir, { version: '1.0.0', enabled: true });
  });

  test('disable, killed after it was recorded but before the plugin stopped: after a restart it is disabled and down', async () => {
    const dataDir = await prepared('1.0.0', true);
    const lines = await crash(dataDir, { action: 'disable', die: 'after-persist' });
    expect(lines.some((l) => l.startsWith('pid '))).toBe(true);
    await converged(dataDir, { version: '1.0.0', enabled: false });
  });
});

test('SIGKILL during four concurrent streams of KV writes: every acknowledged write is present after a restart', async () => {
  const dataDir = await prepared('1.0.0', true);
  const keys = (lines: string[]) => lines.filter((l) => /^w\d-\d+$/.test(l));
  const lines = await crash(dataDir, { action: 'kv' }, { when: (l) => keys(l).length >= 400, afterMs: 0 });
  const acked = keys(lines);
  expect(acked.length).toBeGreaterThanOrEqual(400);
  await withHost(dataDir, async (h) => {
    expect((await h.get(ID)).state).toBe('running');
    for (const key of acked) {
      const got = (await h.callHook(ID, 'Kv', { op: 'get', key })).payload;
      expect([key, got]).toEqual([key, { found: true, value: `v${key.slice(1)}` }]);
    }
  });
});
