/**
 * A plugin's logs over REST: the recent records filtered by level, and the live stream with
 * the host's own lines about the plugin (started, stopped with its exit code, restarting after
 * an exit, restarted, parked) among the plugin's, on a real server with real plugins.
 */
import type { PluginLogEntry } from '../../src/runtime';
import { fixtureBundle } from '../runtime/fixtures';
import { openStream, type SseReader } from '../web/helpers';
import { AUTH, testServer, type TestServer } from './helpers';

const QUIET = 'com.test.logs-quiet';
const CRASHY = 'com.test.logs-crashy';

describe('log routes', () => {
  let server: TestServer;
  const readers: SseReader[] = [];

  const stream = async (id: string, query = ''): Promise<SseReader> => {
    const { status, type, reader } = await openStream(`${server.url}/api/v1/plugins/${id}/logs/stream${query}`, AUTH);
    expect([status, type]).toEqual([200, 'text/event-stream; charset=utf-8']);
    readers.push(reader!);
    await reader!.next('ready');
    return reader!;
  };
  const logs = (reader: SseReader) => reader.events.filter((e) => e.event === 'log').map((e) => e.data as PluginLogEntry);
  const get = async (path: string) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { headers: AUTH });
    return { status: res.status, body: (await res.json()) as PluginLogEntry[] };
  };

  beforeAll(async () => {
    // Two failures park a plugin; restarts come quickly.
    server = await testServer({ hostOptions: { defaults: { maxFailures: 2, restartBackoffMs: 20, restartBackoffMaxMs: 20 } } });
    await server.host.install(await fixtureBundle(server.work, { id: QUIET, env: { HOOKS: 'Append' } }));
    await server.host.install(await fixtureBundle(server.work, { id: CRASHY, env: { HOOKS: 'Append', CRASH_AFTER_MS: '100' } }));
    await server.host.enable(QUIET);
  }, 60_000);
  afterAll(async () => {
    for (const reader of readers) await reader.close();
    await server.stop();
  });

  test("the stream sends the recent records, then each new one: the plugin's and the host's, stop and start included", async () => {
    const reader = await stream(QUIET);
    expect(logs(reader).map((e) => [e.source, e.message])).toEqual([['api', 'activated'], ['host', 'started']]);
    expect(logs(reader)[1]).toMatchObject({ pluginId: QUIET, level: 'info', fields: { pid: expect.any(Number) } });
    await server.host.disable(QUIET);
    await server.host.enable(QUIET);
    await reader.next('log', 4);
    expect(logs(reader).slice(2).map((e) => [e.source, e.message, e.fields])).toEqual([
      ['host', 'stopped', { exit_code: 0 }],
      ['api', 'activated', { version: expect.any(String) }],
      ['host', 'started', { pid: expect.any(Number) }],
    ]);
  });

  test('host lines for a plugin that keeps exiting: restarting with the exit code, restarted, parked; --level keeps warn and error only', async () => {
    const all = await stream(CRASHY);
    const severe = await stream(CRASHY, '?level=warn');
    expect(logs(all)).toEqual([]);
    await server.host.enable(CRASHY);
    const parked = (await severe.next('log', 1)) as PluginLogEntry;
    expect(parked).toMatchObject({ source: 'host', level: 'error', message: expect.stringMatching(/^parked as failed_to_stay_running: plugin process exited unexpectedly \(exit code 9\).*2 failures/) });
    expect(logs(severe).map((e) => [e.level, e.message])).toEqual([
      ['warn', expect.stringMatching(/^restarting in 20 ms after: plugin process exited unexpectedly \(exit code 9\)/)],
      ['error', parked.message],
    ]);
    await all.next('log', 5);
    expect(logs(all).filter((e) => e.source === 'host').map((e) => e.message.split(':')[0])).toEqual(['started', 'restarting in 20 ms after', 'restarted', 'parked as failed_to_stay_running']);
    expect(logs(all).find((e) => e.message === 'restarted')?.fields).toEqual({ pid: expect.any(Number), restarts: 1 });

    // The same records and filter without the stream.
    const recent = await get(`/plugins/${CRASHY}/logs?level=warn`);
    expect(recent.body.map((e) => e.level)).toEqual(['warn', 'error']);
    expect((await get(`/plugins/${CRASHY}/logs?level=error`)).body.map((e) => e.message)).toEqual([parked.message]);
    expect((await get(`/plugins/${CRASHY}/logs?level=warn&limit=1`)).body.map((e) => e.level)).toEqual(['error']);
    expect((await get(`/plugins/${CRASHY}/logs?limit=2`)).body).toHaveLength(2);
    const badLevel = await fetch(`${server.url}/api/v1/plugins/${CRASHY}/logs?level=loud`, { headers: AUTH });
    expect(badLevel.status).toBe(400);
    expect(((await badLevel.json()) as { error: { message: string } }).error.message).toContain('level');
  });

  test('an unknown plugin is a 404 before any stream starts; the token is required', async () => {
    const unknown = await fetch(`${server.url}/api/v1/plugins/com.test.nobody/logs/stream`, { headers: AUTH });
    expect([unknown.status, unknown.headers.get('content-type'), ((await unknown.json()) as { error: { code: string } }).error.code])
      .toEqual([404, 'application/json; charset=utf-8', 'PLUGHOST_ERR_PLUGIN_NOT_FOUND']);
    expect((await openStream(`${server.url}/api/v1/plugins/${QUIET}/logs/stream`)).status).toBe(401);
  });

  test('removing the plugin says so and ends the stream', async () => {
    const id = 'com.test.logs-removed';
    await server.host.install(await fixtureBundle(server.work, { id }));
    const res = await fetch(`${server.url}/api/v1/plugins/${id}/logs/stream`, { headers: AUTH, signal: AbortSignal.timeout(20_000) });
    const text = res.text();
    await server.host.remove(id);
    expect(await text).toMatch(/event: ready\n[^]*event: removed\ndata: {"pluginId":"com.test.logs-removed"}\n\n$/);
  });
});
