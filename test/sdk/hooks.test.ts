/** Every hook kind of an SDK plugin, through the harness: a real child process over real gRPC. */
import * as grpc from '@grpc/grpc-js';
import { createTestHost, type TestHost } from '../../sdk/testing';
import { fixture } from '../helpers';

type Hooks = {
  Upper: { text: string };
  Unchanged: { n: number };
  Boom: Record<string, never>;
  WhoAmI: Record<string, never>;
  Info: null;
  SaveConfig: { mode: string };
};

let host: TestHost<Hooks>;
beforeAll(async () => {
  host = await createTestHost<Hooks>(fixture('sdk/kitchen-sink.js'), { config: { mode: 'first' }, hostVersion: '1.2.3' });
});
afterAll(() => host.close());

test('Implemented lists what the definition has, RunHookStream when there are hooks and ServeHTTPStream (with side channels) beside ServeHTTP', () => {
  expect(host.implemented.methods.sort()).toEqual(['HTTPSideChannel', 'OnActivate', 'OnConfigurationChange', 'OnDeactivate', 'OnEvent', 'RunHookBatchStream', 'RunHookStream', 'ServeHTTP', 'ServeHTTPStream']);
  expect(host.implemented.hooks).toContain('Upper');
  expect(host.implemented.eventTopics).toEqual(['notes.*', 'exact']);
});

test('onActivate ran with the API connected', () => {
  expect(host.kv.get('activations')).toBe(1);
  expect(host.logs).toContainEqual({ level: 'info', message: 'activated', fields: { plugin: 'test.plugin', host: '1.2.3' } });
});

describe.each(['unary', 'stream'] as const)('filter hooks over %s', (via) => {
  test('a changed payload comes back', async () => {
    expect(await host.runHook('Upper', { text: 'hello' }, { via })).toEqual({ rejected: false, payload: { text: 'HELLO' } });
  });
  test('returning nothing leaves the payload unchanged', async () => {
    expect(await host.runHook('Unchanged', { n: 7 }, { via })).toEqual({ rejected: false, payload: { n: 7 } });
  });
  test('reject() stops the chain with the reason', async () => {
    expect(await host.runHook('Upper', { text: '' }, { via })).toEqual({ rejected: true, reason: 'text is empty' });
  });
  test('a throwing handler fails the call with its message', async () => {
    await expect(host.runHook('Boom', {}, { via })).rejects.toThrow(/boom from the hook/);
  });
  test('the hook context carries request id, user and values', async () => {
    const out = await host.runHook('WhoAmI', {}, { via, requestId: 'r-1', userId: 'u-9', values: { a: 'b' } });
    expect(out).toEqual({ rejected: false, payload: { hook: 'WhoAmI', requestId: 'r-1', userId: 'u-9', values: { a: 'b' }, mode: 'first' } });
  });
});

test('many concurrent calls over the fast path are matched to their answers', async () => {
  const texts = Array.from({ length: 50 }, (_, i) => `t${i}`);
  const outs = await Promise.all(texts.map((text) => host.runHook('Upper', { text }, { via: 'stream' })));
  expect(outs.map((o) => (o.rejected ? null : o.payload.text))).toEqual(texts.map((t) => t.toUpperCase()));
});

test('notify ignores the result but reports a failure', async () => {
  await expect(host.notify('Upper', { text: 'x' })).resolves.toBeUndefined();
  await expect(host.notify('Boom', {})).rejects.toThrow(/boom/);
});

test.each(['unary', 'stream'] as const)('a hook the plugin does not define is UNIMPLEMENTED (over %s), a throwing one UNKNOWN', async (via) => {
  await expect(host.runHook('Nope' as keyof Hooks, { text: 'x' } as never, { via })).rejects.toMatchObject({
    code: grpc.status.UNIMPLEMENTED,
    details: 'this plugin does not implement hook "Nope"',
  });
  await expect(host.runHook('Boom', {}, { via })).rejects.toMatchObject({ code: grpc.status.UNKNOWN, details: 'boom from the hook' });
});

test('configuration changes reach ctx.config; a throwing onConfigurationChange keeps the old one', async () => {
  await host.configure({ mode: 'second' });
  expect(await host.runHook('WhoAmI', {})).toMatchObject({ payload: { mode: 'second' } });
  await expect(host.configure({ mode: 'broken' })).rejects.toThrow(/mode "broken" is not allowed/);
  expect(host.config.mode).toBe('second');
  expect(await host.runHook('WhoAmI', {})).toMatchObject({ payload: { mode: 'second' } });
});

test('API reads: configuration, manifest id and host version', async () => {
  expect(await host.runHook('Info', null)).toEqual({ rejected: false, payload: { config: { mode: 'second' }, manifest: 'test.plugin', version: '1.2.3' } });
});

test('saveConfiguration goes through the host and back through onConfigurationChange', async () => {
  expect(await host.runHook('SaveConfig', { mode: 'third' })).toEqual({ rejected: false, payload: { mode: 'third' } });
  expect(host.config.mode).toBe('third');
});

test('events: prefix and exact subscriptions; unmatched topics are not sent', async () => {
  expect(await host.publish('notes.saved', { id: 1 }, 'com.other')).toBe(true);
  expect(host.kv.get('event:notes.saved')).toEqual({ payload: { id: 1 }, source: 'com.other' });
  expect(await host.publish('exact', 'x')).toBe(true);
  expect(host.logs).toContainEqual({ level: 'warn', message: 'exact event', fields: { payload: 'x' } });
  expect(await host.publish('other.thing', {})).toBe(false);
});

test('onDeactivate runs with the API still connected', async () => {
  await host.deactivate();
  expect(host.kv.get('deactivated')).toBe(true);
});
