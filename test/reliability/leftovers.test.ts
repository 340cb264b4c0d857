import * as path from 'node:path';
import { spawn } from 'node:child_process';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { FIXTURES, NODE, tempDir } from '../helpers';
import { exited, misbehavingBundle } from './helpers';

const linux = process.platform === 'linux' ? test : test.skip;

linux('children a plugin left behind when its host was SIGKILLed are killed when a host opens that data dir again', async () => {
  const work = tempDir();
  const dataDir = path.join(work.dir, 'data');
  let host: PluginHost | undefined;
  const pids: number[] = [];
  try {
    const bundle = await misbehavingBundle(work.dir, 'com.test.leftovers');
    const runner = spawn(NODE, [path.join(FIXTURES, 'reliability', 'fork-runner.js'), dataDir, bundle], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      runner.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      runner.once('exit', (code) => reject(new Error(`runner exited early (${code})`)));
    });
    const { same, setsid, orphan } = JSON.parse(line) as Record<string, number>;
    pids.push(same, setsid, orphan);
    runner.removeAllListeners('exit');
    runner.kill('SIGKILL');
    await new Promise((r) => runner.once('exit', r));
    // The plugin's children outlive the dead host and even the plugin itself...
    expect(pids.some((p) => !exited(p))).toBe(true);

    host = await PluginHost.open({ dataDir, logger: pino({ level: 'silent' }), startPlugins: false });
    // ...until a host opens the same data dir: its plugins' instance marker gives them away.
    for (let i = 0; i < 100 && !pids.every(exited); i++) await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter((p) => !exited(p))).toEqual([]);
  } finally {
    await host?.close();
    for (const p of pids) if (!exited(p)) process.kill(p, 'SIGKILL');
    work.cleanup();
  }
});
