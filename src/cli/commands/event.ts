/**
 * `plughost event publish <topic> [--payload JSON|@file|-]`: publishes an event as the
 * host (POST /events) to every plugin subscribed to the topic, on every node.
 */
import { EXIT, UsageError } from '../io';
import { readJsonArgument } from '../json-input';
import { invocation, noMore, positional, print, reportingApiErrors } from './plugin/context';

export const usage = 'plughost event publish <topic> [--payload JSON|@file|-] [--url] [--token] [--json]  publish an event to subscribed plugins, as the host';

export async function run(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, { payload: { type: 'string' } });
  const action = positional(positionals, 0, 'publish');
  if (action !== 'publish') throw new UsageError(`unknown subcommand ${JSON.stringify(action)}; expected publish`);
  const topic = positional(positionals, 1, 'topic');
  noMore(positionals, 2);
  const payload = values.payload === undefined ? null : readJsonArgument('--payload', values.payload);
  return reportingApiErrors('plughost event publish', async () => {
    const answer = await client.request<{ topic: string; nodeId: string }>('POST', '/events', { topic, payload });
    print(json, answer, () => `published ${answer.topic} (node ${answer.nodeId})`);
    return EXIT.ok;
  });
}
