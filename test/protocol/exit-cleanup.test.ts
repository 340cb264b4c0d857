/**
 * A program that uses PluginClient and ends without kill() leaves no plugin
 * process and no socket folder behind, whichever way it ends; a plugin that
 * dies takes its process group and socket folder with it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { once } from 'node:events';
import { PluginClient } from '../../src/protocol/client';
import { livePluginCount } from '../../src/protocol/exit-cleanup';
import { LogCollector, NODE, fixture, isAlive, tempDir, waitGone } from '../helpers';

interface HostRun {
  pids: { pid: number; grandchild: number };
  stdout: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs the fixture host program in `mode`, sends `signal` once its plugin is up, and waits for it to end. */
async function runHost(mode: string, socketParent: string, signal?: NodeJS.Signals): Promise<HostRun> {
  const host = spawn(NODE, [fixture('exit-cleanup-host.js'), mode, socketParent], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  host.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = once(host, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const firstLine = new Promise<string>((resolve, reject) => {
    host.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
    });
    void ended.then(() => reject(new Error(`host ended before its plugin was up; stderr: ${stderr}`)));
  });
  const pids = JSON.parse(await firstLine) as HostRun['pids'];
  expect(isAlive(pids.pid)).toBe(true);
  expect(isAlive(pids.grandchild)).toBe(true);
  if (signal) host.kill(signal);
  const [code, sig] = await ended;
  return { pids, stdout, code, signal: sig };
}

async function expectNothingLeft(run: HostRun, socketParent: string): Promise<void> {
  // The stubborn plugin would live on for two minutes, its grandchild for five.
  expect(await waitGone(run.pids.pid, 10_000)).toBe(true);
  expect(await waitGone(run.pids.grandchild, 10_000)).toBe(true);
  expect(fs.readdirSync(socketParent)).toEqual([]);
}

describe('a host program that never calls kill()', () => {
  let work: ReturnType<typeof tempDir>;
  beforeEach(() => {
    work = tempDir();
  });
  afterEach(() => work.cleanup());

  test('exits normally: its plugin and the plugin group are killed, the socket folder removed', async () => {
    const run = await runHost('exit', work.dir);
    expect(run.code).toBe(0);
    await expectNothingLeft(run, work.dir);
  }, 60_000);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`is sent ${signal}: the same, and the program still dies of ${signal}`, async () => {
      const run = await runHost('signal', work.dir, signal);
      expect(run.signal).toBe(signal);
      await expectNothingLeft(run, work.dir);
    }, 60_000);
  }

  test('throws an uncaught exception: the same, with exit code 1', async () => {
    const run = await runHost('throw', work.dir);
    expect(run.code).toBe(1);
    await expectNothingLeft(run, work.dir);
  }, 60_000);

  test('handles SIGTERM itself: its handler runs and decides the exit; the plugins die when it exits', async () => {
    const run = await runHost('graceful', work.dir, 'SIGTERM');
    expect(run.stdout).toContain('graceful shutdown');
    expect(run.code).toBe(0);
    await expectNothingLeft(run, work.dir);
  }, 60_000);
});

test('a plugin that dies on its own takes its process group and its socket folder with it', async () => {
  const work = tempDir();
  const logs = new LogCollector();
  const client = await PluginClient.start({
    cmd: NODE,
    args: [fixture('echo-plugin.js')],
    env: { FIXTURE_MODE: 'stubborn' },
    socketDirParent: work.dir,
    startTimeoutMs: 15_000,
    onLog: logs.onLog,
  });
  try {
    const grandchild = Number((await logs.waitFor((r) => r.message.startsWith('grandchild='))).message.split('=')[1]);
    expect(fs.readdirSync(work.dir)).toHaveLength(1);
    process.kill(client.pid, 'SIGKILL');
    expect(await client.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(fs.readdirSync(work.dir)).toEqual([]);
    expect(await waitGone(grandchild, 10_000)).toBe(true);
  } finally {
    await client.kill();
    work.cleanup();
  }
  expect(livePluginCount()).toBe(0);
  // With no plugin left, this process's own signal handling is Node's again.
  expect(process.listenerCount('SIGTERM')).toBe(0);
}, 60_000);
