/**
 * The caller's side of Hooks.RunHookStream: many RunHook calls over one
 * long-lived stream to a plugin, one call per message (the proto's
 * RunHookStreamRequest carries one), matched by call_id; CallStream does the
 * rest.
 */
import type { HooksClient } from '../gen/plughost/v1/Hooks';
import type { RunHookRequest } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import type { RunHookStreamResponse__Output } from '../gen/plughost/v1/RunHookStreamResponse';
import type * as grpc from '@grpc/grpc-js';
import { CallStream, type CallStreamShape } from './call-stream';

/** An answer with neither `response` nor `error` (proto3 omits an all-default response): "unchanged". */
const UNCHANGED: RunHookResponse__Output = Object.freeze({ payload: Buffer.alloc(0), rejected: false, reason: '' });

const SHAPE: CallStreamShape<RunHookRequest, RunHookResponse__Output, RunHookStreamResponse__Output> = {
  what: 'the hook stream to the plugin',
  frame: (id, request, timeoutMs) => ({ call_id: id, request, timeout_ms: timeoutMs }),
  answers: (msg, settle) => settle(Number(msg.call_id), msg.response ?? UNCHANGED, msg.error, msg.error_code),
};

export class HookStream extends CallStream<RunHookRequest, RunHookResponse__Output, RunHookStreamResponse__Output> {
  /** `onEnded` hears why the stream ended, unless close() ended it. */
  constructor(hooks: HooksClient, onEnded?: (err: grpc.ServiceError) => void) {
    super(hooks.RunHookStream() as grpc.ClientDuplexStream<unknown, RunHookStreamResponse__Output>, SHAPE, onEnded);
  }
}
