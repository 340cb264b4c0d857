/** `plughost plugin logs <id> [--limit N] [--follow]`: the plugin's recent log records. */
import type { PluginLogEntry } from '../../../runtime';
import { EXIT, UsageError, out } from '../../io';
import { invocation, noMore, positional } from './context';

const FOLLOW_INTERVAL_MS = 1000;
/** What --follow asks for each poll: enough that a busy plugin's lines are not skipped between polls. */
const FOLLOW_WINDOW = 1000;

export function formatLog(entry: PluginLogEntry): string {
  const fields = Object.entries(entry.fields ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [new Date(entry.time).toISOString(), entry.level.toUpperCase().padEnd(5), entry.message, ...fields].join(' ');
}

export async function logs(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, {
    limit: { type: 'string', short: 'n' },
    follow: { type: 'boolean', short: 'f', default: false },
  });
  const id = positional(positionals, 0, 'plugin id');
  noMore(positionals, 1);
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit ${values.limit}: expected a whole number 1-10000`);
  const path = `/plugins/${encodeURIComponent(id)}/logs`;
  const emit = (entries: PluginLogEntry[]) => {
    for (const entry of entries) out(json ? JSON.stringify(entry) : formatLog(entry));
  };
  const first = await client.request<PluginLogEntry[]>('GET', path, undefined, { limit: String(limit) });
  if (!values.follow) {
    if (json) out(JSON.stringify(first, null, 2));
    else emit(first);
    return EXIT.ok;
  }
  // Following prints one JSON record per line with --json, so a reader can parse as it goes.
  emit(first);
  let seen = first;
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let stop = false;
  void stopped.then(() => { stop = true; });
  while (!stop) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise((resolve) => { timer = setTimeout(resolve, FOLLOW_INTERVAL_MS); })]);
    clearTimeout(timer);
    if (stop) break;
    const next = await client.request<PluginLogEntry[]>('GET', path, undefined, { limit: String(FOLLOW_WINDOW) });
    emit(newSince(seen, next));
    seen = next;
  }
  return EXIT.ok;
}

/**
 * The records of `next` that come after everything in `previous`. The server keeps a ring
 * buffer without sequence numbers, so the last record seen is found again by its content;
 * when it has rolled out of the buffer, everything in `next` is new.
 */
export function newSince(previous: PluginLogEntry[], next: PluginLogEntry[]): PluginLogEntry[] {
  if (previous.length === 0) return next;
  const last = JSON.stringify(previous[previous.length - 1]);
  for (let i = next.length - 1; i >= 0; i--) {
    if (JSON.stringify(next[i]) === last) return next.slice(i + 1);
  }
  return next;
}
