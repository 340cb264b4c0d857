import * as path from 'node:path';
import { spawn } from 'node:child_process';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { SqliteStore } from '../../src/store';
import { FIXTURES, NODE, tempDir, waitGone } from '../helpers';
import { fixtureBundle } from './fixtures';

/** Runs host-runner.js until `enough` writes were acknowledged, SIGKILLs it, and answers the acknowledged keys and the plugin's pid. */
async function writeThenKillHost(dataDir: string, bundle: string, enough: number, atOnce?: number): Promise<{ acked: string[]; pluginPid: number }> {
  const args = [path.join(FIXTURES, 'runtime', 'host-runner.js'), dataDir, bundle, ...(atOnce ? [String(atOnce)] : [])];
  const runner = spawn(NODE, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked: string[] = [];
  let pluginPid = 0;
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    runner.on('exit', (code) => reject(new Error(`host runner exited early (${code})`)));
    runner.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('pid ')) pluginPid = Number(line.slice(4));
        else acked.push(line);
      }
      if (acked.length >= enough) resolve();
    });
  });
  runner.removeAllListeners('exit');
  runner.kill('SIGKILL');
  await new Promise((r) => runner.once('exit', r));
  return { acked, pluginPid };
}

/** The value each acknowledged key has in the database file, read after the crash. */
async function storedValues(dataDir: string, pluginId: string, keys: string[]): Promise<Array<string | undefined>> {
  const store = SqliteStore.open({ file: path.join(dataDir, 'plughost.db') });
  try {
    return await Promise.all(keys.map(async (key) => (await store.kvGet(pluginId, key))?.toString()));
  } finally {
    await store.close();
  }
}

test('SIGKILL of the host: every acknowledged KV write survives, the plugin does not outlive its host, and a restart converges', async () => {
  const work = tempDir();
  const dataDir = path.join(work.dir, 'data');
  try {
    const bundle = await fixtureBundle(work.dir, { id: 'com.test.crashhost' });
    const { acked, pluginPid } = await writeThenKillHost(dataDir, bundle, 300);
    // The orphaned plugin notices its host is gone and exits by itself.
    expect(await waitGone(pluginPid, 10_000)).toBe(true);
    expect(await storedValues(dataDir, 'com.test.crashhost', acked)).toEqual(acked.map((key) => `v${key.slice(1)}`));

    const host = await PluginHost.open({ dataDir, logger: pino({ level: 'silent' }) });
    try {
      const info = await host.get('com.test.crashhost');
      expect(info).toMatchObject({ enabled: true, state: 'running' });
      const last = acked[acked.length - 1];
      expect((await host.callHook(info.id, 'Kv', { op: 'get', key: last })).payload).toEqual({ found: true, value: `v${last.slice(1)}` });
    } finally {
      await host.close();
    }
  } finally {
    work.cleanup();
  }
});

test('SIGKILL of the host: KV writes batched on the API stream (one transaction a message) all survive once acknowledged', async () => {
  const work = tempDir();
  const dataDir = path.join(work.dir, 'data');
  try {
    const bundle = await fixtureBundle(work.dir, { id: 'com.test.crashbatch', program: 'runtime/api-client-plugin.js', limits: { hook_timeout_ms: 20_000 } });
    // 64 writes at once, past several automatic checkpoints of the WAL before the kill.
    const { acked, pluginPid } = await writeThenKillHost(dataDir, bundle, 3_000, 64);
    expect(await waitGone(pluginPid, 10_000)).toBe(true);
    expect(await storedValues(dataDir, 'com.test.crashbatch', acked)).toEqual(acked.map((key) => JSON.stringify(`v${key.slice(1)}`)));
  } finally {
    work.cleanup();
  }
});
