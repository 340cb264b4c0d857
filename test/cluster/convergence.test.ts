/**
 * Convergence across real `plughost serve` processes (issue 14, points 4, 6
 * and 8): a change made through one node reaches the nodes that are already
 * running, events reach subscribers on every node once, and each node's event
 * feed shows every node's state changes.
 *
 * Written against the contract before convergence landed, so these fail until
 * it does: serve accepts `--reconcile-interval <ms>` (default 5000); the
 * LISTEN connection's application_name is `plughost-listen`; the feed's
 * `state` events carry the `nodeId` of the node whose plugin changed state.
 * Unless a test says otherwise, nodes poll only every ten minutes, so a change
 * that arrives within the 30 s bound came by NOTIFY, not by the poll.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, CLUSTER_TOKEN, clusterTest, waitFor, type ClusterNode } from '../helpers/cluster';
import { tempDir } from '../helpers';
import { adminQuery, describeIfPg, freshDatabase, type FreshDatabase } from '../helpers/postgres';

const ID = 'com.test.converge';
const SUBSCRIBER = 'com.test.converge-subscriber';
/** How long a change may take to reach every node. */
const CONVERGE_MS = 30_000;
const NOTIFY_ONLY = ['--reconcile-interval', '600000'];

interface WhoAmI {
  node: string;
  pid: number;
  config: Record<string, unknown>;
}

interface StateEvent {
  pluginId: string;
  nodeId?: string;
  state: string;
}

interface Received {
  topic: string;
  source: string;
  bytes: number;
  nonce: string;
}

const route = (id: string, rest: string) => `/plugins/${id}/${rest}`;

/** Polls until every node's `GET whoami` of plugin `id` answers `status`; returns the answers. */
async function everyNodeAnswers(cluster: Cluster, id: string, status: number): Promise<WhoAmI[]> {
  return Promise.all(cluster.nodes.map((node) => waitFor(async () => {
    const res = await cluster.request<WhoAmI>(node, 'GET', route(id, 'whoami'));
    if (res.status !== status) throw new Error(`GET whoami answered ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }, { timeoutMs: CONVERGE_MS, what: `${id} to answer ${status} on ${node.id}` })));
}

async function installedThrough(cluster: Cluster, node: ClusterNode, id: string): Promise<void> {
  await cluster.install(node, await cluster.pluginBundle(id), { enable: true });
}

describeIfPg('cluster convergence')('cluster convergence (real serve processes, one database)', () => {
  let db: FreshDatabase;
  beforeEach(async () => {
    db = await freshDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  clusterTest('install, configure, disable, enable and remove through any node reach every running node', 300_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 3, args: NOTIFY_ONLY });
    const [a, b, c] = cluster.nodes;

    await installedThrough(cluster, a, ID);
    const started = await everyNodeAnswers(cluster, ID, 200);
    expect(started.map((w) => w.node)).toEqual(['node-1', 'node-2', 'node-3']);
    const detail = await cluster.ok(c, 'GET', `/api/v1/plugins/${ID}`);
    expect(detail.nodes).toEqual(expect.arrayContaining(cluster.nodes.map((n) => expect.objectContaining({ nodeId: n.id, state: 'running' }))));

    // Configured through B: A's plugin, still the same process, is told (OnConfigurationChange).
    await cluster.ok(b, 'PUT', `/api/v1/plugins/${ID}/config`, { label: 'set through node-2' });
    await waitFor(async () => {
      const who = await cluster.ok<WhoAmI>(a, 'GET', route(ID, 'whoami'));
      return who.config.label === 'set through node-2' && who;
    }, { timeoutMs: CONVERGE_MS, what: "node-1's plugin to see the configuration set through node-2" });
    expect((await cluster.ok<WhoAmI>(a, 'GET', route(ID, 'whoami'))).pid).toBe(started[0].pid);
    expect(await cluster.ok(c, 'GET', `/api/v1/plugins/${ID}/config`)).toMatchObject({ label: 'set through node-2' });

    await cluster.ok(c, 'POST', `/api/v1/plugins/${ID}/disable`);
    await everyNodeAnswers(cluster, ID, 503);
    await waitFor(() => cluster.nodes.every((n) => cluster.pluginPids(n).length === 0), { timeoutMs: CONVERGE_MS, what: 'every node to stop the disabled plugin' });

    await cluster.ok(b, 'POST', `/api/v1/plugins/${ID}/enable`);
    const again = await everyNodeAnswers(cluster, ID, 200);
    expect(again.map((w) => w.config.label)).toEqual(cluster.nodes.map(() => 'set through node-2'));

    await cluster.ok(a, 'DELETE', `/api/v1/plugins/${ID}`, undefined, 204);
    await everyNodeAnswers(cluster, ID, 404);
    for (const node of cluster.nodes) expect((await cluster.request(node, 'GET', `/api/v1/plugins/${ID}`)).status).toBe(404);
    await waitFor(() => cluster.nodes.every((n) => cluster.pluginPids(n).length === 0), { timeoutMs: CONVERGE_MS, what: 'no plugin process left on any node after the remove' });
  });

  clusterTest('an event a plugin publishes on one node reaches the subscriber on every node exactly once, a 64 KiB payload included', 300_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 3, args: NOTIFY_ONLY });
    const [a, b] = cluster.nodes;
    await installedThrough(cluster, a, ID);
    await installedThrough(cluster, b, SUBSCRIBER);
    await everyNodeAnswers(cluster, ID, 200);
    await everyNodeAnswers(cluster, SUBSCRIBER, 200);

    const big = 'x'.repeat(64 * 1024);
    await cluster.ok(a, 'POST', route(ID, 'publish/cluster.small'), { nonce: 'small' });
    await cluster.ok(a, 'POST', route(ID, 'publish/cluster.big'), { nonce: 'big', big });
    // Published last: once it has arrived everywhere, a duplicate of the others would have arrived too.
    await cluster.ok(a, 'POST', route(ID, 'publish/cluster.last'), { nonce: 'last' });
    const received = await Promise.all(cluster.nodes.map((node) => waitFor(async () => {
      const { events } = await cluster.ok<{ events: Received[] }>(node, 'GET', route(SUBSCRIBER, 'events'));
      return events.some((e) => e.nonce === 'last') && events;
    }, { timeoutMs: CONVERGE_MS, what: `the last event to reach the subscriber on ${node.id}` })));
    for (const events of received) {
      expect(events.map((e) => e.nonce).sort()).toEqual(['big', 'last', 'small']);
      expect(events.find((e) => e.nonce === 'big')).toMatchObject({ topic: 'cluster.big', source: ID, bytes: expect.any(Number) });
      expect(events.find((e) => e.nonce === 'big')!.bytes).toBeGreaterThan(64 * 1024);
    }
    // The publisher is not its own subscriber, on any node.
    for (const node of cluster.nodes) expect((await cluster.ok<{ events: Received[] }>(node, 'GET', route(ID, 'events'))).events).toEqual([]);
  });

  clusterTest("a node's event feed shows another node's state changes, with that node's id", 180_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 2, args: NOTIFY_ONLY });
    const [a, b] = cluster.nodes;
    await installedThrough(cluster, a, ID);
    await everyNodeAnswers(cluster, ID, 200);

    const feed = await cluster.feed(b);
    await cluster.ok(a, 'POST', `/api/v1/plugins/${ID}/disable`);
    const stateOf = (nodeId: string) => feed.events.find((e) => e.event === 'state' && (e.data as StateEvent).nodeId === nodeId && (e.data as StateEvent).pluginId === ID);
    const fromA = await waitFor(() => stateOf('node-1'), { timeoutMs: CONVERGE_MS, what: "node-2's feed to show node-1's plugin changing state" });
    expect(fromA.data).toMatchObject({ pluginId: ID, nodeId: 'node-1', state: expect.stringMatching(/^(stopping|not_running)$/) });
    await waitFor(() => stateOf('node-2'), { timeoutMs: CONVERGE_MS, what: "node-2's feed to show its own plugin changing state" });
  });

  clusterTest('a node killed with SIGKILL right after an install elsewhere comes back and converges', 240_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 2, args: NOTIFY_ONLY });
    const [a, b] = cluster.nodes;
    await installedThrough(cluster, a, ID);
    await cluster.kill(b);
    await cluster.start(b);
    const [, onB] = await everyNodeAnswers(cluster, ID, 200);
    expect(onB.node).toBe('node-2');
    // Its convergence runs after the restart too: a later change reaches its running plugin.
    await cluster.ok(a, 'PUT', `/api/v1/plugins/${ID}/config`, { label: 'after the restart' });
    await waitFor(async () => (await cluster.ok<WhoAmI>(b, 'GET', route(ID, 'whoami'))).config.label === 'after the restart',
      { timeoutMs: CONVERGE_MS, what: "node-2's plugin to see a configuration set after its restart" });
    expect(cluster.pluginPids(b)).toEqual([onB.pid]);
  });

  clusterTest('two nodes started together with one provisioning file: it is applied once, and both run what it declares', 240_000, async () => {
    const work = tempDir();
    try {
      const file = path.join(work.dir, 'plughost.yaml');
      // Written before any node starts: the nodes read it when they do.
      const cluster = await Cluster.start({ database: db.url, nodes: 2, start: 0, args: [...NOTIFY_ONLY, '--config', file] });
      fs.writeFileSync(file, [
        'plugins:',
        `  - path: ${JSON.stringify(await cluster.pluginBundle(ID))}`,
        '    enabled: true',
        '    settings: { label: provisioned }',
      ].join('\n'));
      await Promise.all(cluster.nodes.map((node) => cluster.start(node)));
      const reports = cluster.nodes.map((node) => node.runs[0].stdout.text.split('\n').find((line) => line.startsWith('provisioning ')) ?? '');
      // One node made the changes under the cluster lock; the other, after it, found nothing to do.
      expect(reports.filter((r) => /: \d+ change\(s\)$/.test(r))).toHaveLength(1);
      expect(reports.filter((r) => r.includes('nothing changed'))).toHaveLength(1);
      const answers = await everyNodeAnswers(cluster, ID, 200);
      expect(answers.map((w) => w.config.label)).toEqual(['provisioned', 'provisioned']);
      expect((await cluster.ok(cluster.nodes[0], 'GET', `/api/v1/plugins/${ID}`)).generation).toBe(3);
    } finally {
      work.cleanup();
    }
  });

  clusterTest('an event-stream ticket issued by one node opens the stream on another, once', 180_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 2, args: NOTIFY_ONLY });
    const [a, b] = cluster.nodes;
    const { ticket } = await cluster.ok<{ ticket: string }>(a, 'POST', '/api/v1/events/ticket', undefined, 201);
    const open = async (node: ClusterNode) => {
      const abort = new AbortController();
      const res = await fetch(`${node.url}/api/v1/events?ticket=${encodeURIComponent(ticket)}`, { signal: abort.signal });
      abort.abort();
      await res.body?.cancel().catch(() => undefined);
      return res.status;
    };
    expect(await open(b)).toBe(200);
    // Spent, on every node.
    expect(await open(a)).toBe(403);
    expect(await open(b)).toBe(403);
    expect(CLUSTER_TOKEN).not.toContain(ticket);
  });

  clusterTest('the LISTEN connection terminated: a change made afterwards still reaches the node', 240_000, async () => {
    const cluster = await Cluster.start({ database: db.url, nodes: 2, args: ['--reconcile-interval', '1000'] });
    const [a, b] = cluster.nodes;
    await installedThrough(cluster, a, ID);
    await everyNodeAnswers(cluster, ID, 200);

    const ended = await adminQuery(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'plughost-listen' AND datname = $1", [db.name]);
    expect(ended.length).toBeGreaterThanOrEqual(cluster.nodes.length);
    await cluster.ok(a, 'PUT', `/api/v1/plugins/${ID}/config`, { label: 'after the LISTEN connection ended' });
    await waitFor(async () => (await cluster.ok<WhoAmI>(b, 'GET', route(ID, 'whoami'))).config.label === 'after the LISTEN connection ended',
      { timeoutMs: CONVERGE_MS, what: "node-2's plugin to see a configuration set after its LISTEN connection ended" });
    await cluster.ok(a, 'POST', `/api/v1/plugins/${ID}/disable`);
    await everyNodeAnswers(cluster, ID, 503);
  });
});
