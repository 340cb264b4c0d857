/** ctx.api calls that leave the plugin: invoke with permissions, events, calls to other plugins. */
import { createTestHost, type TestHost } from '../../sdk/testing';
import { fixture, isAlive } from '../helpers';

type Api = { getNote(args: { id: string }): { id: string; text: string }; deleteNote(args: { id: string }): boolean };
type Hooks = {
  Invoke: { method: string; args: unknown };
  Publish: { topic: string; payload: unknown };
  CallOther: { pluginId: string; hook: string; payload: unknown };
  WhoCalled: Record<string, never>;
};

let host: TestHost<Hooks>;
beforeAll(async () => {
  host = await createTestHost<Hooks, Api>(fixture('sdk/kitchen-sink.js'), {
    manifest: { id: 'com.example.sink', name: 'sink', version: '1.0.0', permissions: ['getNote', 'missingMethod', 'plugins.call:com.other', 'plugins.call:com.none'] },
    api: {
      getNote: ({ id }) => ({ id, text: `note ${id}` }),
      deleteNote: () => true,
    },
    callPlugin: (pluginId, hook, payload) =>
      pluginId === 'com.other' ? { rejected: false, payload: { seen: payload, hook } } : { rejected: true, reason: `no ${pluginId}` },
  });
});
afterAll(() => host.close());

test('an allowed method is invoked with its arguments and its result comes back', async () => {
  expect(await host.runHook('Invoke', { method: 'getNote', args: { id: '42' } })).toEqual({
    rejected: false,
    payload: { result: { id: '42', text: 'note 42' } },
  });
  expect(host.invocations).toContainEqual({ method: 'getNote', args: { id: '42' }, allowed: true, result: { id: '42', text: 'note 42' } });
});

test('a method missing from the manifest permissions is PERMISSION_DENIED, and not run', async () => {
  const out = await host.runHook('Invoke', { method: 'deleteNote', args: { id: '1' } });
  expect(out).toEqual({
    rejected: false,
    payload: { code: 'PERMISSION_DENIED', error: expect.stringContaining('may not invoke "deleteNote"') },
  });
  expect(host.invocations).toContainEqual({ method: 'deleteNote', args: { id: '1' }, allowed: false });
});

test('a permitted method the host does not have is NOT_FOUND', async () => {
  const out = await host.runHook('Invoke', { method: 'missingMethod', args: null });
  expect(out).toMatchObject({ payload: { code: 'NOT_FOUND' } });
});

test('published events are captured in order', async () => {
  await host.runHook('Publish', { topic: 'notes.counted', payload: { n: 1 } });
  await host.runHook('Publish', { topic: 'notes.counted', payload: { n: 2 } });
  expect(host.published.filter((e) => e.topic === 'notes.counted').map((e) => e.payload)).toEqual([{ n: 1 }, { n: 2 }]);
});

test('plugins.call reaches another plugin, and its rejection comes back as one', async () => {
  expect(await host.runHook('CallOther', { pluginId: 'com.other', hook: 'H', payload: { a: 1 } })).toEqual({
    rejected: false,
    payload: { rejected: false, payload: { seen: { a: 1 }, hook: 'H' } },
  });
  expect(await host.runHook('CallOther', { pluginId: 'com.none', hook: 'H', payload: {} })).toEqual({
    rejected: false,
    payload: { rejected: true, reason: 'no com.none' },
  });
});

test('plugins.call to a plugin the manifest does not grant is PERMISSION_DENIED naming the permission, and not run', async () => {
  await expect(host.runHook('CallOther', { pluginId: 'com.stranger', hook: 'H', payload: {} })).rejects.toThrow(
    'plugin "com.example.sink" may not call plugin "com.stranger": its manifest lacks the permission "plugins.call:com.stranger"',
  );
});

test('publishing on a host.* topic is PERMISSION_DENIED, as under a real host', async () => {
  await expect(host.runHook('Publish', { topic: 'host.user.deleted', payload: {} })).rejects.toThrow(
    'topics starting with "host." are published only by the host',
  );
  expect(host.published.map((e) => e.topic)).not.toContain('host.user.deleted');
});

test('ctx.caller is the calling plugin when the test simulates one, undefined when the host calls', async () => {
  expect(await host.runHook('WhoCalled', {}, { caller: 'com.acme.caller' })).toEqual({ rejected: false, payload: { caller: 'com.acme.caller' } });
  expect(await host.runHook('WhoCalled', {}, { caller: 'com.acme.caller', via: 'stream' })).toEqual({ rejected: false, payload: { caller: 'com.acme.caller' } });
  expect(await host.runHook('WhoCalled', {})).toEqual({ rejected: false, payload: { caller: null } });
});

test('close() leaves no process behind', async () => {
  const other = await createTestHost(fixture('sdk/kitchen-sink.js'));
  const pid = other.pid;
  expect(isAlive(pid)).toBe(true);
  await other.close();
  expect(isAlive(pid)).toBe(false);
});
