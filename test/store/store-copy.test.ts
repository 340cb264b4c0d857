/**
 * copyStore from a real SQLite file into a real PostgreSQL database: what is copied and what
 * is not, the refusals, and a failure in each phase (injected, a dropped connection, the
 * server gone, an interrupt) leaving the target empty or saying that it may not be.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Errors, isError } from '../../src/errors';
import type { Manifest } from '../../src/manifest';
import { PostgresStore, SqliteStore } from '../../src/store';
import type { PluginRecord, Store } from '../../src/store';
import { BUNDLE_CHUNK_BYTES } from '../../src/store/store';
import { copyStore, type CopyOptions } from '../../src/store/store-copy';
import { rejected } from '../fixtures/expect-error';
import { tempDir } from '../helpers';
import { describeIfPg, freshDatabase, pgUrl, plughostRows, terminateSessions, type FreshDatabase } from '../helpers/postgres';
import { comparable, readContents } from '../helpers/store-contents';

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Four chunks, so a bundle crosses the wire in several statements of one transaction. */
const BIG = randomBytes(3 * BUNDLE_CHUNK_BYTES + 77);
const SMALL = b('a small bundle');
const UNUSED = b('a bundle no record uses');
const SIGNATURE = randomBytes(64);

function record(id: string, bundle: Buffer, enabled: boolean): PluginRecord {
  return {
    id,
    manifest: { id, name: `Plugin ${id}`, version: '1.0.0' } as Manifest,
    version: '1.0.0',
    enabled,
    state: 'running',
    lastError: 'seen on the old node',
    config: { greeting: 'hi', token: 'secret' },
    bundleSha256: sha256Of(bundle),
    installedAt: 1_700_000_000_001,
    updatedAt: 1_700_000_000_002,
  };
}

/** Calls `before(n)` ahead of the n-th call of `method`; what it throws fails that call. */
function intercept(store: Store, method: keyof Store, before: (call: number) => Promise<void> | void): Store {
  let calls = 0;
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      if (property !== method) return bound;
      return async (...args: unknown[]) => {
        await before(++calls);
        return bound(...args);
      };
    },
  });
}

/** A TCP relay to the test server, so a test can take the server away from a store mid-copy. */
async function relay(): Promise<{ port: number; close(): Promise<void> }> {
  const port = Number(new URL(pgUrl()!).port);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      const closed = new Promise((r) => server.close(r));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

describeIfPg('copyStore into PostgreSQL')('copyStore: SQLite into PostgreSQL', () => {
  let work: ReturnType<typeof tempDir>;
  let source: SqliteStore;
  let db: FreshDatabase;
  let target: PostgresStore;
  const names = (over: Partial<CopyOptions> = {}): CopyOptions => ({ source: 'the test file', target: 'the test database', ...over });
  beforeAll(async () => {
    work = tempDir('pht-copy-');
    const file = path.join(work.dir, 'plughost.db');
    source = SqliteStore.open({ file, sweepIntervalMs: 0 });
    await source.putBundle(sha256Of(BIG), BIG, SIGNATURE);
    await source.putBundle(sha256Of(SMALL), SMALL);
    await source.putBundle(sha256Of(UNUSED), UNUSED);
    await source.putPlugin(record('p-big', BIG, true));
    await source.putPlugin(record('p-small', SMALL, false));
    for (let i = 0; i < 1_203; i++) await source.kvSet('p-big', `key ${String(i).padStart(4, '0')}`, b(`value ${i}`), i % 100 === 0 ? { ttlMs: 600_000 } : {});
    await source.kvSet('p-small', 'nul\u0000key', Buffer.from([0, 1, 255]));
    await source.kvSet('no-record', 'orphan', b('of no plugin'));
    await source.lockAcquire('p-big', 'leader', 600_000);
    const now = await source.clusterNow();
    await source.jobClaim('p-big', 'hourly', Math.floor(now / 3_600_000), 3_600_000, 600_000);
    await source.heartbeat({ nodeId: 'old-node', version: '0.1.0', startedAt: now });
    await source.putObserved({ pluginId: 'p-big', nodeId: 'old-node', state: 'running', lastError: null, pid: 42, restarts: 0, generation: 1 });
    const past = SqliteStore.open({ file, sweepIntervalMs: 0, now: () => Date.now() - 3_600_000 });
    await past.kvSet('p-big', 'expired', b('old'), { ttlMs: 1_000 });
    await past.close();
  }, 60_000);
  afterAll(async () => {
    await source.close();
    work.cleanup();
  });
  beforeEach(async () => {
    db = await freshDatabase();
    target = await PostgresStore.open({ url: db.url, sweepIntervalMs: 0 });
  });
  afterEach(async () => {
    await target.close();
    await db.drop();
  });

  test('copies records, their bundles with signatures and live KV; nothing per node, no locks, tickets, unused bundles or expired values', async () => {
    const summary = await copyStore(source, target, names());
    expect(summary).toEqual({ plugins: 2, enabledPlugins: 1, bundles: 2, bundleBytes: BIG.length + SMALL.length, kv: 1_204, kvWithExpiry: 13 });
    const [from, to] = [await readContents(source), await readContents(target)];
    delete from.bundles[sha256Of(UNUSED)];
    expect(comparable(to)).toEqual(comparable({ ...from, records: from.records.map((r) => ({ ...r, state: 'not_running', lastError: null })) }));
    expect(to.bundles[sha256Of(BIG)].bytes.equals(BIG)).toBe(true);
    expect(to.bundles[sha256Of(BIG)].signature?.equals(SIGNATURE)).toBe(true);
    expect(to.kv['p-big'].some((e) => e.key === 'expired')).toBe(false);
    expect(await plughostRows(db.name)).toEqual({ plugins: 2, kv: 1_204, bundles: 2, bundle_chunks: 5 });
  });

  test('refuses, writing nothing, when a record uses a bundle the source does not have', async () => {
    const lacking = SqliteStore.open({ file: path.join(work.dir, `lacking-${randomBytes(4).toString('hex')}.db`), sweepIntervalMs: 0 });
    try {
      await lacking.putBundle(sha256Of(SMALL), SMALL);
      await lacking.putPlugin(record('has', SMALL, true));
      await lacking.putPlugin(record('lacks', BIG, true));
      const err = await rejected(copyStore(lacking, target, names()));
      expect(isError(err, Errors.MIGRATE_BUNDLES_MISSING)).toBe(true);
      expect(err.message).toContain(`1 plugin(s) have no bundle stored in "the test file": "lacks" (sha256 ${sha256Of(BIG)})`);
      expect(await plughostRows(db.name)).toEqual({});
    } finally {
      await lacking.close();
    }
  });

  test.each([
    ['putBundle', 2, `copying the bundle of plugin "p-small" (sha256 ${sha256Of(SMALL)})`],
    ['kvSet', 700, 'copying the KV values of plugin "p-big"'],
    ['putPlugin', 2, 'copying the record of plugin "p-small"'],
  ] as const)('a failure of %s call %i deletes what was copied and names the step', async (method, nth, step) => {
    const faulty = intercept(target, method, (n) => {
      if (n === nth) throw new Error('injected failure');
    });
    const err = await rejected(copyStore(source, faulty, names()));
    expect(isError(err, Errors.MIGRATE_COPY_FAILED)).toBe(true);
    expect(err.message).toBe(`copying to the test database failed while ${step}: injected failure; ` +
      'what had been copied was removed again, so the target holds no plughost data');
    expect(await plughostRows(db.name)).toEqual({});
  });

  test('a connection dropped in the middle of a bundle: the bundles transaction is gone, the rest deleted, the target empty', async () => {
    const streams = new Proxy<Store>(source, {
      get(t, property) {
        const value = Reflect.get(t, property) as unknown;
        if (property !== 'getBundle') return typeof value === 'function' ? (value as () => unknown).bind(t) : value;
        return async (sha256: string) => {
          const bundle = await t.getBundle(sha256);
          if (!bundle || sha256 !== sha256Of(BIG)) return bundle;
          const chunks = bundle.stream;
          // After the first chunk, end every session of the target: the one writing this bundle among them.
          const cut = async function* () {
            let first = true;
            for await (const chunk of chunks) {
              yield chunk as Buffer;
              if (first) await terminateSessions(db.name);
              first = false;
            }
          };
          return { ...bundle, stream: Readable.from(cut()) };
        };
      },
    });
    const err = await rejected(copyStore(streams, target, names()));
    expect(isError(err, Errors.MIGRATE_COPY_FAILED)).toBe(true);
    expect(err.message).toContain(`while copying the bundle of plugin "p-big" (sha256 ${sha256Of(BIG)})`);
    expect(err.message).toContain('cannot be used right now');
    expect(await plughostRows(db.name)).toEqual({});
  });

  test('the server gone midway: the undo fails too, and the error says the target may hold part of the copy', async () => {
    const link = await relay();
    const u = new URL(db.url);
    u.port = String(link.port);
    const remote = await PostgresStore.open({ url: u.toString(), sweepIntervalMs: 0, connectTimeoutMs: 2_000 });
    try {
      const err = await rejected(copyStore(source, intercept(remote, 'kvSet', (n) => (n === 1 ? link.close() : undefined)), names()));
      expect(isError(err, Errors.MIGRATE_UNDO_FAILED)).toBe(true);
      expect(err.message).toMatch(/^copying to the test database failed while copying the KV values of plugin "p-big": .+; removing the partial copy failed too: /);
      expect(err.message).toContain('the target may hold part of the copy: empty it (a new database, or DROP its plughost_* tables)');
    } finally {
      await remote.close();
    }
    // It does: the bundles went in before the server went away, and a second copy is refused.
    expect(await plughostRows(db.name)).toEqual({ bundles: 2, bundle_chunks: 5 });
    const again = await rejected(copyStore(source, target, names()));
    expect(isError(again, Errors.MIGRATE_TARGET_NOT_EMPTY)).toBe(true);
    expect(again.message).toContain('already holds 2 bundles;');
  });

  test('an interrupt stops the copy before its next step and deletes what was copied', async () => {
    const interrupt = new AbortController();
    const err = await rejected(copyStore(source, intercept(target, 'putBundle', (n) => (n === 2 ? interrupt.abort('SIGINT') : undefined)), names({ signal: interrupt.signal })));
    expect(isError(err, Errors.MIGRATE_COPY_FAILED)).toBe(true);
    expect(err.message).toContain('while copying the KV values of plugin "p-big": the copy was interrupted (SIGINT)');
    expect(await plughostRows(db.name)).toEqual({});
  });
});
