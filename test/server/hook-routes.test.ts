/**
 * Hooks and events fired from outside, on a real server with real plugins: one plugin's
 * hook (and each way it can fail, in the usual error shape), notify and filter across
 * plugins, events published as the host, bad bodies, and the admin token.
 */
import type { PublishedEvent } from '../../src/runtime';
import { until } from '../helpers';
import { fixtureBundle } from '../runtime/fixtures';
import { AUTH, testServer, type TestServer } from './helpers';

const A = 'com.test.hooks-a';
const B = 'com.test.hooks-b';
const STOPPED = 'com.test.hooks-stopped';

describe('hook and event routes', () => {
  let server: TestServer;

  const post = async (path: string, body: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${server.url}/api/v1${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const error = (status: number, code: string, message?: string) => ({ status, body: { error: { code: `PLUGHOST_ERR_${code}`, message: message ?? expect.any(String), details: expect.any(Object) } } });

  beforeAll(async () => {
    server = await testServer();
    // A hangs in Slow (HANG) until its deadline; B only appends. Both take every event topic.
    const install = async (id: string, env: Record<string, string>, limits: Record<string, number> = {}) => {
      await server.host.install(await fixtureBundle(server.work, { id, env, limits }));
    };
    await install(A, { HOOKS: 'Append,Slow,Events,Context,Notify', HANG: '1' }, { hook_timeout_ms: 1500 });
    await install(B, { HOOKS: 'Append,Notify' });
    await install(STOPPED, { HOOKS: 'Append' });
    await server.host.enable(A);
    await server.host.enable(B);
  }, 60_000);
  afterAll(() => server.stop());

  test("one plugin's hook: its payload, or its rejection with the reason", async () => {
    expect(await post(`/plugins/${A}/hooks/Append`, { payload: { text: 'x' } })).toEqual({ status: 200, body: { payload: { text: `x[${A}]` }, rejected: false, reason: '' } });
    expect(await post(`/plugins/${A}/hooks/Append`, { payload: { text: 'reject-me' } }))
      .toEqual({ status: 200, body: { payload: { text: 'reject-me' }, rejected: true, reason: `no thanks from ${A}` } });
  });

  test('the context reaches the plugin as RunHook context', async () => {
    const context = { userId: 'user-7', requestId: 'req-1', values: { tenant: 'acme' } };
    expect((await post(`/plugins/${A}/hooks/Context`, { payload: null, context })).body.payload).toEqual(context);
    expect((await post(`/plugins/${A}/hooks/Context`, { payload: null })).body.payload).toEqual({ userId: '', requestId: '', values: {} });
  });

  test('404 unknown plugin or hook, 409 not running, 504 past the deadline, each in the error shape', async () => {
    expect(await post('/plugins/com.test.nobody/hooks/Append', { payload: 1 })).toEqual(error(404, 'PLUGIN_NOT_FOUND', 'no plugin with id "com.test.nobody" is installed'));
    expect(await post(`/plugins/${A}/hooks/Nope`, { payload: 1 })).toEqual(error(404, 'HOOK_NOT_IMPLEMENTED', `plugin "${A}" does not implement hook "Nope"`));
    const stopped = await post(`/plugins/${STOPPED}/hooks/Append`, { payload: 1 });
    expect(stopped).toEqual(error(409, 'HOOK_PLUGIN_NOT_RUNNING'));
    expect(stopped.body.error.message).toContain(`plugin "${STOPPED}" is not running (state not_running), so its hook "Append" cannot be called; enable it first`);
    expect(stopped.body.error.details).toEqual({ id: STOPPED, hook: 'Append', state: 'not_running' });
    expect(await post(`/plugins/${A}/hooks/Slow`, { payload: {} })).toEqual(error(504, 'HOOK_TIMEOUT', `hook Slow of plugin "${A}" passed its deadline of 1500 ms (Deadline exceeded)`));
    // The hung call did not take the plugin down.
    expect((await post(`/plugins/${A}/hooks/Append`, { payload: { text: 'after' } })).status).toBe(200);
  });

  test('notify: one outcome per running plugin that implements the hook', async () => {
    const { status, body } = await post('/hooks/Notify/notify', { payload: { n: 1 } });
    expect(status).toBe(200);
    expect(body.outcomes.map((o: { pluginId: string; ok: boolean }) => [o.pluginId, o.ok]).sort()).toEqual([[A, true], [B, true]]);
    expect(body.outcomes[0].durationMs).toEqual(expect.any(Number));
    // A hook nobody implements is not an error: nobody was notified.
    expect(await post('/hooks/Unheard/notify', { payload: 1 })).toEqual({ status: 200, body: { outcomes: [] } });
  });

  test('filter: the chain in id order with its steps, and a rejection naming the plugin', async () => {
    const passed = await post('/hooks/Append/filter', { payload: { text: 'x' } });
    expect(passed.status).toBe(200);
    expect(passed.body).toEqual({
      rejected: false,
      payload: { text: `x[${A}][${B}]` },
      steps: [{ pluginId: A, outcome: 'changed', durationMs: expect.any(Number) }, { pluginId: B, outcome: 'changed', durationMs: expect.any(Number) }],
    });
    const rejected = await post('/hooks/Append/filter', { payload: { text: 'reject-me' } });
    expect(rejected.body).toMatchObject({ rejected: true, reason: `no thanks from ${A}`, by: A, payload: { text: 'reject-me' }, steps: [{ pluginId: A, outcome: 'rejected' }] });
    // A plugin that passes its deadline is a failed step, and the chain goes on (fail-open).
    const slow = await post('/hooks/Slow/filter', { payload: 1 });
    expect(slow.body).toMatchObject({ rejected: false, payload: 1, steps: [{ pluginId: A, outcome: 'failed', error: expect.stringContaining('passed its deadline') }] });
  });

  test('events: published as the host on any topic, host.* included, and delivered to subscribers', async () => {
    const seen: PublishedEvent[] = [];
    server.host.on('event', (e: PublishedEvent) => seen.push(e));
    expect(await post('/events', { topic: 'notes.created', payload: { id: 1 } })).toEqual({ status: 202, body: { topic: 'notes.created', nodeId: server.host.nodeId } });
    expect((await post('/events', { topic: 'host.user.deleted', payload: null })).status).toBe(202);
    expect(seen.map((e) => [e.topic, e.source])).toEqual([['notes.created', null], ['host.user.deleted', null]]);
    let got: Array<{ topic: string; payload: unknown; source: string }> = [];
    await until(async () => {
      got = (await post(`/plugins/${A}/hooks/Events`, { payload: null })).body.payload;
      return got.length >= 2;
    }, 'both events to reach the subscribed plugin');
    expect(got).toEqual([{ topic: 'notes.created', payload: { id: 1 }, source: '' }, { topic: 'host.user.deleted', payload: null, source: '' }]);
  });

  test('bad bodies are 400s naming the field', async () => {
    const bad = async (path: string, body: unknown, field: string) => {
      const res = await post(path, body);
      expect([path, res.status, res.body.error.code]).toEqual([path, 400, 'PLUGHOST_ERR_BAD_BODY']);
      expect(res.body.error.message).toContain(field);
    };
    await bad(`/plugins/${A}/hooks/Append`, {}, "required property 'payload'");
    await bad(`/plugins/${A}/hooks/Append`, { payload: 1, colour: 'red' }, 'unknown field "colour"');
    await bad(`/plugins/${A}/hooks/Append`, { payload: 1, context: { user: 'x' } }, 'unknown field "user"');
    await bad(`/plugins/${A}/hooks/Append`, { payload: 1, context: { userId: 'u'.repeat(300) } }, 'context/userId');
    await bad(`/plugins/${A}/hooks/Append`, { payload: 1, context: { values: { a: { b: 1 } } } }, 'context/values/a');
    await bad('/hooks/Append/notify', { context: {} }, "required property 'payload'");
    await bad('/hooks/Append/filter', [], 'body must be object');
    await bad('/events', { payload: 1 }, "required property 'topic'");
    await bad('/events', { topic: '', payload: 1 }, 'body/topic');
    const notJson = await fetch(`${server.url}/api/v1/events`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{"topic":' });
    expect([notJson.status, ((await notJson.json()) as { error: { code: string } }).error.code]).toEqual([400, 'PLUGHOST_ERR_BAD_JSON']);
  });

  test('every route needs the admin token', async () => {
    for (const path of [`/plugins/${A}/hooks/Append`, '/hooks/Append/notify', '/hooks/Append/filter', '/events']) {
      expect([path, (await post(path, { topic: 't', payload: 1 }, {})).status]).toEqual([path, 401]);
      expect([path, (await post(path, { topic: 't', payload: 1 }, { authorization: 'Bearer wrong' })).status]).toEqual([path, 403]);
    }
  });
});
