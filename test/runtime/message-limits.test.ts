/** PluginHost's defaults.maxMessageBytes: hook payloads over the plugin connection, API messages over the broker. */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { Errors } from '../../src/errors';
import { tempDir } from '../helpers';
import { fixtureBundle } from './fixtures';

const MiB = 1024 * 1024;
type Hooks = { Append: { text: string }; Invoke: { method: string; args: unknown }; [k: string]: unknown };

/** Opens a host with the contract fixture enabled as com.test.big, runs `body`, then closes everything. */
async function withHost(maxMessageBytes: number | undefined, body: (h: PluginHost<Hooks>) => Promise<void>): Promise<void> {
  const work = tempDir();
  const h = await PluginHost.open<Hooks>({
    dataDir: path.join(work.dir, 'data'),
    logger: pino({ level: 'silent' }),
    defaults: { healthIntervalMs: 60_000, ...(maxMessageBytes ? { maxMessageBytes } : {}) },
    api: { 'blob.echo': (args: unknown) => args },
  });
  try {
    await h.install(await fixtureBundle(work.dir, { id: 'com.test.big', permissions: ['blob.echo'], limits: { hook_timeout_ms: 30_000 } }));
    await h.enable('com.test.big');
    await body(h);
  } finally {
    await h.close();
    work.cleanup();
  }
}

test('default limit: a 5 MiB hook payload and a 5 MiB API request and reply all pass', () =>
  withHost(undefined, async (h) => {
    const appended = await h.callHook('com.test.big', 'Append', { text: 'a'.repeat(5 * MiB) });
    expect((appended.payload as { text: string }).text).toHaveLength(5 * MiB + '[com.test.big]'.length);
    const invoked = await h.callHook('com.test.big', 'Invoke', { method: 'blob.echo', args: { data: 'b'.repeat(5 * MiB) } });
    expect((invoked.payload as { result: { data: string } }).result.data).toHaveLength(5 * MiB);
  }), 90_000);

test('maxMessageBytes 1 MiB: a 2 MiB hook payload fails naming the limit and the option; the plugin keeps running', () =>
  withHost(MiB, async (h) => {
    const err = await h.callHook('com.test.big', 'Append', { text: 'a'.repeat(2 * MiB) }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: Errors.MESSAGE_TOO_LARGE.code, status: 413 });
    expect((err as Error).message).toMatch(/^hook Append of plugin "com\.test\.big": .*limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes \(PluginHost defaults\.maxMessageBytes/);
    // Under the limit, both directions still work on the same connections.
    const invoked = await h.callHook('com.test.big', 'Invoke', { method: 'blob.echo', args: 'x'.repeat(MiB / 4) });
    expect(invoked.payload).toEqual({ result: 'x'.repeat(MiB / 4) });
    expect((await h.callHook('com.test.big', 'Append', { text: 'ok' })).payload).toEqual({ text: 'ok[com.test.big]' });
  }), 90_000);

test('a limit that is not a positive whole number is refused when the host opens', async () => {
  const work = tempDir();
  await expect(
    PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }), defaults: { maxMessageBytes: -1 } }),
  ).rejects.toMatchObject({ code: Errors.BAD_MESSAGE_LIMIT.code, message: expect.stringContaining('defaults.maxMessageBytes is "-1"') });
  work.cleanup();
});
