/**
 * Issue 14's failures that need no convergence, on real `plughost serve`
 * processes sharing PostgreSQL (test/helpers/cluster.ts), driven through the
 * routes of test/fixtures/sdk/cluster-http-plugin.js. The plugin is installed
 * through node 1 before the other nodes start, so each loads it from the
 * database when it opens: reaching nodes that already run is convergence's job.
 */
import { Cluster, clusterTest, waitFor, type ClusterNode } from '../helpers/cluster';
import { waitGone } from '../helpers';
import { describeIfPg, freshDatabase, type FreshDatabase } from '../helpers/postgres';
import { describeIfPrivatePg, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres';

const ID = 'com.test.cluster-http';
const route = (rest: string) => `/plugins/${ID}/${rest}`;

interface WhoAmI {
  node: string;
  pid: number;
  jobEveryMs: number;
}

/** The cluster with the plugin installed and enabled through node 1, then every other node started. */
async function clusterWithPlugin(database: string, nodes: number, config?: Record<string, unknown>): Promise<Cluster> {
  const cluster = await Cluster.start({ database, nodes, start: 1 });
  const [first, ...others] = cluster.nodes;
  await cluster.install(first, await cluster.pluginBundle(ID), { enable: true });
  if (config) await cluster.ok(first, 'PUT', `/api/v1/plugins/${ID}/config`, config);
  for (const node of others) await cluster.start(node);
  return cluster;
}

function whoami(cluster: Cluster, node: ClusterNode): Promise<WhoAmI> {
  return cluster.ok<WhoAmI>(node, 'GET', route('whoami'));
}

describeIfPg('cluster failures')('cluster failures (real serve processes, one database)', () => {
  let db: FreshDatabase;
  beforeEach(async () => {
    db = await freshDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  clusterTest('a lock held by a node killed with SIGKILL is taken by another node after its TTL; the old fencing token is refused through either node', 180_000, async () => {
    const cluster = await clusterWithPlugin(db.url, 2);
    const [one, two] = cluster.nodes;
    expect((await whoami(cluster, one)).node).toBe('node-1');
    expect((await whoami(cluster, two)).node).toBe('node-2');

    const held = await cluster.ok(one, 'POST', route('lock/leader?ttlMs=2000'));
    expect(held).toEqual({ acquired: true, token: expect.any(Number), expiresAt: expect.any(Number) });
    expect(await cluster.ok(two, 'POST', route('lock/leader?ttlMs=2000'))).toEqual({ acquired: false });

    const oldPid = (await whoami(cluster, one)).pid;
    await cluster.kill(one);
    // Its plugin notices it lost its host and exits; the lease it held is left to expire.
    expect(await waitGone(oldPid, 15_000)).toBe(true);
    const taken = await cluster.ok(two, 'POST', route('lock/leader?ttlMs=60000&waitMs=30000'));
    expect(taken).toEqual({ acquired: true, token: expect.any(Number), expiresAt: expect.any(Number) });
    expect(taken.token).toBeGreaterThan(held.token);
    // Granted no earlier than the first lease's end (both on the database's clock; the dead holder's refreshes only moved it later).
    expect(taken.expiresAt - 60_000).toBeGreaterThanOrEqual(held.expiresAt);

    const stale = `token ${held.token} is stale (the lock has since been granted with token ${taken.token})`;
    const refused = { status: 409, body: { error: { code: 'LOCK_TOKEN_STALE', message: expect.stringContaining(stale) } } };
    expect(await cluster.request(two, 'POST', route(`kv-fenced/report?lock=leader&token=${held.token}`), { by: 'node-1' })).toEqual(refused);
    expect(await cluster.ok(two, 'POST', route(`kv-fenced/report?lock=leader&token=${taken.token}`), { by: 'node-2' })).toEqual({ ok: true });

    // Node 1 comes back (its plugin from the database) and presents the token its killed plugin held.
    await cluster.start(one);
    expect((await whoami(cluster, one)).pid).not.toBe(oldPid);
    expect(await cluster.request(one, 'POST', route(`kv-fenced/report?lock=leader&token=${held.token}`), { by: 'node-1 again' })).toEqual(refused);
    expect(await cluster.ok(one, 'GET', route('kv/report'))).toEqual({ found: true, value: { by: 'node-2' } });
    expect(await cluster.ok(one, 'POST', route('lock/leader?ttlMs=2000'))).toEqual({ acquired: false });
  });

  clusterTest('a job scheduled on 3 nodes runs once per period: 10 periods, 10 runs, no second claim', 240_000, async () => {
    const everyMs = 1_000;
    const cluster = await clusterWithPlugin(db.url, 3, { job_every_ms: everyMs });
    const [one] = cluster.nodes;
    for (const node of cluster.nodes) {
      await waitFor(async () => (await whoami(cluster, node)).jobEveryMs === everyMs, { timeoutMs: 30_000, what: `${node.id}'s plugin to schedule the job` });
    }
    const entries = async (prefix: string) => (await cluster.ok<{ entries: Record<string, unknown> }>(one, 'GET', route(`kv?prefix=${prefix}`))).entries;
    const periods = async () => Object.keys(await entries('runs/')).map((key) => Number(key.slice('runs/'.length)));
    // Every node runs the job from here on: the ten periods after the last one that ran.
    const first = Math.max(...await waitFor(async () => { const p = await periods(); return p.length > 0 && p; }, { timeoutMs: 30_000, what: 'a first run' })) + 1;
    const last = first + 9;
    // Once two periods later ran, no claim of `last` can still succeed: tickets are claimable one period either side.
    await waitFor(async () => (await periods()).includes(last + 2), { timeoutMs: 60_000, what: `period ${last + 2} to run` });

    const runs = await entries('runs/');
    const window = Array.from({ length: 10 }, (_, i) => first + i);
    expect(window.filter((p) => runs[`runs/${p}`] === undefined)).toEqual([]);
    expect(window.map((p) => runs[`runs/${p}`])).toEqual(window.map(() => ({ node: expect.stringMatching(/^node-[123]$/), pid: expect.any(Number) })));
    // A second run of any period would have found its runs/<period> taken and written a conflict.
    expect(await entries('conflicts/')).toEqual({});
  });
});

describeIfPrivatePg('cluster failures with a database restart')('cluster failures (real serve processes, a database server of their own)', () => {
  let pg: PrivatePostgres;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.close();
  });

  clusterTest('PostgreSQL restarted under running nodes: plugins keep running, KV fails with UNAVAILABLE, then resumes with nothing half-written; the heartbeat resumes', 240_000, async ({ report }) => {
    report('PostgreSQL server log', () => pg.log());
    const cluster = await clusterWithPlugin(pg.url, 2);
    const [one, two] = cluster.nodes;
    const pids = [(await whoami(cluster, one)).pid, (await whoami(cluster, two)).pid];

    // Whole-value writes, one after another, while the server goes down: the first that fails was cut off or refused.
    const fill = (version: number) => `${version}:`.padEnd(200_000, String.fromCharCode(97 + (version % 26)));
    let acked = 0;
    let cutOff = 0;
    const writer = (async () => {
      for (let version = 1; version < 100_000; version++) {
        const res = await cluster.request(one, 'PUT', route('kv/doc'), { version, fill: fill(version) });
        if (res.status !== 200) {
          cutOff = version;
          return res;
        }
        acked = version;
      }
      throw new Error('the writer never saw the database go down');
    })();
    await waitFor(() => acked >= 3, { timeoutMs: 30_000, what: 'three acknowledged writes' });
    await pg.stop('immediate');
    const failedWrite = await writer;
    expect(failedWrite).toEqual({ status: 503, body: { error: { code: 'UNAVAILABLE', message: expect.stringContaining('cannot be used right now') } } });

    for (const [i, node] of cluster.nodes.entries()) {
      // Bounded by the request timeout: an answer, not a hang.
      const read = await cluster.request(node, 'GET', route('kv/doc'));
      expect(read).toEqual({ status: 503, body: { error: { code: 'UNAVAILABLE', message: expect.stringContaining(`the database ${pg.url}`) } } });
      expect((await whoami(cluster, node)).pid).toBe(pids[i]);
      expect(await cluster.request(node, 'GET', '/api/v1/cluster')).toMatchObject({ status: 503, body: { error: { code: 'PLUGHOST_ERR_STORE_UNAVAILABLE' } } });
    }

    await pg.start();
    const restartedAt = Date.now();
    const doc = await waitFor(async () => {
      const res = await cluster.request(two, 'GET', route('kv/doc'));
      return res.status === 200 && (res.body as { value: { version: number; fill: string } }).value;
    }, { timeoutMs: 60_000, what: 'KV to answer again after the restart' });
    // The acknowledged write, or the one cut off if it committed before the crash: whole either way.
    expect([acked, cutOff]).toContain(doc.version);
    expect(doc.fill === fill(doc.version)).toBe(true);
    expect(await cluster.ok(two, 'PUT', route('kv/doc'), { version: -1, fill: 'after' })).toEqual({ ok: true });
    expect(await cluster.ok(one, 'GET', route('kv/doc'))).toEqual({ found: true, value: { version: -1, fill: 'after' } });

    for (const [i, node] of cluster.nodes.entries()) {
      expect((await whoami(cluster, node)).pid).toBe(pids[i]);
      // A heartbeat written since the database came back.
      await waitFor(async () => {
        const res = await cluster.request<{ nodes: Array<{ nodeId: string; heartbeatAgeMs: number }> }>(node, 'GET', '/api/v1/cluster');
        const own = res.status === 200 && res.body.nodes.find((n) => n.nodeId === node.id);
        return own && own.heartbeatAgeMs < Date.now() - restartedAt;
      }, { timeoutMs: 60_000, what: `${node.id}'s heartbeat after the restart` });
    }
    const detail = await cluster.ok(one, 'GET', `/api/v1/plugins/${ID}`);
    expect(detail.nodes).toEqual(expect.arrayContaining(cluster.nodes.map((n) => expect.objectContaining({ nodeId: n.id, state: 'running' }))));
  });
});
