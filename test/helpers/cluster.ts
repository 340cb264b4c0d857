/**
 * Several real `plughost serve` processes sharing one PostgreSQL database, as
 * a deployment behind a load balancer runs them: each node has its own data
 * dir (named after its node id), port and plugin processes. Tests drive them
 * over the REST API and plugin routes, kill, stop and restart them, and run
 * inside `clusterTest`, which prints every node's output when the test fails
 * and stops every node when it ends, then checks that no plugin process is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killMarkedWithPrefix, markedWithPrefix, raceTimeout } from '../../src/protocol/process';
import { instancePrefixOf } from '../../src/runtime/plugin-host';
import { pluginBundle, upload } from '../server/helpers';
import { openStream, type SseReader } from '../web/helpers';
import { tempDir, waitFor as pollFor, watchStdout } from './index';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'plughost.js');
export const CLUSTER_TOKEN = 'cluster-harness-admin-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${CLUSTER_TOKEN}` };
/** How long a node may take to print its URL, and to exit after SIGTERM. */
const START_MS = 60_000;
const STOP_MS = 60_000;
/** How long one HTTP request to a node may take before the harness calls it a hang. */
const REQUEST_MS = 30_000;
/** How long plugins of a killed node may take to notice and exit (they watch their parent every second). */
const ORPHANS_MS = 15_000;
/** Output lines per process run shown with a failure. */
const SHOWN_LINES = 300;
/** How often `waitFor` asks: slow enough to leave the machine's cores to the nodes. */
const POLL_MS = 200;

/** Bounded polling (test/helpers' waitFor) at a pace for nodes: returns `fn`'s first value that is not false, undefined or null. */
export function waitFor<T>(
  fn: () => Promise<T | false | undefined | null> | T | false | undefined | null,
  options: { timeoutMs: number; what: string },
): Promise<T> {
  return pollFor(fn, { intervalMs: POLL_MS, ...options });
}

/** One process run of a node: what it wrote, kept in memory for a failing test's report. */
interface Run {
  child: ChildProcess;
  stdout: ReturnType<typeof watchStdout>;
  stderr: string;
  exited: Promise<unknown>;
}

export interface ClusterNode {
  /** Its --node-id, `node-<i>` from 1. */
  readonly id: string;
  readonly dataDir: string;
  /** Set by its first start; a restart listens on the same URL. */
  url: string;
  readonly runs: Run[];
}

export interface Answer<T> {
  status: number;
  body: T;
}

export interface ClusterOptions {
  /** postgres:// URL every node uses. */
  database: string;
  nodes: number;
  /** How many nodes start now (the first ones); the others wait for `start(node)`. Default: all. */
  start?: number;
  /** Added to every node's `serve` command line. */
  args?: string[];
}

export class Cluster {
  readonly nodes: ClusterNode[];
  private closed = false;
  private readonly feeds = new Set<SseReader>();

  private constructor(private readonly options: ClusterOptions, private readonly work: { dir: string; cleanup(): void }) {
    this.nodes = Array.from({ length: options.nodes }, (_, i) => ({ id: `node-${i + 1}`, dataDir: path.join(work.dir, `node-${i + 1}`), url: '', runs: [] }));
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options, tempDir('pht-nodes-'));
    open.add(cluster);
    for (const node of cluster.nodes.slice(0, options.start ?? options.nodes)) await cluster.start(node);
    return cluster;
  }

  /** Starts the node (again, on its port once it has one) and waits until it listens. */
  async start(node: ClusterNode): Promise<void> {
    if (this.closed) throw new Error(`${node.id}: the cluster is closed`);
    if (this.running(node)) throw new Error(`${node.id} is running already`);
    const port = node.url ? new URL(node.url).port : '0';
    const child = spawn(process.execPath, [BIN, 'serve', '--database', this.options.database, '--node-id', node.id, '--data-dir', node.dataDir,
      '--host', '127.0.0.1', '--port', port, ...(this.options.args ?? [])], {
      cwd: this.work.dir,
      env: { ...process.env, PLUGHOST_ADMIN_TOKEN: CLUSTER_TOKEN },
    });
    const run: Run = { child, stdout: watchStdout(child), stderr: '', exited: once(child, 'exit') };
    child.stderr!.on('data', (c: Buffer) => { run.stderr += c.toString(); });
    node.runs.push(run);
    node.url = (await run.stdout.waitFor(/listening on (\S+)/, `${node.id} exited, or printed no URL within ${START_MS} ms`, START_MS))[1];
  }

  /** SIGTERM, then waits for the node to stop its plugins and exit 0. */
  async stop(node: ClusterNode): Promise<void> {
    const run = this.current(node);
    if (!run) return;
    run.child.kill('SIGTERM');
    if (!(await raceTimeout(run.exited.then(() => true), STOP_MS))) {
      await this.kill(node);
      throw new Error(`${node.id} did not exit within ${STOP_MS} ms of SIGTERM; killed`);
    }
    if (run.child.exitCode !== 0) throw new Error(`${node.id} exited with ${run.child.exitCode ?? run.child.signalCode} after SIGTERM`);
  }

  /** Sends `signal` (default SIGKILL: no cleanup of any kind) and waits for the node to exit. */
  async kill(node: ClusterNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const run = this.current(node);
    if (!run) return;
    run.child.kill(signal);
    await run.exited;
  }

  /** Stops the node if it runs, then starts it with the same node id, data dir and port. */
  async restart(node: ClusterNode): Promise<void> {
    await this.stop(node);
    await this.start(node);
  }

  running(node: ClusterNode): boolean {
    return this.current(node) !== undefined;
  }

  /** One request with the admin token (plugin routes never see it), bounded so a hang fails. */
  async request<T = any>(node: ClusterNode, method: string, urlPath: string, body?: unknown, options: { timeoutMs?: number } = {}): Promise<Answer<T>> {
    const timeoutMs = options.timeoutMs ?? REQUEST_MS;
    const init: RequestInit = { method, headers: { ...AUTH }, signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { ...AUTH, 'content-type': 'application/json' };
    }
    let res: Response;
    try {
      res = await fetch(`${node.url}${urlPath}`, init);
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      throw new Error(`${method} ${urlPath} on ${node.id}: ${why}`);
    }
    const text = await res.text();
    const json = (res.headers.get('content-type') ?? '').includes('json');
    return { status: res.status, body: (json && text ? JSON.parse(text) : text) as T };
  }

  /** Like `request`, but any status other than `expected` throws with the answer. */
  async ok<T = any>(node: ClusterNode, method: string, urlPath: string, body?: unknown, expected = 200): Promise<T> {
    const res = await this.request<T>(node, method, urlPath, body);
    if (res.status !== expected) throw new Error(`${method} ${urlPath} on ${node.id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Installs a bundle through the node's REST API (multipart upload), and enables it when asked. */
  async install(node: ClusterNode, bundle: string, options: { enable?: boolean } = {}): Promise<{ id: string; state: string }> {
    const res = await upload(node.url, bundle, '', AUTH);
    const info = (await res.json()) as { id: string; state: string };
    if (res.status !== 201) throw new Error(`installing ${path.basename(bundle)} on ${node.id}: ${res.status} ${JSON.stringify(info)}`);
    return options.enable ? this.ok(node, 'POST', `/api/v1/plugins/${info.id}/enable`) : info;
  }

  /** Follows the node's operator feed (GET /api/v1/events) from its `ready` event on; closed with the cluster. */
  async feed(node: ClusterNode): Promise<SseReader> {
    const { status, reader } = await openStream(`${node.url}/api/v1/events`, AUTH);
    if (!reader) throw new Error(`GET /api/v1/events on ${node.id}: ${status}`);
    this.feeds.add(reader);
    await reader.next('ready');
    return reader;
  }

  /** The node's plugin processes (marked with its data dir's instance prefix), by pid. */
  pluginPids(node: ClusterNode): number[] {
    return markedWithPrefix(instancePrefixOf(node.dataDir));
  }

  /** Packs test/fixtures/sdk/cluster-http-plugin.js as plugin `id`, with the settings it reads. */
  pluginBundle(id: string): Promise<string> {
    return pluginBundle(this.work.dir, id, 'sdk/cluster-http-plugin.js', {
      settings_schema: { settings: [{ key: 'job_every_ms', type: 'number', default: 0 }, { key: 'label', type: 'text', default: '' }] },
    });
  }

  /** Every node's output, each process run under its own heading, the last lines of each. */
  output(): string {
    const parts: string[] = [];
    for (const node of this.nodes) {
      for (const [i, run] of node.runs.entries()) {
        for (const [stream, text] of [['stdout', run.stdout.text], ['stderr', run.stderr]] as const) {
          if (text.trim() === '') continue;
          const lines = text.trimEnd().split('\n');
          const shown = lines.length > SHOWN_LINES ? [`(${lines.length - SHOWN_LINES} earlier lines left out)`, ...lines.slice(-SHOWN_LINES)] : lines;
          parts.push(`----- ${node.id} run ${i + 1} (pid ${run.child.pid}) ${stream} -----`, ...shown);
        }
      }
    }
    return parts.join('\n');
  }

  /**
   * Stops every node, then fails if any plugin process of any node is still
   * there once a killed node's plugins have had time to notice (those left are
   * killed, so nothing outlives the test either way). A second call does nothing.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    const problems: string[] = [];
    await Promise.all([...this.feeds].map((f) => f.close()));
    await Promise.all(this.nodes.map((node) => this.stop(node).catch((err: Error) => problems.push(err.message))));
    const left = () => this.nodes.flatMap((n) => this.pluginPids(n).map((pid) => ({ node: n.id, pid, cmd: commandLine(pid) })));
    const leftover = await waitFor(() => (left().length === 0 ? [] : false), { timeoutMs: ORPHANS_MS, what: 'plugin processes to exit' }).catch(() => left());
    if (leftover.length > 0) {
      problems.push(`plugin processes left after every node stopped: ${leftover.map((p) => `${p.node}: pid ${p.pid} ${p.cmd}`).join('; ')}`);
      for (const node of this.nodes) killMarkedWithPrefix(instancePrefixOf(node.dataDir));
    }
    this.work.cleanup();
    if (problems.length > 0) throw new Error(`cluster teardown: ${problems.join('\n')}`);
  }

  private current(node: ClusterNode): Run | undefined {
    const run = node.runs.at(-1);
    return run && run.child.exitCode === null && run.child.signalCode === null ? run : undefined;
  }
}

const open = new Set<Cluster>();

/** What a cluster test may add to its failure report besides the nodes' output (e.g. the database server's log). */
export interface ClusterTestContext {
  report(label: string, text: () => string): void;
}

/**
 * A test with real nodes: `body` has `timeoutMs`; after it (pass, fail or
 * timeout) every cluster it started is closed, and a failure carries every
 * node's output. Jest's own timeout leaves room for the teardown.
 */
export function clusterTest(name: string, timeoutMs: number, body: (ctx: ClusterTestContext) => Promise<void>): void {
  test(name, async () => {
    const reports: Array<[string, () => string]> = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the test did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    const outcome = await Promise.race([body({ report: (label, text) => reports.push([label, text]) }), deadline]).then(() => null, (err: unknown) => err);
    clearTimeout(timer);
    const clusters = [...open];
    const outputs = clusters.map((c) => c.output());
    const teardown = await Promise.all(clusters.map((c) => c.close().then(() => null, (err: Error) => err.message)));
    const teardownFailed = teardown.filter((t): t is string => t !== null);
    if (outcome === null && teardownFailed.length === 0) return;
    const report = [...outputs, ...reports.map(([label, text]) => `----- ${label} -----\n${text()}`)].join('\n');
    const first = outcome instanceof Error ? outcome : outcome !== null ? new Error(String(outcome)) : new Error(teardownFailed.join('\n'));
    if (outcome !== null && teardownFailed.length > 0) first.message += `\n(teardown also failed: ${teardownFailed.join('\n')})`;
    first.message += `\n\n${report}`;
    throw first;
  }, timeoutMs + 2 * STOP_MS + ORPHANS_MS);
}

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}
