/**
 * The caller's side of Hooks.RunHookStream and Hooks.RunHookBatchStream: many
 * RunHook calls over one long-lived stream to a plugin, matched by call_id;
 * CallStream does the rest. RunHookStream carries one call per message;
 * RunHookBatchStream carries every call ready in one turn per message, as the
 * frames of RunHookBatch.calls laid end to end, written and read by
 * hook-codec.ts rather than protobufjs.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HooksClient } from '../gen/plughost/v1/Hooks';
import type { RunHookRequest } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import type { RunHookStreamResponse__Output } from '../gen/plughost/v1/RunHookStreamResponse';
import { CallStream, type CallStreamShape, type Settle } from './call-stream';
import type { Http2Connection } from './http2-connection';
import { decodeHookAnswers, encodeHookCall, type HookAnswer } from './hook-codec';

/** An answer with neither `response` nor `error` (proto3 omits an all-default response): "unchanged". */
const UNCHANGED: RunHookResponse__Output = Object.freeze({ payload: Buffer.alloc(0), rejected: false, reason: '' });

const BATCH_PATH = '/plughost.v1.Hooks/RunHookBatchStream';

const settleOne = (msg: RunHookStreamResponse__Output, settle: Settle<RunHookResponse__Output>): void =>
  settle(Number(msg.call_id), msg.response ?? UNCHANGED, msg.error, msg.error_code);

const SINGLE: CallStreamShape<RunHookRequest, RunHookResponse__Output, RunHookStreamResponse__Output> = {
  what: 'the hook stream to the plugin',
  frame: (id, request, timeoutMs) => ({ call_id: id, request, timeout_ms: timeoutMs }),
  answers: settleOne,
};

export class HookStream extends CallStream<RunHookRequest, RunHookResponse__Output, unknown> {
  /**
   * `batchLimit` (the message size limit) opens RunHookBatchStream instead of
   * RunHookStream, over `http2` when given (a connection beside the grpc-js
   * channel, see http2-connection.ts), else over the channel. `onEnded` hears
   * why the stream ended, unless close() ended it.
   */
  constructor(hooks: HooksClient, onEnded?: (err: grpc.ServiceError) => void, batchLimit?: number, http2?: Http2Connection) {
    if (batchLimit === undefined) {
      super(hooks.RunHookStream() as grpc.ClientDuplexStream<unknown, unknown>, SINGLE as CallStreamShape<RunHookRequest, RunHookResponse__Output, unknown>, onEnded);
      return;
    }
    const shape: CallStreamShape<RunHookRequest, RunHookResponse__Output, HookAnswer[]> = {
      what: 'the hook stream to the plugin',
      batchLimit,
      frame: encodeHookCall,
      answers: (answers, settle) => {
        for (const a of answers) settle(a.callId, a.response ?? UNCHANGED, a.error, a.code);
      },
    };
    const duplex = http2 ? http2.stream(BATCH_PATH, decodeHookAnswers) : (hooks as unknown as grpc.Client).makeBidiStreamRequest(BATCH_PATH, (bytes: Buffer) => bytes, decodeHookAnswers);
    super(duplex as grpc.ClientDuplexStream<unknown, unknown>, shape as CallStreamShape<RunHookRequest, RunHookResponse__Output, unknown>, onEnded);
  }
}
