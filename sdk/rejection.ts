/**
 * Rejections of filter hooks. A rejection carries a registered symbol, so a
 * payload that happens to have `rejected` and `reason` fields is never taken
 * for one, and it is still recognised when built by another copy of the SDK.
 */
import type { Rejection } from './types';

const TAG = Symbol.for('plughost.sdk.rejection');

/** Refuses a filter hook's payload with `reason`; return it from the handler. */
export function reject(reason: string): Rejection {
  return Object.freeze({ rejected: true as const, reason: String(reason), [TAG]: true });
}

export function isRejection(value: unknown): value is Rejection {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TAG] === true;
}
