/**
 * Memory limits and containment with real plugin processes: the cgroup path
 * where this machine allows one (it does on CI: root, cgroup v1 memory and
 * pids), and the RSS watchdog forced by option. Plugins allocate at most
 * 256 MiB, against limits of 96 MiB.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime/plugin-host';
import { PluginCgroup } from '../../src/runtime/cgroup';
import type { RuntimeDefaults, StateChange } from '../../src/runtime/types';
import { tempDir } from '../helpers';
import { exited, misbehavingBundle, until, type MisbehavingOptions } from '../reliability/helpers';

const TEST_DEFAULTS: Partial<RuntimeDefaults> = { restartBackoffMs: 50, restartBackoffMaxMs: 100, maxFailures: 3, killGraceMs: 500, healthIntervalMs: 60_000 };
const LIMIT = /exceeded its memory limit of 96 MiB \(the manifest's limits\.memory_mb/;

interface Opened {
  host: PluginHost;
  work: { dir: string; cleanup(): void };
  reasons: string[];
}

const opened: Opened[] = [];

async function openHost(defaults: Partial<RuntimeDefaults> = {}): Promise<Opened> {
  const work = tempDir();
  const host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }), defaults: { ...TEST_DEFAULTS, ...defaults } });
  const reasons: string[] = [];
  host.on('state', (c: StateChange) => c.lastError && reasons.push(c.lastError));
  const o = { host, work, reasons };
  opened.push(o);
  return o;
}

afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.host.close();
    o.work.cleanup();
  }
});

async function add(o: Opened, id: string, m: MisbehavingOptions = {}): Promise<number> {
  await o.host.install(await misbehavingBundle(o.work.dir, id, m));
  await o.host.enable(id);
  return (await o.host.get(id)).pid!;
}

/** The cgroup folders of a host's plugins, in every hierarchy this process belongs to. */
function cgroupDirs(prefix: string): string[] {
  const found: string[] = [];
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)) {
    const [, controllers, own] = line.split(':');
    const names = controllers ? controllers.split(',') : ['unified'];
    for (const name of names) {
      for (const base of [path.join('/sys/fs/cgroup', name, own), controllers ? '' : path.join('/sys/fs/cgroup', own)]) {
        if (!base || !fs.existsSync(base)) continue;
        for (const e of fs.readdirSync(base)) if (e.startsWith(`${prefix}-`)) found.push(path.join(base, e));
      }
    }
  }
  return [...new Set(found)];
}

/** Allocates past the limit and waits for the restart; returns the reason the plugin was restarted with. */
async function overTheLimit(o: Opened, id: string, before: number): Promise<string> {
  await o.host.callHook(id, 'Alloc', { kind: 'buffer', mb: 256 });
  await until(async () => {
    const i = await o.host.get(id);
    return i.state === 'running' && i.pid !== before;
  }, 'the restart after the memory limit', 30_000);
  expect(exited(before)).toBe(true);
  expect((await o.host.get(id)).restarts).toBe(1);
  expect((await o.host.callHook(id, 'Echo', 'again')).payload).toMatchObject({ echo: 'again' });
  return o.reasons.find((r) => /memory/.test(r)) ?? `(no memory reason among: ${o.reasons.join(' / ')})`;
}

const probe = PluginCgroup.create(`plughost-probe-${process.pid}`, { memoryBytes: 64 * 1024 * 1024, pidsMax: 0 });
const cgroupsHere = typeof probe !== 'string';
afterAll(async () => {
  if (typeof probe !== 'string') await probe.destroy();
});

(cgroupsHere ? describe : describe.skip)('with a cgroup per plugin', () => {
  test('a node plugin allocating Buffers past 96 MiB is killed, the reason names the limit, and it restarts as usual', async () => {
    const o = await openHost();
    const before = await add(o, 'com.test.mem-node', { limits: { memory_mb: 96 } });
    expect(cgroupDirs(o.host.instancePrefix).length).toBeGreaterThan(0);
    const reason = await overTheLimit(o, 'com.test.mem-node', before);
    expect(reason).toMatch(LIMIT);
    expect(reason).toMatch(/OOM killer ended it inside its cgroup/);
  });

  test('an executable plugin is held to the same limit', async () => {
    const o = await openHost();
    const before = await add(o, 'com.test.mem-exe', { executable: true, limits: { memory_mb: 96 } });
    expect(await overTheLimit(o, 'com.test.mem-exe', before)).toMatch(LIMIT);
  });

  test('the host-wide default applies to a plugin without limits.memory_mb, and the reason names that option', async () => {
    const o = await openHost({ memoryLimitMb: 96 });
    const before = await add(o, 'com.test.mem-default');
    expect(await overTheLimit(o, 'com.test.mem-default', before)).toMatch(/exceeded its memory limit of 96 MiB \(the host's defaults\.memoryLimitMb/);
  });

  test.each(['disable', 'remove', 'host close'])('a daemon that double-forks with an empty environment is gone after %s, and no cgroup is left', async (how) => {
    const o = await openHost();
    const id = 'com.test.daemon';
    await add(o, id);
    const file = path.join(o.work.dir, 'daemon.pid');
    await o.host.callHook(id, 'Daemon', { file });
    await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8') !== '', 'the daemon pid file');
    const daemon = Number(fs.readFileSync(file, 'utf8'));
    expect(exited(daemon)).toBe(false);
    // It left the group and the session, and carries no instance marker: only the cgroup still holds it.
    expect(fs.readFileSync(`/proc/${daemon}/environ`).length).toBe(0);
    const prefix = o.host.instancePrefix;
    if (how === 'disable') await o.host.disable(id);
    if (how === 'remove') await o.host.remove(id);
    if (how === 'host close') await o.host.close();
    await until(() => exited(daemon), `daemon ${daemon} to be gone after ${how}`, 5_000);
    if (how !== 'host close') await o.host.close();
    expect(cgroupDirs(prefix)).toEqual([]);
  });
  test('cgroups left by a host that was SIGKILLed are emptied and removed when a host opens the same data dir', async () => {
    const first = await openHost();
    const prefix = first.host.instancePrefix;
    const dataDir = path.join(first.work.dir, 'data');
    await first.host.close();
    // What a SIGKILLed host leaves: a plugin cgroup with a process still in it.
    const left = PluginCgroup.create(`${prefix}-leftover`, { memoryBytes: 64 * 1024 * 1024, pidsMax: 0 });
    if (typeof left === 'string') throw new Error(left);
    const { cmd, args } = left.wrap(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    const sleeper = spawn(cmd, args, { stdio: 'ignore' });
    await until(() => left.pids().includes(sleeper.pid!), 'the sleeper to join its cgroup');
    const second = await PluginHost.open({ dataDir, logger: pino({ level: 'silent' }), defaults: TEST_DEFAULTS });
    try {
      await until(() => exited(sleeper.pid!), 'the leftover process to be killed', 10_000);
      expect(cgroupDirs(prefix)).toEqual([]);
    } finally {
      await second.close();
      await left.destroy();
    }
  });
});

describe('with the RSS watchdog (defaults.memoryEnforcement: watchdog)', () => {
  test('a node plugin allocating Buffers past 96 MiB is killed with the same reason, and restarts as usual; no cgroup is made', async () => {
    const o = await openHost({ memoryEnforcement: 'watchdog', memoryWatchdogIntervalMs: 100 });
    const before = await add(o, 'com.test.mem-watchdog', { limits: { memory_mb: 96 } });
    expect(cgroupDirs(o.host.instancePrefix)).toEqual([]);
    expect(o.host.logs('com.test.mem-watchdog').some((l) => /no cgroup for this plugin \(the host was told to use the watchdog/.test(l.message))).toBe(true);
    const reason = await overTheLimit(o, 'com.test.mem-watchdog', before);
    expect(reason).toMatch(LIMIT);
    expect(reason).toMatch(/the watchdog saw \d+ MiB resident in its process tree/);
  });

  test('a V8 out-of-memory death says so', async () => {
    // A watchdog that never samples in time: V8's own heap limit (--max-old-space-size) ends the plugin first.
    const o = await openHost({ memoryEnforcement: 'watchdog', memoryWatchdogIntervalMs: 600_000 });
    const id = 'com.test.mem-heap';
    const before = await add(o, id, { limits: { memory_mb: 96 } });
    // V8 may abort before the reply leaves: the call's own outcome does not matter.
    await o.host.callHook(id, 'Alloc', { kind: 'heap' }).catch(() => undefined);
    await until(async () => (await o.host.get(id)).pid !== before, 'the crash', 30_000);
    await until(() => o.reasons.some((r) => /heap/.test(r)), 'the reason');
    expect(o.reasons.find((r) => /heap/.test(r))).toMatch(/ran out of JavaScript heap \(V8 out of memory, --max-old-space-size=96 from the manifest's limits\.memory_mb\)/);
  });
});
