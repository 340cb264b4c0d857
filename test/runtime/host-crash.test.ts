import * as path from 'node:path';
import { spawn } from 'node:child_process';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { SqliteStore } from '../../src/store';
import { FIXTURES, NODE, tempDir, waitGone } from '../helpers';
import { fixtureBundle } from './fixtures';

test('SIGKILL of the host: every acknowledged KV write survives, the plugin does not outlive its host, and a restart converges', async () => {
  const work = tempDir();
  const dataDir = path.join(work.dir, 'data');
  try {
    const bundle = await fixtureBundle(work.dir, { id: 'com.test.crashhost' });
    const runner = spawn(NODE, [path.join(FIXTURES, 'runtime', 'host-runner.js'), dataDir, bundle], { stdio: ['ignore', 'pipe', 'inherit'] });
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
        if (acked.length >= 300) resolve();
      });
    });
    runner.removeAllListeners('exit');
    runner.kill('SIGKILL');
    await new Promise((r) => runner.once('exit', r));
    // The orphaned plugin notices its host is gone and exits by itself.
    expect(await waitGone(pluginPid, 10_000)).toBe(true);

    const store = SqliteStore.open({ file: path.join(dataDir, 'plughost.db') });
    try {
      for (const key of acked) expect((await store.kvGet('com.test.crashhost', key))?.toString()).toBe(`v${key.slice(1)}`);
    } finally {
      await store.close();
    }

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
