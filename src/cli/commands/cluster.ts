/**
 * `plughost cluster [nodes]`: the nodes sharing a running server's database, from
 * GET /api/v1/cluster, with how long ago each last heartbeated.
 */
import type { ClusterInfo } from '../../runtime';
import { renderTable } from '../table';
import { EXIT, UsageError } from '../io';
import { invocation, noMore, print, reportingApiErrors } from './plugin/context';

export const usage = 'plughost cluster [nodes] [--url URL] [--token TOKEN] [--json]  list the nodes sharing the server\'s database, with heartbeat ages';

type Node = ClusterInfo['nodes'][number];

export async function run(args: string[]): Promise<number> {
  const { client, json, positionals } = invocation(args, {});
  const [sub, ...rest] = positionals;
  if (sub !== undefined && sub !== 'nodes') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; expected nodes`);
  noMore(rest, 0);
  return reportingApiErrors('plughost cluster', async () => {
    const cluster = await client.request<ClusterInfo>('GET', '/cluster');
    print(json, cluster, () => renderTable<Node>([
      { header: 'NODE', value: (n) => (n.nodeId === cluster.nodeId ? `${n.nodeId} (this node)` : n.nodeId) },
      { header: 'VERSION', value: (n) => n.version },
      { header: 'STARTED', value: (n) => new Date(n.startedAt).toISOString() },
      { header: 'HEARTBEAT', value: (n) => `${ago(n.heartbeatAgeMs)} ago` },
    ], cluster.nodes));
    return EXIT.ok;
  });
}

function ago(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
