/**
 * A plugin whose gRPC server goes away while its process lives on: with the
 * periodic health check a minute away, only the channel watch can notice, and
 * the plugin must be restarted under the usual policy.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime/plugin-host';
import type { StateChange } from '../../src/runtime/types';
import { tempDir } from '../helpers';
import { exited, misbehavingBundle, until } from '../reliability/helpers';

test('a plugin that closes its gRPC server but stays alive is restarted (new pid) and answers hooks again', async () => {
  const work = tempDir();
  const host = await PluginHost.open({
    dataDir: path.join(work.dir, 'data'),
    logger: pino({ level: 'silent' }),
    defaults: { restartBackoffMs: 50, restartBackoffMaxMs: 100, killGraceMs: 500, healthIntervalMs: 60_000 },
  });
  try {
    const reasons: string[] = [];
    host.on('state', (c: StateChange) => c.lastError && reasons.push(c.lastError));
    const id = 'com.test.closes-server';
    await host.install(await misbehavingBundle(work.dir, id));
    await host.enable(id);
    const before = (await host.get(id)).pid!;
    expect((await host.callHook(id, 'CloseServer', {})).payload).toEqual({ closed: true });
    await until(async () => {
      const i = await host.get(id);
      return i.state === 'running' && i.pid !== before;
    }, 'the restart after the lost connection', 15_000);
    expect((await host.callHook(id, 'Echo', 'back')).payload).toMatchObject({ echo: 'back' });
    expect(await host.get(id)).toMatchObject({ restarts: 1 });
    expect(reasons.find((r) => /connection/.test(r))).toMatch(/lost its gRPC connection while its process still runs/);
    // The old process was alive when the connection went; the restart killed it.
    expect(exited(before)).toBe(true);
  } finally {
    await host.close();
    work.cleanup();
  }
});
