import { until } from '../helpers';
import { AUTH, pluginBundle, testServer, upload, type TestServer } from '../server/helpers';

const ID = 'com.test.metrics-gone';
let server: TestServer;

beforeAll(async () => {
  server = await testServer({ hostOptions: { defaults: { restartBackoffMs: 50, restartBackoffMaxMs: 200 } } });
});
afterAll(() => server.stop());

const metricLines = async () => (await (await fetch(`${server.url}/metrics`, { headers: AUTH })).text()).split('\n').filter((l) => l.includes(ID));

test('removing a plugin removes every series labelled with its id from /metrics', async () => {
  expect((await upload(server.url, await pluginBundle(server.work, ID, 'runtime/contract-plugin.js'))).status).toBe(201);
  expect((await fetch(`${server.url}/api/v1/plugins/${ID}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  // A hook call, an API call from the plugin (KV) and a restart after a crash: one series of each kind.
  await server.host.callHook(ID, 'Append', { text: 'x' });
  await server.host.callHook(ID, 'Kv', { op: 'set', key: 'k', value: 'v' });
  await server.host.callHook(ID, 'Crash', {}).catch(() => undefined);
  await until(async () => (await metricLines()).some((l) => l.startsWith('plughost_plugin_restarts_total')), 'the restart to be counted');
  await until(async () => (await server.host.get(ID)).state === 'running', 'the plugin to be back');
  const before = (await metricLines()).map((l) => l.split(/[{ ]/)[0]);
  expect(before).toEqual(
    expect.arrayContaining([
      'plughost_hook_duration_seconds_bucket',
      'plughost_api_call_duration_seconds_bucket',
      'plughost_plugin_restarts_total',
      'plughost_plugin_state',
    ]),
  );

  expect((await fetch(`${server.url}/api/v1/plugins/${ID}`, { method: 'DELETE', headers: AUTH })).status).toBe(204);
  expect(await metricLines()).toEqual([]);
});

test('hook and API calls count per plugin, and removing one plugin drops its held series and leaves the other counting', async () => {
  const ids = ['com.test.metrics-a', 'com.test.metrics-b'];
  for (const id of ids) {
    expect((await upload(server.url, await pluginBundle(server.work, id, 'runtime/contract-plugin.js'))).status).toBe(201);
    expect((await fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH })).status).toBe(200);
  }
  for (let i = 0; i < 3; i++) await server.host.callHook(ids[0], 'Append', { text: 'x' });
  await server.host.callHook(ids[1], 'Append', { text: 'x' });
  await server.host.callHook(ids[1], 'Kv', { op: 'set', key: 'k', value: 'v' });
  const text = async () => (await fetch(`${server.url}/metrics`, { headers: AUTH })).text();
  expect(await text()).toMatch(/plughost_hook_duration_seconds_count\{plugin="com.test.metrics-a",hook="Append",outcome="ok"\} 3\n/);
  expect(await text()).toMatch(/plughost_hook_duration_seconds_count\{plugin="com.test.metrics-b",hook="Append",outcome="ok"\} 1\n/);
  expect(await text()).toMatch(/plughost_api_call_duration_seconds_count\{plugin="com.test.metrics-b",method="KVSet",outcome="ok"\} 1\n/);
  const metrics = server.host.metrics;
  const heldBefore = metrics.hookSeries(ids[1], 'Append');
  expect(metrics.hookDuration.seriesWith('plugin', ids[1])).toBeGreaterThan(0);
  expect(metrics.apiDuration.seriesWith('plugin', ids[1])).toBeGreaterThan(0);

  expect((await fetch(`${server.url}/api/v1/plugins/${ids[1]}`, { method: 'DELETE', headers: AUTH })).status).toBe(204);
  for (const metric of [metrics.hookDuration, metrics.apiDuration, metrics.apiStreamCalls]) expect(metric.seriesWith('plugin', ids[1])).toBe(0);
  // The per-plugin cache let go of the removed plugin's series: a lookup makes new ones.
  expect(metrics.hookSeries(ids[1], 'Append')).not.toBe(heldBefore);
  expect(await text()).not.toMatch(/com\.test\.metrics-b/);
  await server.host.callHook(ids[0], 'Append', { text: 'x' });
  expect(await text()).toMatch(/plughost_hook_duration_seconds_count\{plugin="com.test.metrics-a",hook="Append",outcome="ok"\} 4\n/);
});
