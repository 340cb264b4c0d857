/**
 * An upgrade whose settings schema changed keeps every setting that still fits, drops the others
 * with a warning (in the install answer, over REST, and in the log) and fills the new defaults.
 */
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { tempDir } from '../helpers';
import { AUTH, testServer, upload } from '../server/helpers';
import { fixtureBundle } from './fixtures';

const ID = 'com.test.upgrade';
const V1 = {
  settings: [
    { key: 'a', type: 'text' },
    { key: 'b', type: 'secret' },
    { key: 'c', type: 'number' },
    { key: 'mode', type: 'dropdown', options: [{ display_name: 'Fast', value: 'fast' }, { display_name: 'Slow', value: 'slow' }] },
  ],
};
// 0.2.0 drops c, no longer offers mode "slow" (its new default is "fast") and adds level.
const V2 = {
  settings: [
    { key: 'a', type: 'text' },
    { key: 'b', type: 'secret' },
    { key: 'mode', type: 'dropdown', default: 'fast', options: [{ display_name: 'Fast', value: 'fast' }, { display_name: 'Safe', value: 'safe' }] },
    { key: 'level', type: 'number', default: 3 },
  ],
};
const VALUES = { a: 'alpha', b: 's3cret', c: 7, mode: 'slow' };

let work: { dir: string; cleanup(): void };
beforeEach(() => (work = tempDir()));
afterEach(() => work.cleanup());

test('PluginHost.install: settings that fit are kept (the secret too), the others dropped with warnings and a log record', async () => {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (line, _enc, done) => (records.push(JSON.parse(String(line))), done()) });
  const host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'warn' }, sink) });
  try {
    const first = await host.install(await fixtureBundle(work.dir, { id: ID, version: '0.1.0', settingsSchema: V1 }));
    await host.enable(ID);
    await host.setConfig(ID, VALUES);
    const upgraded = await host.install(await fixtureBundle(work.dir, { id: ID, version: '0.2.0', settingsSchema: V2 }), { force: true });
    expect(upgraded).toMatchObject({ version: '0.2.0', enabled: true, state: 'running' });
    expect(await host.getConfig(ID, { reveal: true })).toEqual({ a: 'alpha', b: 's3cret', mode: 'fast', level: 3 });
    expect(first.warnings).toEqual([]);
    expect(upgraded.warnings).toEqual([
      'setting "c" was dropped: the new version has no such setting',
      'setting "mode" was dropped: its value does not fit the new version (expected one of "fast", "safe", got the string "slow"); it now has the new default',
    ]);
    // The plugin itself was started with the carried configuration.
    expect((await host.callHook(ID, 'Config', {})).payload).toEqual({ a: 'alpha', b: 's3cret', mode: 'fast', level: 3 });
    const dropped = records.filter((r) => r.msg === 'install dropped a setting');
    expect(dropped.map((r) => [r.plugin_id, r.setting, r.from_version, r.to_version])).toEqual([
      [ID, 'c', '0.1.0', '0.2.0'],
      [ID, 'mode', '0.1.0', '0.2.0'],
    ]);
  } finally {
    await host.close();
  }
});

test('REST: the install answer carries the warnings, and a secret that no longer fits is dropped without its value being shown', async () => {
  const server = await testServer();
  try {
    const install = async (version: string, schema: object, query = '') => {
      const res = await upload(server.url, await fixtureBundle(server.work, { id: ID, version, settingsSchema: schema }), query);
      expect(res.status).toBe(201);
      return (await res.json()) as { version: string; warnings: string[] };
    };
    const first = await install('0.1.0', V1);
    const put = await fetch(`${server.url}/api/v1/plugins/${ID}/config`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(VALUES) });
    expect(put.status).toBe(200);
    // 0.3.0 turns b into a number: the stored secret cannot stay, and must not be quoted.
    const V3 = { settings: [V2.settings[0], { key: 'b', type: 'number' }, V2.settings[2], V2.settings[3]] };
    const answer = await install('0.3.0', V3, '?force=true');
    expect(answer.version).toBe('0.3.0');
    expect(await server.host.getConfig(ID, { reveal: true })).toEqual({ a: 'alpha', mode: 'fast', level: 3 });
    expect(first.warnings).toEqual([]);
    expect(answer.warnings).toEqual([
      'setting "b" was dropped: its value does not fit the new version (expected a number)',
      'setting "c" was dropped: the new version has no such setting',
      'setting "mode" was dropped: its value does not fit the new version (expected one of "fast", "safe", got the string "slow"); it now has the new default',
    ]);
    expect(JSON.stringify(answer)).not.toContain('s3cret');
  } finally {
    await server.stop();
  }
});
