/**
 * `plughost plugin hook`, `plughost hook notify|filter` and `plughost event publish` as a user
 * runs them: the built CLI in a child process against a real server with real plugins.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/server';
import { tempDir, until } from '../helpers';
import { fixtureBundle } from '../runtime/fixtures';
import { ROOT, cliRunner } from './helpers';

const TOKEN = 'cli-hook-test-token-of-at-least-32-chars';
const A = 'com.test.cli-hooks-a';
const B = 'com.test.cli-hooks-b';

describe('plughost plugin hook, hook, event', () => {
  const work = tempDir();
  let server: RunningServer;
  const { cli, ok, json } = cliRunner(() => ({ url: server.url, token: TOKEN, cwd: work.dir }));

  beforeAll(async () => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    server = await startServer({ dataDir: path.join(work.dir, 'data'), port: 0, adminToken: TOKEN, logger: pino({ level: 'silent' }) });
    await server.host.install(await fixtureBundle(work.dir, { id: A, env: { HOOKS: 'Append,Slow,Context,Events,Notify', HANG: '1' }, limits: { hook_timeout_ms: 1500 } }));
    await server.host.install(await fixtureBundle(work.dir, { id: B, env: { HOOKS: 'Append,Notify' } }));
    await server.host.enable(A);
    await server.host.enable(B);
  }, 180_000);
  afterAll(async () => {
    await server?.close();
    work.cleanup();
  });

  it("calls one plugin's hook with a payload from the line, a file or stdin, and prints its answer", async () => {
    expect(await ok('plugin', 'hook', A, 'Append', '--payload', '{"text":"x"}')).toBe(`{\n  "text": "x[${A}]"\n}\n`);
    expect(await json('plugin', 'hook', A, 'Append', '--payload', '{"text":"reject-me"}')).toEqual({ payload: { text: 'reject-me' }, rejected: true, reason: `no thanks from ${A}` });
    expect(await ok('plugin', 'hook', A, 'Append', '--payload', '{"text":"reject-me"}')).toBe(`rejected by ${A}: no thanks from ${A}\n`);
    const file = path.join(work.dir, 'payload.json');
    fs.writeFileSync(file, '{"text": "from a file"}\n');
    expect(await json<{ payload: unknown }>('plugin', 'hook', A, 'Append', '--payload', `@${file}`)).toMatchObject({ payload: { text: `from a file[${A}]` } });
    const piped = await cli(['plugin', 'hook', A, 'Append', '--payload', '-', '--json'], {}, '{"text": "from stdin"}');
    expect(JSON.parse(piped.stdout)).toMatchObject({ payload: { text: `from stdin[${A}]` } });
  });

  it('sends the context flags; the plugin sees them', async () => {
    const seen = await json<{ payload: unknown }>('plugin', 'hook', A, 'Context', '--user-id', 'ann', '--request-id', 'r-9', '--value', 'tenant=acme', '--value', 'x=1=2');
    expect(seen.payload).toEqual({ userId: 'ann', requestId: 'r-9', values: { tenant: 'acme', x: '1=2' } });
  });

  it('fails with the server message and status: unknown hook 404, not running 409, past the deadline 504', async () => {
    const unknown = await cli(['plugin', 'hook', A, 'Nope']);
    expect([unknown.status, unknown.stdout, unknown.stderr]).toEqual([1, '', `plughost plugin hook: plugin "${A}" does not implement hook "Nope" (HTTP 404 PLUGHOST_ERR_HOOK_NOT_IMPLEMENTED)\n`]);
    const slow = await cli(['plugin', 'hook', A, 'Slow', '--payload', '{}']);
    expect([slow.status, slow.stderr]).toEqual([1, `plughost plugin hook: hook Slow of plugin "${A}" passed its deadline of 1500 ms (Deadline exceeded) (HTTP 504 PLUGHOST_ERR_HOOK_TIMEOUT)\n`]);
    await server.host.disable(B);
    try {
      const stopped = await cli(['plugin', 'hook', B, 'Append', '--payload', '{}']);
      expect([stopped.status, stopped.stderr]).toEqual([1, expect.stringMatching(/is not running \(state not_running\).*\(HTTP 409 PLUGHOST_ERR_HOOK_PLUGIN_NOT_RUNNING\)\n$/)]);
    } finally {
      await server.host.enable(B);
    }
  });

  it('refuses payloads that are not JSON as usage errors naming the flag and where the text goes wrong', async () => {
    const bad = await cli(['plugin', 'hook', A, 'Append', '--payload', '{"text": tru}']);
    expect([bad.status, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toContain('--payload: not valid JSON at line 1 column 13 (offset 12): expected true, found "}"');
    const missing = await cli(['hook', 'notify', 'Notify', '--payload', '@nowhere.json']);
    expect([missing.status, missing.stderr]).toEqual([2, expect.stringContaining('--payload (nowhere.json): cannot read it: ENOENT')]);
    const piped = await cli(['event', 'publish', 'x', '--payload', '-'], {}, '[1,\n2,,]');
    expect([piped.status, piped.stderr]).toEqual([2, expect.stringContaining('--payload (stdin): not valid JSON at line 2 column 3 (offset 6): expected a value')]);
    expect((await cli(['hook', 'broadcast', 'Notify'])).stderr).toContain('unknown subcommand "broadcast"; expected notify or filter');
    expect((await cli(['plugin', 'hook', A])).stderr).toContain('missing hook name');
  });

  it('notify and filter across plugins: tables, and JSON with every step', async () => {
    expect(await ok('hook', 'notify', 'Notify', '--payload', '{}')).toMatch(new RegExp(`^PLUGIN\\s+OK\\s+TIME\\s+ERROR\\n${A}\\s+yes\\s+\\d+ ms\\s+-\\n${B}\\s+yes\\s+\\d+ ms\\s+-\\n$`));
    expect(await ok('hook', 'notify', 'Unheard')).toBe('no running plugin implements Unheard\n');
    const table = await ok('hook', 'filter', 'Append', '--payload', '{"text":"x"}');
    expect(table).toMatch(new RegExp(`^PLUGIN\\s+OUTCOME\\s+TIME\\s+ERROR\\n${A}\\s+changed\\s+\\d+ ms\\s+-\\n${B}\\s+changed`));
    expect(table).toContain(`payload:\n{\n  "text": "x[${A}][${B}]"\n}\n`);
    const rejected = await json<{ rejected: boolean; by: string; steps: Array<{ pluginId: string; outcome: string }> }>('hook', 'filter', 'Append', '--payload', '{"text":"reject-me"}');
    expect(rejected).toMatchObject({ rejected: true, by: A, steps: [{ pluginId: A, outcome: 'rejected' }] });
    expect(await ok('hook', 'filter', 'Append', '--payload', '{"text":"reject-me"}')).toContain(`rejected by ${A}: no thanks from ${A}\n`);
  });

  it('publishes an event as the host, which subscribed plugins get', async () => {
    expect(await ok('event', 'publish', 'notes.created', '--payload', '{"id":7}')).toBe(`published notes.created (node ${server.host.nodeId})\n`);
    expect(await json('event', 'publish', 'host.ping')).toEqual({ topic: 'host.ping', nodeId: server.host.nodeId });
    await until(async () => ((await server.host.callHook(A, 'Events', null)).payload as unknown[]).length >= 2, 'the events to reach the plugin');
    expect((await server.host.callHook(A, 'Events', null)).payload).toEqual([
      { topic: 'notes.created', payload: { id: 7 }, source: '' },
      { topic: 'host.ping', payload: null, source: '' },
    ]);
    const wrong = await cli(['event', 'publish', 'x', '--token', 'nope']);
    expect([wrong.status, wrong.stderr]).toEqual([1, 'plughost event publish: the admin token is not valid (HTTP 403 PLUGHOST_ERR_AUTH_WRONG)\n']);
  });
});
