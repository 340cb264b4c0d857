/**
 * How the host sends one plugin's hook calls: over one long-lived
 * RunHookBatchStream or RunHookStream when the plugin lists one in
 * Implemented (the batched one first), else as unary RunHook,
 * which every plugin serves (Go and Python plugins written from proto/, and
 * raw-contract ones, often serve only that). One per launch of a plugin: the
 * stream opens on the first hook call, opens again on the next call after it
 * broke, and closes with the launch. The batched stream goes over a direct
 * HTTP/2 connection when prepare() opened one (see http2-connection.ts). The
 * runtime's supervisor and the SDK's test host both send hook calls through it.
 */
import * as grpc from '@grpc/grpc-js';
import type { RunHookRequest } from '../gen/plughost/v1/RunHookRequest';
import type { RunHookResponse__Output } from '../gen/plughost/v1/RunHookResponse';
import { callUnary, statusError, type HooksClient, type UnaryMethod } from './contract';
import { HookStream } from './hook-stream';
import type { Http2Connection } from './http2-connection';

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
  /**
   * Opens a connection to the plugin over node:http2 directly (PluginClient.openHttp2): given,
   * prepare() opens it and the batched stream goes over it rather than the grpc-js channel.
   */
  openHttp2?: (timeoutMs: number) => Promise<Http2Connection>;
  onStreamOpened(): void;
  /** A stream broke (the calls on it have failed); not called for close(). */
  onStreamEnded(err: grpc.ServiceError): void;
}

export class HookTransport {
  private stream: HookStream | undefined;
  private http2: Http2Connection | undefined;
  private closed: grpc.ServiceError | undefined;
  private readonly unary: UnaryMethod<HookRequest, RunHookResponse__Output>;

  constructor(
    private readonly hooks: HooksClient,
    private readonly options: HookTransportOptions,
  ) {
    this.unary = hooks.RunHook.bind(hooks);
  }

  /**
   * Opens the direct HTTP/2 connection when the batched stream is to be used
   * and options.openHttp2 is given. Resolves with why it could not be opened
   * (the stream then goes over the grpc-js channel, as it also does once the
   * connection is gone), or undefined.
   */
  async prepare(timeoutMs: number): Promise<string | undefined> {
    const { streamed, batched, openHttp2 } = this.options;
    if (!streamed || !batched || !openHttp2) return undefined;
    try {
      const conn = await openHttp2(timeoutMs);
      if (this.closed) conn.destroy();
      else this.http2 = conn;
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** One hook call under `timeoutMs`; fails with DEADLINE_EXCEEDED past it, whichever way it went. */
  call(request: HookRequest, timeoutMs: number): Promise<RunHookResponse__Output> {
    if (this.closed) return Promise.reject(this.closed);
    // A message over the limit would end the stream, and every call on it: such a call goes alone, and fails alone, as unary.
    if (!this.options.streamed || encodedSizeBound(request) > this.options.maxMessageBytes) {
      return callUnary(this.unary, request, timeoutMs);
    }
    if (!this.stream?.open) {
      const http2 = this.http2?.usable ? this.http2 : undefined;
      this.stream = new HookStream(this.hooks, this.options.onStreamEnded, this.options.batched ? this.options.maxMessageBytes : undefined, http2);
      this.options.onStreamOpened();
    }
    return this.stream.call(request, timeoutMs);
  }

  /**
   * Fails the stream's calls in flight with `reason`, ends the stream, and
   * refuses later calls. The direct connection closes once its stream has
   * (the plugin answers a half-close by ending its side); the PluginClient
   * destroys it with the plugin's other connections at the latest.
   */
  close(reason: string): void {
    this.closed ??= statusError(grpc.status.UNAVAILABLE, reason);
    this.interrupt(reason);
    this.http2?.close();
    this.http2 = undefined;
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
