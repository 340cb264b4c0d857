/**
 * `plughost plugin hook <id> <hook> [--payload JSON|@file|-] [--user-id U] [--request-id R] [--value k=v ...]`:
 * calls one plugin's hook through POST /plugins/:id/hooks/:hook and prints what it answered.
 */
import { EXIT } from '../../io';
import { HOOK_CALL_OPTIONS, hookCallBody, showJson } from '../../hook-input';
import { invocation, noMore, positional, print } from './context';

interface HookAnswer {
  payload: unknown;
  rejected: boolean;
  reason: string;
}

export async function hook(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, HOOK_CALL_OPTIONS);
  const id = positional(positionals, 0, 'plugin id');
  const name = positional(positionals, 1, 'hook name');
  noMore(positionals, 2);
  const body = hookCallBody(values);
  const answer = await client.request<HookAnswer>('POST', `/plugins/${encodeURIComponent(id)}/hooks/${encodeURIComponent(name)}`, body);
  print(json, answer, () => (answer.rejected ? `rejected by ${id}: ${answer.reason}` : showJson(answer.payload)));
  return EXIT.ok;
}
