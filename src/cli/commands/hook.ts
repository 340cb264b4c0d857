/**
 * `plughost hook notify|filter <hook> [--payload JSON|@file|-] [--user-id U] [--request-id R] [--value k=v ...]`:
 * runs a hook across every running plugin that implements it, as the integrator's
 * `host.notify` and `host.filter` do, and prints each plugin's part.
 */
import type { FilterResult, NotifyOutcome } from '../../runtime';
import { EXIT, UsageError } from '../io';
import { HOOK_CALL_OPTIONS, hookCallBody, showJson } from '../hook-input';
import { renderTable } from '../table';
import { invocation, noMore, positional, print, reportingApiErrors } from './plugin/context';

export const usage = 'plughost hook <notify|filter> <hook> [--payload JSON|@file|-] [--json]  run a hook across every running plugin (--user-id, --request-id and --value k=v set its context)';

const ms = (n: number) => `${n} ms`;

export async function run(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, HOOK_CALL_OPTIONS);
  const mode = positional(positionals, 0, 'notify or filter');
  if (mode !== 'notify' && mode !== 'filter') throw new UsageError(`unknown subcommand ${JSON.stringify(mode)}; expected notify or filter`);
  const name = positional(positionals, 1, 'hook name');
  noMore(positionals, 2);
  const body = hookCallBody(values);
  const path = `/hooks/${encodeURIComponent(name)}/${mode}`;
  return reportingApiErrors(`plughost hook ${mode}`, async () => {
    if (mode === 'notify') {
      const answer = await client.request<{ outcomes: NotifyOutcome[] }>('POST', path, body);
      print(json, answer, () => (answer.outcomes.length === 0 ? `no running plugin implements ${name}` : renderTable<NotifyOutcome>([
        { header: 'PLUGIN', value: (o) => o.pluginId },
        { header: 'OK', value: (o) => (o.ok ? 'yes' : 'no') },
        { header: 'TIME', value: (o) => ms(o.durationMs) },
        { header: 'ERROR', value: (o) => o.error },
      ], answer.outcomes)));
      return EXIT.ok;
    }
    const result = await client.request<FilterResult<unknown>>('POST', path, body);
    print(json, result, () => [
      result.steps.length === 0 ? `no running plugin implements ${name}` : renderTable<FilterResult<unknown>['steps'][number]>([
        { header: 'PLUGIN', value: (s) => s.pluginId },
        { header: 'OUTCOME', value: (s) => s.outcome },
        { header: 'TIME', value: (s) => ms(s.durationMs) },
        { header: 'ERROR', value: (s) => s.error },
      ], result.steps),
      result.rejected ? `rejected by ${result.by}: ${result.reason}` : `payload:\n${showJson(result.payload)}`,
    ].join('\n'));
    return EXIT.ok;
  });
}
