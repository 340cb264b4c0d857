/** `plughost plugin list|show|enable|disable|remove`: reading and switching installed plugins. */
import type { PluginDetail, PluginInfo } from '../../../runtime';
import { renderFields, renderTable } from '../../table';
import { EXIT } from '../../io';
import { invocation, noMore, positional, print } from './context';

export function describeState(info: Pick<PluginInfo, 'state' | 'lastError'>): string {
  return info.lastError ? `${info.state} (${info.lastError})` : info.state;
}

export async function list(args: string[]): Promise<number> {
  const { client, json, positionals } = invocation(args, {});
  noMore(positionals, 0);
  const plugins = await client.request<PluginInfo[]>('GET', '/plugins');
  print(json, plugins, () =>
    plugins.length === 0
      ? 'no plugins installed'
      : renderTable<PluginInfo>([
        { header: 'ID', value: (p) => p.id },
        { header: 'VERSION', value: (p) => p.version },
        { header: 'ENABLED', value: (p) => (p.enabled ? 'yes' : 'no') },
        { header: 'STATE', value: (p) => p.state },
        { header: 'NAME', value: (p) => p.name },
        { header: 'LAST ERROR', value: (p) => p.lastError },
      ], plugins),
  );
  return EXIT.ok;
}

export async function show(args: string[]): Promise<number> {
  const { client, json, positionals } = invocation(args, {});
  const id = positional(positionals, 0, 'plugin id');
  noMore(positionals, 1);
  const info = await client.request<PluginDetail>('GET', `/plugins/${encodeURIComponent(id)}`);
  print(json, info, () => renderFields([
    ['id', info.id],
    ['name', info.name],
    ['version', info.version],
    ['description', info.description],
    ['enabled', info.enabled ? 'yes' : 'no'],
    ['state', info.state],
    ['last error', info.lastError],
    ['nodes', info.nodes.map((n) => `${n.nodeId}: ${describeState(n)}${n.live ? '' : ' (no recent heartbeat)'}`).join('; ')],
    ['generation', `${info.generation}: ${info.summary.converged} of ${info.summary.nodes} live nodes converged, ${info.summary.running} running`],
    ['pid', info.pid],
    ['restarts', info.restarts],
    ['hooks', info.hooks.join(', ')],
    ['permissions', info.permissions.join(', ')],
    ['settings', (info.manifest.settings_schema?.settings ?? []).map((s) => `${s.key} (${s.type})`).join(', ')],
    ['server', info.hasServer ? 'yes' : 'no'],
    ['webapp', info.hasWebapp ? 'yes' : 'no'],
    ['bundle sha256', info.bundleSha256],
    ['installed', new Date(info.installedAt).toISOString()],
    ['updated', new Date(info.updatedAt).toISOString()],
  ]));
  return EXIT.ok;
}

function toggle(action: 'enable' | 'disable') {
  return async (args: string[]): Promise<number> => {
    const { client, json, positionals, values } = invocation(args, action === 'enable' ? { inspect: { type: 'string' } } : {});
    const id = positional(positionals, 0, 'plugin id');
    noMore(positionals, 1);
    const inspect = (values as { inspect?: string }).inspect;
    const info = await client.request<PluginInfo>('POST', `/plugins/${encodeURIComponent(id)}/${action}`, undefined, inspect === undefined ? undefined : { inspect });
    print(json, info, () => `${action}d ${info.id} ${info.version}: ${describeState(info)}`);
    return EXIT.ok;
  };
}

export const enable = toggle('enable');
export const disable = toggle('disable');

export async function remove(args: string[]): Promise<number> {
  const { client, json, positionals } = invocation(args, {});
  const id = positional(positionals, 0, 'plugin id');
  noMore(positionals, 1);
  await client.request<void>('DELETE', `/plugins/${encodeURIComponent(id)}`);
  print(json, { removed: id }, () => `removed ${id}`);
  return EXIT.ok;
}
