/**
 * Bundles kept in the database: a host whose data dir lost a plugin's folder
 * (or, on PostgreSQL, a host on a fresh data dir) places it again from the
 * stored bundle through the ordinary installer, under its own signature
 * policy; a record whose bundle is gone is reported, never a failed open.
 * Runs on SQLite, and on PostgreSQL when there is a test server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { generateKeyPair, signBundle } from '../../src/bundle';
import { BUNDLE_MARKER } from '../../src/runtime/installer';
import { PluginHost } from '../../src/runtime';
import { SqliteStore, type PluginRecord, type Store } from '../../src/store';
import type { PluginHostOptions } from '../../src/runtime/types';
import { tempDir } from '../helpers';
import { adminQuery, freshDatabase, havePg, type FreshDatabase } from '../helpers/postgres';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });

interface Backend {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** Host options selecting this database for a data dir. */
  options(dataDir: string): Partial<PluginHostOptions>;
  /** SHA-256 of the bundles stored, sorted; `dataDir` is the host's (SQLite keeps its file there). */
  storedBundles(dataDir: string): Promise<string[]>;
  /** Deletes every stored bundle behind the host's back. */
  dropBundles(dataDir: string): Promise<void>;
  /**
   * A store other hosts may share keeps unreferenced bundles for a grace period (another
   * host's install may be about to commit): this makes the stored ones older than that.
   */
  ageBundles?(): Promise<void>;
}

function sqliteDb<T>(dataDir: string, use: (db: Database.Database) => T): T {
  const db = new Database(path.join(dataDir, 'plughost.db'));
  try {
    return use(db);
  } finally {
    db.close();
  }
}

const sqlite: Backend = {
  name: 'SQLite',
  setup: async () => undefined,
  teardown: async () => undefined,
  options: () => ({}),
  storedBundles: async (dataDir) => sqliteDb(dataDir, (db) => db.prepare<[], { sha256: string }>('SELECT sha256 FROM bundles ORDER BY sha256').all().map((r) => r.sha256)),
  dropBundles: async (dataDir) => { sqliteDb(dataDir, (db) => db.exec('DELETE FROM bundles')); },
};

function postgres(): Backend {
  let db: FreshDatabase;
  return {
    name: 'PostgreSQL',
    setup: async () => { db = await freshDatabase(); },
    teardown: async () => db.drop(),
    options: () => ({ database: db.url }),
    storedBundles: async () => (await adminQuery<{ sha256: string }>('SELECT sha256 FROM plughost_bundles ORDER BY sha256', [], db.name)).map((r) => r.sha256),
    dropBundles: async () => { await adminQuery('DELETE FROM plughost_bundles', [], db.name); },
    ageBundles: async () => { await adminQuery('UPDATE plughost_bundles SET stored_at = stored_at - 3600000', [], db.name); },
  };
}

const backends: Backend[] = [sqlite, ...(havePg('stored bundles on PostgreSQL') ? [postgres()] : [])];

describe.each(backends)('stored bundles on $name', (backend) => {
  let work: { dir: string; cleanup(): void };
  let dataDir: string;
  const hosts: PluginHost[] = [];
  const id = 'com.test.stored';

  const open = async (over: Partial<PluginHostOptions> = {}, dir = dataDir): Promise<PluginHost> => {
    const h = await PluginHost.open({ dataDir: dir, logger: silent, ...backend.options(dir), ...over });
    hosts.push(h);
    return h;
  };
  const closeAll = async () => {
    for (const h of hosts.splice(0)) await h.close();
  };
  const pluginFolder = (dir = dataDir) => path.join(dir, 'plugins', id);

  /** Installs and enables the fixture on a first host, then closes it. Returns the bundle's sha256. */
  const installed = async (over: Partial<PluginHostOptions> = {}, bundle?: string): Promise<string> => {
    const h = await open(over);
    const info = await h.install(bundle ?? await fixtureBundle(work.dir, { id }));
    await h.enable(id);
    await closeAll();
    return info.bundleSha256;
  };

  beforeEach(async () => {
    await backend.setup();
    work = tempDir('pht-stored-');
    dataDir = path.join(work.dir, 'data');
  });
  afterEach(async () => {
    await closeAll();
    await backend.teardown();
    work.cleanup();
  });

  test('install stores the bundle; a plugin whose folder was deleted runs again from it', async () => {
    const sha = await installed();
    expect(await backend.storedBundles(dataDir)).toEqual([sha]);
    fs.rmSync(pluginFolder(), { recursive: true });

    const h = await open();
    expect(await h.get(id)).toMatchObject({ enabled: true, state: 'running', lastError: null, bundleSha256: sha });
    expect(fs.readFileSync(path.join(pluginFolder(), BUNDLE_MARKER), 'utf8').trim()).toBe(sha);
    expect((await h.callHook(id, 'Kv', { op: 'set', key: 'k', value: 'v' })).rejected).toBe(false);
  });

  test("a folder of another bundle (its marker differs from the record's) is replaced from the store", async () => {
    const sha = await installed();
    fs.writeFileSync(path.join(pluginFolder(), BUNDLE_MARKER), `${'0'.repeat(64)}\n`);
    fs.rmSync(path.join(pluginFolder(), 'main.js'));

    const h = await open();
    expect(await h.get(id)).toMatchObject({ state: 'running', lastError: null });
    expect(fs.readFileSync(path.join(pluginFolder(), BUNDLE_MARKER), 'utf8').trim()).toBe(sha);
  });

  test('a record whose bundle is missing from the store is failed_to_start naming the sha256; open does not throw', async () => {
    const sha = await installed();
    const other = 'com.test.other';
    const h0 = await open();
    await h0.install(await fixtureBundle(work.dir, { id: other }));
    await h0.enable(other);
    await closeAll();
    fs.rmSync(pluginFolder(), { recursive: true });
    await backend.dropBundles(dataDir);

    const h = await open();
    const info = await h.get(id);
    expect(info).toMatchObject({ enabled: true, state: 'failed_to_start' });
    expect(info.lastError).toContain(sha);
    expect(info.lastError).toContain('the database has no bundle with this sha256');
    // The other plugin kept its folder and is unaffected.
    expect(await h.get(other)).toMatchObject({ state: 'running' });
    // Reinstalling the bundle brings it back.
    await h.install(await fixtureBundle(work.dir, { id }), { force: true });
    expect(await h.get(id)).toMatchObject({ enabled: true, state: 'running' });
  });

  test('requireSignature: the stored signature is checked when placing; an unsigned stored bundle is refused', async () => {
    const keys = generateKeyPair();
    const trust = { requireSignature: true, trustedKeys: [keys.publicKey] };
    const bundle = await fixtureBundle(work.dir, { id });
    fs.writeFileSync(`${bundle}.sig`, signBundle(bundle, keys.privateKey));
    await installed(trust, bundle);
    fs.rmSync(pluginFolder(), { recursive: true });
    expect(await (await open(trust)).get(id)).toMatchObject({ state: 'running' });
    await closeAll();

    // Installed unsigned by a host that did not require signatures, placed by one that does.
    const unsigned = await fixtureBundle(work.dir, { id, version: '2.0.0' });
    const h1 = await open();
    await h1.install(unsigned, { force: true });
    await closeAll();
    fs.rmSync(pluginFolder(), { recursive: true });
    const info = await (await open(trust)).get(id);
    expect(info.state).toBe('failed_to_start');
    expect(info.lastError).toContain(info.bundleSha256);
    expect(info.lastError).toMatch(/unsigned|signature/i);
  });

  test('GC: an upgrade drops the replaced bundle, a remove drops the last one', async () => {
    const v1 = await installed();
    const h = await open();
    /** What is stored once the grace period (on a shared store) is over and the host collected. */
    const collected = async () => {
      if (backend.ageBundles) {
        await backend.ageBundles();
        await h.syncNow();
      }
      return backend.storedBundles(dataDir);
    };
    const v2 = (await h.install(await fixtureBundle(work.dir, { id, version: '2.0.0' }), { force: true })).bundleSha256;
    expect(v2).not.toBe(v1);
    if (backend.ageBundles) expect(await backend.storedBundles(dataDir)).toEqual([v1, v2].sort());
    expect(await collected()).toEqual([v2]);
    await h.remove(id);
    expect(await collected()).toEqual([]);
  });

  if (backend.name === 'SQLite') {
    test("GC during another plugin's install keeps that install's bundle, stored but not yet recorded", async () => {
      const h0 = await open();
      await h0.install(await fixtureBundle(work.dir, { id: 'com.test.gone' }));
      await closeAll();

      // The install of `id` is held just before its record is committed, while another plugin is removed.
      let release!: () => void;
      let reached!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      const atRecord = new Promise<void>((r) => { reached = r; });
      const real = SqliteStore.open({ file: path.join(dataDir, 'plughost.db') });
      const held: Store = Object.assign(Object.create(real) as Store, {
        putPlugin: async (r: PluginRecord) => {
          if (r.id === id) {
            reached();
            await gate;
          }
          return real.putPlugin(r);
        },
      });
      const h = await open({ store: held });
      const installing = h.install(await fixtureBundle(work.dir, { id }));
      await atRecord;
      await h.remove('com.test.gone');
      release();
      const sha = (await installing).bundleSha256;
      expect(await backend.storedBundles(dataDir)).toEqual([sha]);
      await closeAll();

      fs.rmSync(pluginFolder(), { recursive: true });
      expect(await (await open()).get(id)).toMatchObject({ state: 'not_running', lastError: null });
      expect(fs.existsSync(path.join(pluginFolder(), BUNDLE_MARKER))).toBe(true);
    });
  }

  if (backend.name === 'PostgreSQL') {
    test('a host on a fresh data dir against the same database brings the plugin up', async () => {
      const sha = await installed();
      const fresh = path.join(work.dir, 'second-node');
      const h = await open({}, fresh);
      expect(await h.get(id)).toMatchObject({ enabled: true, state: 'running', bundleSha256: sha });
      expect(fs.readFileSync(path.join(pluginFolder(fresh), BUNDLE_MARKER), 'utf8').trim()).toBe(sha);
      expect((await h.callHook(id, 'Kv', { op: 'get', key: 'absent' })).rejected).toBe(false);
    });
  }
});
