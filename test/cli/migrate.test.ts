/**
 * `plughost migrate --to postgres://…` on a real data dir (a real SQLite file written by a
 * real PluginHost) into a real PostgreSQL database, run as the real command; then the
 * documented next step, `plughost serve --database <url>`, serves what was copied.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { formatBytes } from '../../src/cli/progress';
import { PluginHost } from '../../src/runtime';
import { PostgresStore, SqliteStore } from '../../src/store';
import { closedPort, tempDir, watchStdout } from '../helpers';
import { adminQuery, describeIfPg, freshDatabase, plughostRows, urlOf, type FreshDatabase } from '../helpers/postgres';
import { comparable, readContents, type Contents } from '../helpers/store-contents';
import { fixtureBundle } from '../runtime/fixtures';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'plughost.js');
const TOKEN = 'migrate-test-token-0123456789abcdef';
const silent = pino({ level: 'silent' });
const ENABLED = 'com.test.mig-a';
const DISABLED = 'com.test.mig-b';
/** Trust authentication ignores it, so it can stand in a URL to show it never reaches the output. */
const PASSWORD = 'hunter2-secret';
const TTL_MS = 600_000;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function plughost(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The database's URL with a password in it. */
function withPassword(url: string): string {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
}

/**
 * A data dir as a single-node install leaves it: two plugins (one enabled, configured with a
 * secret), KV with a U+0000 key, a value with a TTL, a binary value and an expired one.
 */
async function buildInstall(work: string): Promise<string> {
  const dataDir = path.join(work, 'sqlite-data');
  const host = await PluginHost.open({ dataDir, logger: silent });
  try {
    await host.install(await fixtureBundle(work, { id: ENABLED }));
    await host.install(await fixtureBundle(work, { id: DISABLED }));
    await host.enable(ENABLED);
    await host.setConfig(ENABLED, { greeting: 'moved', token: 's3cret', count: 7 });
    await host.callHook(ENABLED, 'Kv', { op: 'set', key: 'k\u0000nul', value: 'v1' });
    await host.callHook(ENABLED, 'Kv', { op: 'set', key: 'ttl', value: 'soon', ttlMs: TTL_MS });
  } finally {
    await host.close();
  }
  const file = path.join(dataDir, 'plughost.db');
  // What the plugin API cannot write: a value that expired an hour ago (a clock an hour behind), and binary bytes.
  const past = SqliteStore.open({ file, sweepIntervalMs: 0, now: () => Date.now() - 3_600_000 });
  await past.kvSet(ENABLED, 'expired', Buffer.from('old'), { ttlMs: 1_000 });
  await past.close();
  const store = SqliteStore.open({ file, sweepIntervalMs: 0 });
  await store.kvSet(DISABLED, 'bin', Buffer.from([0x00, 0xff, 0x00, 0xc3, 0x28]));
  await store.close();
  return dataDir;
}

async function contentsOf(open: () => Promise<SqliteStore | PostgresStore>): Promise<Contents> {
  const store = await open();
  try {
    return await readContents(store);
  } finally {
    await store.close();
  }
}

describeIfPg('plughost migrate')('plughost migrate', () => {
  let work: ReturnType<typeof tempDir>;
  let dataDir: string;
  let source: Contents;
  /** When the source's times to live were read (or a little before). */
  let sourceReadAt: number;
  const databases: FreshDatabase[] = [];

  const database = async (): Promise<FreshDatabase> => {
    const db = await freshDatabase();
    databases.push(db);
    return db;
  };
  /** A copy of the install's data dir, for a test that damages or locks it. */
  const copyOfInstall = (name: string): string => {
    const dir = path.join(work.dir, name);
    fs.cpSync(dataDir, dir, { recursive: true });
    return dir;
  };

  beforeAll(async () => {
    work = tempDir('pht-migrate-');
    dataDir = await buildInstall(work.dir);
    sourceReadAt = Date.now();
    source = await contentsOf(async () => SqliteStore.open({ file: path.join(dataDir, 'plughost.db'), sweepIntervalMs: 0 }));
  }, 120_000);
  afterAll(async () => {
    for (const db of databases) await db.drop();
    work.cleanup();
  });

  test('copies every record, bundle and live KV value byte for byte; serve --database then runs the plugins', async () => {
    expect(source.records.map((r) => r.id)).toEqual([ENABLED, DISABLED]);
    expect(source.kv[ENABLED].map((e) => e.key)).toEqual(['k\u0000nul', 'ttl']);
    const db = await database();
    const run = await plughost(['migrate', '--to', withPassword(db.url), '--data-dir', dataDir]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const sizes = Object.values(source.bundles).reduce((n, b) => n + b.bytes.length, 0);
    expect(run.stdout).toContain(`copied ${path.join(dataDir, 'plughost.db')} to ${db.url.replace('postgres@', 'postgres:***@')}`);
    expect(run.stdout).toMatch(/plugins: +2 \(1 enabled\)/);
    expect(run.stdout).toMatch(new RegExp(`bundles: +2 \\(${formatBytes(sizes)}\\)`));
    expect(run.stdout).toMatch(/KV values: +3 \(1 with a time to live\)/);
    expect(run.stdout).toContain('not copied: cluster locks and job tickets');
    expect(run.stdout).toContain('plughost serve --database postgres://postgres:***@');
    expect(run.stdout).not.toContain(PASSWORD);

    const copied = await contentsOf(() => PostgresStore.open({ url: db.url, sweepIntervalMs: 0 }));
    const elapsed = Date.now() - sourceReadAt;
    expect(comparable(copied)).toEqual(comparable({ ...source, records: source.records.map((r) => ({ ...r, state: 'not_running', lastError: null, generation: 1 })) }));
    for (const [sha, b] of Object.entries(source.bundles)) expect(copied.bundles[sha].bytes.equals(b.bytes)).toBe(true);
    expect(copied.records.find((r) => r.id === ENABLED)).toMatchObject({ enabled: true, config: { greeting: 'moved', token: 's3cret', count: 7 } });
    // The value keeps the life it had left: no more, and less only by the time the copy took.
    const [srcTtl, copyTtl] = [source, copied].map((c) => c.kv[ENABLED].find((e) => e.key === 'ttl')!.ttlMs!);
    expect(copyTtl).toBeLessThanOrEqual(srcTtl);
    expect(copyTtl).toBeGreaterThanOrEqual(srcTtl - elapsed - 1);
    // Not the expired value; no nodes, observed states, locks or job tickets.
    expect(await plughostRows(db.name)).toEqual({ plugins: 2, kv: 3, bundles: 2, bundle_chunks: 2 });

    // The next step the command prints: a node on a new, empty data dir serves the plugins from the database.
    const serve = spawn(process.execPath, [BIN, 'serve', '--database', db.url, '--data-dir', path.join(work.dir, 'node-1'), '--port', '0'], {
      env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN },
    });
    try {
      const output = watchStdout(serve);
      const exited = once(serve, 'exit');
      const url = (await output.waitFor(/listening on (\S+)/, 'serve --database did not start'))[1];
      const get = async (p: string) => (await fetch(`${url}/api/v1${p}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
      const listed = (await get('/plugins')) as Array<{ id: string; enabled: boolean; state: string }>;
      expect(listed.map(({ id, enabled, state }) => ({ id, enabled, state }))).toEqual([
        { id: ENABLED, enabled: true, state: 'running' },
        { id: DISABLED, enabled: false, state: 'not_running' },
      ]);
      expect(await get(`/plugins/${ENABLED}/config`)).toMatchObject({ greeting: 'moved', count: 7 });
      serve.kill('SIGTERM');
      await exited;
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    }

    // The running plugin reads its KV and its secret through the API, on another new node.
    const host = await PluginHost.open({ dataDir: path.join(work.dir, 'node-2'), database: db.url, logger: silent });
    try {
      expect(await host.get(ENABLED)).toMatchObject({ state: 'running' });
      expect((await host.callHook(ENABLED, 'Kv', { op: 'get', key: 'k\u0000nul' })).payload).toEqual({ found: true, value: 'v1' });
      expect((await host.callHook(ENABLED, 'Kv', { op: 'get', key: 'ttl' })).payload).toEqual({ found: true, value: 'soon' });
      expect((await host.callHook(ENABLED, 'Kv', { op: 'get', key: 'expired' })).payload).toEqual({ found: false, value: null });
      expect((await host.callHook(ENABLED, 'Config', {})).payload).toMatchObject({ token: 's3cret' });
    } finally {
      await host.close();
    }
  }, 180_000);

  test('--json prints the same summary as JSON', async () => {
    const db = await database();
    const run = await plughost(['migrate', '--to', db.url, '--from', path.join(dataDir, 'plughost.db'), '--json']);
    expect(run.status).toBe(0);
    const sizes = Object.values(source.bundles).reduce((n, b) => n + b.bytes.length, 0);
    expect(JSON.parse(run.stdout)).toEqual({
      from: path.join(dataDir, 'plughost.db'),
      to: db.url,
      plugins: 2,
      enabledPlugins: 1,
      bundles: 2,
      bundleBytes: sizes,
      kv: 3,
      kvWithExpiry: 1,
      next: `plughost serve --database ${db.url}`,
    });
  });

  test('refuses a target that holds plughost data, naming it without its password and what it holds; nothing changes', async () => {
    const db = await database();
    expect((await plughost(['migrate', '--to', db.url, '--data-dir', dataDir])).status).toBe(0);
    const before = await plughostRows(db.name);
    const records = await adminQuery('SELECT id, updated_at FROM plughost_plugins ORDER BY id', [], db.name);
    const run = await plughost(['migrate', '--to', withPassword(db.url), '--data-dir', dataDir]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('already holds 2 plugin records, 3 KV values and 2 bundles');
    expect(run.stderr).toContain('postgres://postgres:***@');
    expect(run.stderr).toContain('nothing was copied');
    expect(run.stderr + run.stdout).not.toContain(PASSWORD);
    expect(await plughostRows(db.name)).toEqual(before);
    expect(await adminQuery('SELECT id, updated_at FROM plughost_plugins ORDER BY id', [], db.name)).toEqual(records);

    // One KV value alone is enough to refuse.
    const other = await database();
    const store = await PostgresStore.open({ url: other.url, sweepIntervalMs: 0 });
    await store.kvSet('someone', 'k', Buffer.from('v'));
    await store.close();
    const refused = await plughost(['migrate', '--to', other.url, '--data-dir', dataDir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('already holds 1 KV value;');
  });

  test('refuses while a host runs on the data dir; the target is not touched', async () => {
    const dir = copyOfInstall('busy-data');
    const db = await database();
    const serve = spawn(process.execPath, [BIN, 'serve', '--data-dir', dir, '--port', '0'], { env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN } });
    try {
      const exited = once(serve, 'exit');
      await watchStdout(serve).waitFor(/listening on (\S+)/, 'serve did not start');
      const run = await plughost(['migrate', '--to', db.url, '--data-dir', dir]);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`the SQLite database ${JSON.stringify(path.join(dir, 'plughost.db'))} is open in another process`);
      expect(await plughostRows(db.name)).toBeNull();
      serve.kill('SIGTERM');
      await exited;
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    }
    // Stopped, the same data dir migrates.
    expect((await plughost(['migrate', '--to', db.url, '--data-dir', dir])).status).toBe(0);
  }, 120_000);

  test('a bad URL is a usage error; an unreachable target fails clearly, without its password; a missing source is named', async () => {
    const bad = await plughost(['migrate', '--to', 'mysql://root:pw@localhost/x', '--data-dir', dataDir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('expected a postgres:// or postgresql:// URL');
    expect(bad.stderr).not.toContain(':pw@');
    expect((await plughost(['migrate', '--data-dir', dataDir])).stderr).toContain('--to is required');

    const port = await closedPort();
    const unreachable = await plughost(['migrate', '--to', `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/nowhere`, '--data-dir', dataDir]);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toContain(`the database postgres://postgres:***@127.0.0.1:${port}/nowhere cannot be used right now`);
    expect(unreachable.stderr).toContain('ECONNREFUSED');
    expect(unreachable.stderr).not.toContain(PASSWORD);

    const missing = await plughost(['migrate', '--to', urlOf('postgres'), '--data-dir', path.join(work.dir, 'no-such-dir')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`there is no SQLite database at ${JSON.stringify(path.join(work.dir, 'no-such-dir', 'plughost.db'))}`);
    expect(fs.existsSync(path.join(work.dir, 'no-such-dir'))).toBe(false);
  });

  test('a corrupt bundle midway: the bundle copied before it is deleted again, the target is empty and the error says what failed', async () => {
    const dir = copyOfInstall('corrupt-data');
    // Records, and so bundles, are copied in id order: the second plugin's bundle fails after the first one's is in.
    const sha = source.records.find((r) => r.id === DISABLED)!.bundleSha256;
    const file = new Database(path.join(dir, 'plughost.db'));
    file.prepare('UPDATE bundle_chunks SET data = ? WHERE sha256 = ? AND seq = 0').run(Buffer.from('not the bundle'), sha);
    file.close();
    const db = await database();
    const run = await plughost(['migrate', '--to', db.url, '--data-dir', dir]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`failed while copying the bundle of plugin "${DISABLED}" (sha256 ${sha})`);
    expect(run.stderr).toContain(`the stored bundle sha256 ${sha} is corrupt`);
    expect(run.stderr).toContain('what had been copied was removed again');
    expect(await plughostRows(db.name)).toEqual({});
  });
});
