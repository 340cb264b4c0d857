/**
 * `plughost plugin logs <id> [--limit N] [--level L] [--follow]`: the plugin's recent log
 * records, the host's lines about it (source "host": started, restarting, parked, stopped
 * with its exit code) among them. `--follow` keeps the server's log stream open and prints
 * each record as it comes, until Ctrl-C (exit 0) or the server ends the stream (exit 1).
 */
import type { PluginLogEntry } from '../../../runtime';
import { LOG_LEVELS } from '../../../protocol/log-lines';
import { EXIT, UsageError, err, out } from '../../io';
import { invocation, noMore, positional } from './context';

/** Time, level, `[host]` for the host's own lines, the message, then each structured field as key=value. */
export function formatLog(entry: PluginLogEntry): string {
  const fields = Object.entries(entry.fields ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const origin = entry.source === 'host' ? ['[host]'] : [];
  return [new Date(entry.time).toISOString(), entry.level.toUpperCase().padEnd(5), ...origin, entry.message, ...fields].join(' ');
}

export async function logs(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, {
    limit: { type: 'string', short: 'n' },
    level: { type: 'string', short: 'l' },
    follow: { type: 'boolean', short: 'f', default: false },
  });
  const id = positional(positionals, 0, 'plugin id');
  noMore(positionals, 1);
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit ${values.limit}: expected a whole number 1-10000`);
  const { level } = values;
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--level ${level}: expected one of ${LOG_LEVELS.join(', ')}`);
  const query: Record<string, string> = { limit: String(limit), ...(level ? { level } : {}) };
  const path = `/plugins/${encodeURIComponent(id)}/logs`;
  if (!values.follow) {
    const records = await client.request<PluginLogEntry[]>('GET', path, undefined, query);
    if (json) out(JSON.stringify(records, null, 2));
    else for (const entry of records) out(formatLog(entry));
    return EXIT.ok;
  }
  // Following prints one JSON record per line with --json, so a reader can parse as it goes.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const how = await client.follow(`${path}/stream`, query, (event, data) => {
      if (event === 'log') out(json ? JSON.stringify(data) : formatLog(data as PluginLogEntry));
      else if (event === 'removed') err(`plughost plugin logs: plugin ${id} was removed`);
    }, stop.signal);
    if (how === 'stopped') return EXIT.ok;
    err('plughost plugin logs: the server ended the log stream (it stopped, or the plugin was removed)');
    return EXIT.failed;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
