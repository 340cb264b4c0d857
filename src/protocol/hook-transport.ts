/**
 * How the host sends one plugin's hook calls: over one long-lived
 * RunHookBatchStream or RunHookStream when the plugin lists one in
 * Implemented (the batched one first), else as unary RunHook,
 * which every plugin serves (Go and Python plugins written from proto/, and
 * raw-contract ones, often serve only that). One per launch of a plugin: the
 * stream opens on the first hook call, opens again on the next call after it
 * broke, and closes with the launch. The runtime's supervisor and the SDK's
 * test host both send hook calls through it.
 */
import * as grpc from '@grpc/grpc-js';
import type { RunHookRequest } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import { callUnary, statusError, type HooksClient, type UnaryMethod } from './contract';
import { HookStream } from './hook-stream';

/** A hook request as the dispatcher builds it. */
export interface HookRequest extends RunHookRequest {
  hook: string;
  payload: Buffer;
  context: { request_id: string; user_id: string; values: Record<string, string>; caller_plugin_id: string };
}

export interface HookTransportOptions {
  /** True when the plugin lists RunHookStream or RunHookBatchStream and the host's hookTransport is 'stream'. */
  streamed: boolean;
  /** True when it lists RunHookBatchStream (and the host's hookBatching is on): calls ready in one turn then share a message. */
  batched: boolean;
  maxMessageBytes: number;
  onStreamOpened(): void;
  /** A stream broke (the calls on it have failed); not called for close(). */
  onStreamEnded(err: grpc.ServiceError): void;
}

export class HookTransport {
  private stream: HookStream | undefined;
  private closed: grpc.ServiceError | undefined;
  private readonly unary: UnaryMethod<HookRequest, RunHookResponse__Output>;

  constructor(
    private readonly hooks: HooksClient,
    private readonly options: HookTransportOptions,
  ) {
    this.unary = hooks.RunHook.bind(hooks);
  }

  /** One hook call under `timeoutMs`; fails with DEADLINE_EXCEEDED past it, whichever way it went. */
  call(request: HookRequest, timeoutMs: number): Promise<RunHookResponse__Output> {
    if (this.closed) return Promise.reject(this.closed);
    // A message over the limit would end the stream, and every call on it: such a call goes alone, and fails alone, as unary.
    if (!this.options.streamed || encodedSizeBound(request) > this.options.maxMessageBytes) {
      return callUnary(this.unary, request, timeoutMs);
    }
    if (!this.stream?.open) {
      this.stream = new HookStream(this.hooks, this.options.onStreamEnded, this.options.batched ? this.options.maxMessageBytes : undefined);
      this.options.onStreamOpened();
    }
    return this.stream.call(request, timeoutMs);
  }

  /** Fails the stream's calls in flight with `reason`, ends the stream, and refuses later calls. */
  close(reason: string): void {
    this.closed ??= statusError(grpc.status.UNAVAILABLE, reason);
    this.interrupt(reason);
  }

  /** Ends the stream as a break would (its calls in flight fail with UNAVAILABLE `reason`); the next call opens a new one. */
  interrupt(reason: string): void {
    this.stream?.close(reason);
    this.stream = undefined;
  }
}

/**
 * At least the size of `request` encoded as a RunHookStreamRequest: strings
 * count three bytes per UTF-16 unit (UTF-8's most), and 16 bytes cover each
 * field's tag and length. Cheap enough for every call; exact where it matters
 * (large payloads are bytes already).
 */
function encodedSizeBound(request: HookRequest): number {
  const c = request.context;
  let size = 64 + request.payload.length + 3 * (request.hook.length + c.request_id.length + c.user_id.length + c.caller_plugin_id.length);
  for (const key in c.values) size += 16 + 3 * (key.length + c.values[key].length);
  return size;
}
