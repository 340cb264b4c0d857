/**
 * What one plugin may do to others through the API service, with real plugin
 * processes run by a real host: CallPlugin only with a "plugins.call:"
 * permission (and the target learns who called), events never on the host's
 * topics nor under another publisher's name, KV never across plugins, Invoke
 * only for listed methods with the caller taken from the connection.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import type { FixtureOptions } from './fixtures';
import { fixtureBundle } from './fixtures';
import { tempDir } from '../helpers';

const PERMISSION_DENIED = 7;
let work: { dir: string; cleanup(): void };
let host: PluginHost | undefined;

afterEach(async () => {
  await host?.close();
  host = undefined;
  work.cleanup();
});

/** A host running one contract-fixture plugin per entry, and a way to run their hooks. */
async function hostWith(plugins: FixtureOptions[]): Promise<(id: string, hook: string, payload: unknown) => Promise<any>> {
  work = tempDir();
  const h = await PluginHost.open({
    dataDir: path.join(work.dir, 'data'),
    logger: pino({ level: 'silent' }),
    defaults: { healthIntervalMs: 60_000 },
    api: { whoAmI: (_args: unknown, caller) => ({ caller: caller.pluginId }) },
  });
  host = h;
  for (const p of plugins) {
    await h.install(await fixtureBundle(work.dir, { settings: false, ...p }));
    await h.enable(p.id);
  }
  return async (id, hook, payload) => (await h.callHook(id, hook, payload)).payload;
}

describe('CallPlugin', () => {
  test('without a permission it is PERMISSION_DENIED naming the missing permission, even for a plugin that does not exist', async () => {
    const run = await hostWith([{ id: 'com.acme.caller' }, { id: 'com.acme.target' }]);
    expect(await run('com.acme.caller', 'Call', { plugin: 'com.acme.target', hook: 'WhoCalled', payload: {} })).toEqual({
      code: PERMISSION_DENIED,
      error: 'plugin "com.acme.caller" may not call plugin "com.acme.target": its manifest lacks the permission "plugins.call:com.acme.target"; add it to "permissions"',
    });
    // Refused before the target is looked up: no way to probe which plugins are installed.
    expect(await run('com.acme.caller', 'Call', { plugin: 'com.acme.ghost', hook: 'WhoCalled', payload: {} })).toMatchObject({
      code: PERMISSION_DENIED,
      error: expect.stringContaining('"plugins.call:com.acme.ghost"'),
    });
  });

  test('with the exact permission it runs, and the target sees the caller; the integrator calling leaves the caller empty', async () => {
    const run = await hostWith([{ id: 'com.acme.caller', permissions: ['plugins.call:com.acme.target'] }, { id: 'com.acme.target' }, { id: 'com.other.x' }]);
    expect(await run('com.acme.caller', 'Call', { plugin: 'com.acme.target', hook: 'WhoCalled', payload: {} })).toEqual({
      payload: { caller: 'com.acme.caller' },
      rejected: false,
      reason: '',
    });
    expect(await run('com.acme.caller', 'Call', { plugin: 'com.other.x', hook: 'WhoCalled', payload: {} })).toMatchObject({ code: PERMISSION_DENIED });
    expect(await run('com.acme.target', 'WhoCalled', {})).toEqual({ caller: '' });
    // The target has no permission of its own: the grant is one-way.
    expect(await run('com.acme.target', 'Call', { plugin: 'com.acme.caller', hook: 'WhoCalled', payload: {} })).toMatchObject({ code: PERMISSION_DENIED });
  });

  test('"plugins.call:*" reaches every plugin; "plugins.call:com.acme.*" only ids under com.acme.; a plugin may call itself', async () => {
    const run = await hostWith([
      { id: 'com.any.caller', permissions: ['plugins.call:*'] },
      { id: 'com.vendor.caller', permissions: ['plugins.call:com.acme.*'] },
      { id: 'com.acme.target' },
      { id: 'com.acmeevil.target' },
    ]);
    const call = (from: string, to: string) => run(from, 'Call', { plugin: to, hook: 'WhoCalled', payload: {} });
    expect(await call('com.any.caller', 'com.acme.target')).toMatchObject({ payload: { caller: 'com.any.caller' } });
    expect(await call('com.any.caller', 'com.acmeevil.target')).toMatchObject({ payload: { caller: 'com.any.caller' } });
    expect(await call('com.vendor.caller', 'com.acme.target')).toMatchObject({ payload: { caller: 'com.vendor.caller' } });
    expect(await call('com.vendor.caller', 'com.acmeevil.target')).toMatchObject({
      code: PERMISSION_DENIED,
      error: expect.stringContaining('"plugins.call:com.acmeevil.target"'),
    });
    expect(await call('com.acme.target', 'com.acme.target')).toMatchObject({ payload: { caller: 'com.acme.target' } });
  });
});

describe('PublishEvent', () => {
  test('host.* topics are refused with PERMISSION_DENIED; the source of an event is always the publishing plugin', async () => {
    const run = await hostWith([{ id: 'com.test.pub' }, { id: 'com.test.sub' }]);
    const seen: unknown[] = [];
    host!.on('event', (e) => seen.push(e));
    await expect(run('com.test.pub', 'Publish', { topic: 'host.user.deleted', payload: {} })).rejects.toThrow(
      'plugin "com.test.pub" may not publish on "host.user.deleted": topics starting with "host." are published only by the host',
    );
    // A request field cannot name another source: the fixture sends one, the host ignores it.
    await run('com.test.pub', 'Publish', { topic: 'notes.saved', payload: { id: 1 }, source_plugin_id: 'com.test.sub' });
    host!.publish('host.user.deleted', { id: 2 });
    const delivered = async () => (await run('com.test.sub', 'Events', {})) as unknown[];
    for (let i = 0; i < 100 && (await delivered()).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await delivered()).toEqual([
      { topic: 'notes.saved', payload: { id: 1 }, source: 'com.test.pub' },
      { topic: 'host.user.deleted', payload: { id: 2 }, source: '' },
    ]);
    expect(seen).not.toContainEqual(expect.objectContaining({ topic: 'host.user.deleted', source: 'com.test.pub' }));
  });
});

describe('KV scoping', () => {
  test('no key, prefix, separator, NUL or delete-all of one plugin reaches another', async () => {
    const run = await hostWith([{ id: 'com.test.a' }, { id: 'com.test.b' }]);
    const kv = (id: string, op: Record<string, unknown>) => run(id, 'Kv', op);
    const bKeys = ['secret', 'com.test.a/x', 'com.test.a\u0000x', '\u0000', '%', '_', 'a/b\u0000c'];
    for (const key of bKeys) expect(await kv('com.test.b', { op: 'set', key, value: 'b' })).toEqual({ ok: true });
    await kv('com.test.a', { op: 'set', key: 'mine', value: 'a' });
    for (const prefix of ['', '\u0000', '%', '_', 'com.test.a', 'com.test.b', '\u0000com.test.b', '\uffff']) {
      expect((await kv('com.test.a', { op: 'list', prefix })).keys).toEqual(prefix === '' ? ['mine'] : []);
    }
    for (const key of [...bKeys, 'com.test.b\u0000secret', 'com.test.b/secret']) {
      expect(await kv('com.test.a', { op: 'get', key })).toEqual({ found: false, value: null });
      expect(await kv('com.test.a', { op: 'delete', key })).toEqual({ deleted: false });
    }
    expect(Number((await kv('com.test.a', { op: 'deleteAll' })).deleted)).toBe(1);
    expect((await kv('com.test.b', { op: 'list', prefix: '' })).keys.sort()).toEqual([...bKeys].sort());
    expect(await kv('com.test.b', { op: 'get', key: '\u0000' })).toEqual({ found: true, value: 'b' });
  });
});

describe('Invoke', () => {
  test('an unlisted method is PERMISSION_DENIED; the caller is the connection, whatever the request says', async () => {
    const run = await hostWith([
      { id: 'com.test.allowed', permissions: ['whoAmI'] },
      { id: 'com.test.denied', permissions: ['plugins.call:whoAmI', 'plugins.call:*'] },
    ]);
    expect(await run('com.test.allowed', 'Invoke', { method: 'whoAmI', args: {}, plugin_id: 'com.test.denied' })).toEqual({ result: { caller: 'com.test.allowed' } });
    expect(await run('com.test.denied', 'Invoke', { method: 'whoAmI', args: {} })).toEqual({
      code: PERMISSION_DENIED,
      error: expect.stringContaining('plugin "com.test.denied" may not invoke "whoAmI"'),
    });
    // A plugins.call: grant is never an integrator method name.
    expect(await run('com.test.denied', 'Invoke', { method: 'plugins.call:whoAmI', args: {} })).toMatchObject({ code: PERMISSION_DENIED });
  });
});
