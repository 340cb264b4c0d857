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
