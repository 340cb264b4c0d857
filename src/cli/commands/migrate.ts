/**
 * `plughost migrate --to postgres://…`: moves a single-node install from the
 * data dir's SQLite file into an empty PostgreSQL database, after which every
 * node runs `plughost serve --database <url>`. docs/migrate.md says what is
 * copied, what is not, and what a failure leaves behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Errors } from '../../errors';
import { PostgresStore, redact } from '../../store/postgres-store';
import { SqliteStore } from '../../store/sqlite-store';
import { copyStore, type CopySummary } from '../../store/store-copy';
import { EXIT, UsageError } from '../io';
import { formatBytes } from '../progress';
import { renderFields } from '../table';
import { print } from './plugin/context';
import { dataDirOption } from './serve';

export const usage = 'plughost migrate --to postgres://… [--data-dir ./data | --from FILE] [--json]  copy a stopped single-node install from SQLite into an empty PostgreSQL database';

/** The signals that interrupt a copy; it then deletes what it copied before exiting. */
const INTERRUPTS = ['SIGINT', 'SIGTERM'] as const;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      to: { type: 'string' },
      from: { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const url = values.to;
  if (url === undefined) throw new UsageError('--to is required: the postgres:// URL of an empty database');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`--to ${redact(url)}: expected a postgres:// or postgresql:// URL`);
  if (values.from !== undefined && values['data-dir'] !== undefined) throw new UsageError('give --data-dir or --from, not both');
  const file = path.resolve(values.from ?? path.join(dataDirOption(values['data-dir']), 'plughost.db'));
  // SQLite would create a missing file: an empty install copied would look like success.
  if (!fs.existsSync(file)) throw Errors.MIGRATE_SOURCE_MISSING(file);

  const source = SqliteStore.open({ file, sweepIntervalMs: 0 });
  let target: PostgresStore | undefined;
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => interrupt.abort(signal);
  for (const s of INTERRUPTS) process.on(s, onSignal);
  try {
    // Held until close: no host reads or writes the file while it is copied.
    await source.holdExclusively();
    target = await PostgresStore.open({ url, sweepIntervalMs: 0, poolSize: 2 });
    const summary = await copyStore(source, target, { source: file, target: target.where, signal: interrupt.signal });
    report(values.json === true, file, url, summary);
    return EXIT.ok;
  } finally {
    for (const s of INTERRUPTS) process.off(s, onSignal);
    await target?.close();
    await source.close();
  }
}

function report(json: boolean, file: string, url: string, summary: CopySummary): void {
  const to = redact(url);
  const next = `plughost serve --database ${to}`;
  const data = { from: file, to, ...summary, next };
  print(json, data, () => [
    `copied ${file} to ${to}`,
    renderFields([
      ['plugins', `${summary.plugins} (${summary.enabledPlugins} enabled)`],
      ['bundles', `${summary.bundles} (${formatBytes(summary.bundleBytes)})`],
      ['KV values', `${summary.kv} (${summary.kvWithExpiry} with a time to live)`],
    ]).replace(/^/gm, '  '),
    'not copied: cluster locks and job tickets, nodes and observed plugin states (each host rebuilds its own), expired KV values',
    `${file} is left in place; keep it until the nodes run on PostgreSQL`,
    '',
    'next: stop using the SQLite install and start each node with',
    `  ${next}${to === url ? '' : '   (*** is the password given to --to)'}`,
  ].join('\n'));
}
