/**
 * What the hook commands (`plughost plugin hook`, `plughost hook notify|filter`) send: the
 * payload from `--payload` (JSON, `@file` or `-` for stdin; null when left out) and the
 * call's context from `--user-id`, `--request-id` and `--value key=value`.
 */
import type { HookCallContext } from '../runtime';
import { UsageError } from './io';
import { readJsonArgument } from './json-input';

export const HOOK_CALL_OPTIONS = {
  payload: { type: 'string' },
  'user-id': { type: 'string' },
  'request-id': { type: 'string' },
  value: { type: 'string', multiple: true },
} as const;

export interface HookCallValues {
  payload?: string;
  'user-id'?: string;
  'request-id'?: string;
  value?: string[];
}

/** The body of the hook routes: `{ payload, context }`, the context only when a flag gave some of it. */
export function hookCallBody(values: HookCallValues): { payload: unknown; context?: HookCallContext } {
  const payload = values.payload === undefined ? null : readJsonArgument('--payload', values.payload);
  const context: HookCallContext = {};
  if (values['user-id'] !== undefined) context.userId = values['user-id'];
  if (values['request-id'] !== undefined) context.requestId = values['request-id'];
  for (const pair of values.value ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--value ${JSON.stringify(pair)}: expected key=value`);
    (context.values ??= {})[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return Object.keys(context).length ? { payload, context } : { payload };
}

/** A JSON value for people: indented, on its own lines. */
export function showJson(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}
