/** Operations on one plugin take turns: a configuration saved during an install is judged by the version installed when it runs. */
import * as path from 'node:path';
import pino from 'pino';
import { Errors } from '../../src/errors';
import { validateConfig } from '../../src/manifest';
import { PluginHost } from '../../src/runtime';
import { SqliteStore } from '../../src/store';
import type { PluginRecord, Store } from '../../src/store/store';
import { tempDir } from '../helpers';
import { fixtureBundle } from './fixtures';

const ID = 'com.test.cfg-race';
const option = (value: string) => ({ display_name: value, value });
const V1 = { settings: [{ key: 'mode', type: 'dropdown', default: 'a', options: [option('a'), option('b')] }] };
const V2 = { settings: [{ key: 'mode', type: 'dropdown', default: 'c', options: [option('c'), option('d')] }] };

let work: { dir: string; cleanup(): void };
beforeEach(() => (work = tempDir()));
afterEach(() => work.cleanup());

test('setConfig issued while install --force is storing the new version is validated against the new schema, and the stored configuration fits it', async () => {
  const real = SqliteStore.open({ file: path.join(work.dir, 'plughost.db') });
  // The real SQLite store, holding install's turn open just after the new record is written:
  // the moment a configuration validated against the old schema could overwrite it.
  let written: () => void = () => undefined;
  const newRecordWritten = new Promise<void>((resolve) => (written = resolve));
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'putPlugin') {
        return async (record: PluginRecord) => {
          await target.putPlugin(record);
          if (record.version !== '2.0.0') return;
          written();
          await released;
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  const host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }), store });
  try {
    await host.install(await fixtureBundle(work.dir, { id: ID, version: '1.0.0', settingsSchema: V1 }));
    await host.enable(ID);
    const upgrade = host.install(await fixtureBundle(work.dir, { id: ID, version: '2.0.0', settingsSchema: V2 }), { force: true });
    await newRecordWritten;
    // "b" fits 1.0.0, which is still the one the host shows; it does not fit 2.0.0.
    const save = host.setConfig(ID, { mode: 'b' });
    const saved = save.then(() => 'saved', (err: { code?: string }) => err.code);
    await new Promise((r) => setTimeout(r, 200));
    release();
    expect((await upgrade).version).toBe('2.0.0');
    expect(await saved).toBe(Errors.CONFIG_INVALID.code);
    const stored = (await real.getPlugin(ID))!;
    expect(stored.config).toEqual({ mode: 'c' });
    expect(() => validateConfig(V2 as never, stored.config)).not.toThrow();
    expect(await host.getConfig(ID)).toEqual({ mode: 'c' });
  } finally {
    release();
    await host.close();
  }
});
