/**
 * The Hooks service of an SDK plugin: each contract method mapped onto the
 * author's definition. Activation dials the host's API through the broker
 * before the author's onActivate runs, so ctx.api works in every handler.
 */
import * as grpc from '@grpc/grpc-js';
import type { APIClient } from '../src/gen/plughost/v1/API';
import type { HooksHandlers } from '../src/gen/plughost/v1/Hooks';
import type { ImplementedResponse } from '../src/gen/plughost/v1/ImplementedResponse';
import type { OnActivateRequest__Output } from '../src/gen/plughost/v1/OnActivateRequest';
import type { OnConfigurationChangeRequest__Output } from '../src/gen/plughost/v1/OnConfigurationChangeRequest';
import type { OnEventRequest__Output } from '../src/gen/plughost/v1/OnEventRequest';
import type { RunHookRequest__Output } from '../src/gen/plughost/v1/RunHookRequest';
import type { RunHookResponse } from '../src/gen/plughost/v1/RunHookResponse';
import type { RunHookStreamRequest__Output } from '../src/gen/plughost/v1/RunHookStreamRequest';
import type { RunHookStreamResponse } from '../src/gen/plughost/v1/RunHookStreamResponse';
import { API_STREAM_FEATURE } from '../src/protocol/api-stream';
import type { BrokerConnection, ServiceRegistration } from '../src/protocol/broker';
import { contract, jsonBytes, parseJsonBytes, statusError } from '../src/protocol/contract';
import { decodeHookCalls, encodeHookAnswer, type HookStreamAnswer } from '../src/protocol/hook-codec';
import { bodyPartBytes } from '../src/protocol/limits';
import { SIDE_CHANNEL_CAPABILITY } from '../src/protocol/side-channel';
import type { ServeContext } from '../src/protocol/server';
import { StreamAnswers, tooLargeMessage, withRawAnswers } from '../src/protocol/stream-answers';
import { PendingLogs, createApi } from './api-client';
import { reject as makeRejection, isRejection } from './rejection';
import type { HttpHandler } from './http-exchange';
import { serveHttpCall } from './serve-http';
import { serveHttpStream } from './serve-http-stream';
import { matchesTopic } from './topics';
import type { EventHandler, HookContext, HookHandler, JsonValue, Manifest, PluginApi, PluginContext, PluginDefinition, SettingsMap } from './types';

type Definition = PluginDefinition<Record<string, unknown>, never, SettingsMap>;
type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;
type Empty = object;

interface Active {
  ctx: PluginContext<never, SettingsMap> & { config: SettingsMap };
  conn: BrokerConnection;
  /** Cancels the activation's scheduled jobs and ends its leases. */
  closeApi(why: string): void;
}

/** The lists ImplementedResponse carries, derived from what the definition has. */
export function implementedOf(def: Definition, sideChannel = false): ImplementedResponse {
  const methods = ['OnActivate', 'OnConfigurationChange'];
  if (def.onDeactivate) methods.push('OnDeactivate');
  if (def.serveHTTP) methods.push('ServeHTTP', 'ServeHTTPStream');
  // Side channels live in the host's socket folder: without one there are none.
  if (def.serveHTTP && sideChannel) methods.push(SIDE_CHANNEL_CAPABILITY);
  const hooks = Object.keys(def.hooks ?? {}).filter((h) => typeof def.hooks?.[h] === 'function');
  if (hooks.length) methods.push('RunHookStream', 'RunHookBatchStream');
  const eventTopics = Object.keys(def.events ?? {});
  if (eventTopics.length) methods.push('OnEvent');
  return { methods, hooks, event_topics: eventTopics };
}

/** Builds the Hooks service registration for `def`, served by servePlugin. */
export function hooksService(def: Definition, serve: ServeContext): ServiceRegistration {
  const pending = new PendingLogs();
  let active: Active | undefined;
  const implemented = implementedOf(def, serve.socketDir !== null);

  const needActive = (): Active => {
    if (!active) throw statusError(grpc.status.FAILED_PRECONDITION, 'the plugin has not been activated yet (OnActivate first)');
    return active;
  };
  /** Runs `fn`, waits for the logs it wrote, and answers; a thrown error becomes the call's status. */
  const unary = <Req, Res>(fn: (req: Req) => Promise<Res>): Unary<Req, Res> => (call, cb) => {
    fn(call.request).then(
      async (res) => {
        await pending.settle();
        cb(null, res);
      },
      async (err: unknown) => {
        await pending.settle();
        cb(toStatus(err));
      },
    );
  };

  const runHook = async (req: RunHookRequest__Output): Promise<RunHookResponse> => {
    const handler = def.hooks?.[req.hook] as HookHandler<unknown, never, SettingsMap> | undefined;
    if (!handler) throw statusError(grpc.status.UNIMPLEMENTED, `this plugin does not implement hook ${JSON.stringify(req.hook)}`);
    const { ctx } = needActive();
    const payload = parseJsonBytes<unknown>(req.payload, null);
    const hookCtx: HookContext<never, SettingsMap> = Object.assign(Object.create(ctx) as PluginContext<never, SettingsMap>, {
      call: {
        hook: req.hook,
        requestId: req.context?.request_id ?? '',
        userId: req.context?.user_id ?? '',
        values: req.context?.values ?? {},
      },
      caller: req.context?.caller_plugin_id || undefined,
      reject: makeRejection,
    });
    const result = await handler(payload, hookCtx);
    if (isRejection(result)) return { rejected: true, reason: result.reason, payload: Buffer.alloc(0) };
    return { payload: result === undefined ? Buffer.alloc(0) : jsonBytes(result), rejected: false, reason: '' };
  };

  /** One call of a hook stream, answered with its response or its failure's message and code. */
  const streamCall = (msg: RunHookStreamRequest__Output): Promise<HookStreamAnswer> => {
    const req = msg.request;
    if (!req) return Promise.resolve({ call_id: msg.call_id, error: 'RunHookStreamRequest has no request' });
    return runHook(req).then(
      (response) => streamAnswer(msg.call_id, response, serve.maxMessageBytes),
      (err: unknown) => {
        const { code, details } = toStatus(err);
        return { call_id: msg.call_id, error: details, error_code: code };
      },
    );
  };

  const partBytes = bodyPartBytes(serve.maxMessageBytes);
  // One handler for every exchange: the activation is looked up per request, since one
  // ServeHTTPStream outlives an activation.
  const httpHandler: HttpHandler = {
    async handle(request, head) {
      const { ctx } = needActive();
      const httpCtx = Object.assign(Object.create(ctx) as PluginContext<never, SettingsMap>, { userId: head.user_id, remoteAddr: head.remote_addr });
      return def.serveHTTP!(request, httpCtx);
    },
    onError: (err) => (active?.ctx.log ?? serve.log).error('serveHTTP failed', { error: err.stack ?? err.message }),
    settle: () => pending.settle(),
  };

  const implementation: HooksHandlers = {
    Implemented: unary<Empty, ImplementedResponse>(async () => implemented),
    OnActivate: unary<OnActivateRequest__Output, Empty>(async (req) => {
      const conn = await serve.broker.dial(req.api_broker_id);
      const streamed = req.api_features.includes(API_STREAM_FEATURE);
      const { api, close: closeApi } = createApi<never, SettingsMap>(conn.client(contract().API) as APIClient, serve.log, pending, serve.maxMessageBytes, streamed);
      const config = parseJsonBytes<SettingsMap>(req.configuration, {});
      const ctx = {
        api: api as PluginApi<never, SettingsMap>,
        log: api.log,
        pluginId: req.plugin_id,
        manifest: parseJsonBytes<Manifest>(req.manifest, {} as Manifest),
        hostVersion: req.host_version,
        config,
      };
      active?.closeApi('the plugin was activated again');
      active?.conn.close();
      active = { ctx, conn, closeApi };
      try {
        await def.onActivate?.(ctx);
      } catch (err) {
        active = undefined;
        closeApi('activation failed');
        conn.close();
        throw err;
      }
      return {};
    }),
    OnDeactivate: unary<Empty, Empty>(async () => {
      const a = needActive();
      try {
        await def.onDeactivate?.(a.ctx);
      } finally {
        a.closeApi('the plugin was deactivated');
      }
      return {};
    }),
    OnConfigurationChange: unary<OnConfigurationChangeRequest__Output, Empty>(async (req) => {
      const a = needActive();
      const config = parseJsonBytes<SettingsMap>(req.configuration, {});
      await def.onConfigurationChange?.(config, a.ctx);
      a.ctx.config = config;
      return {};
    }),
    RunHook: unary<RunHookRequest__Output, RunHookResponse>(runHook),
    RunHookStream: (call) => {
      // The host half-closes at a stop: answer what is in flight, then end.
      let inFlight = 0;
      let ended = false;
      const done = (res: RunHookStreamResponse) =>
        void pending.settle().then(() => {
          call.write(res);
          if (--inFlight === 0 && ended) call.end();
        });
      call.on('error', () => undefined);
      call.on('end', () => {
        ended = true;
        if (inFlight === 0) call.end();
      });
      call.on('data', (msg: RunHookStreamRequest__Output) => {
        inFlight++;
        void streamCall(msg).then(done);
      });
    },
    RunHookBatchStream: (call) => {
      const limit = serve.maxMessageBytes;
      const answers = new StreamAnswers(call as unknown as grpc.ServerDuplexStream<unknown, Buffer>, limit, (callId, bytes) =>
        encodeHookAnswer({ call_id: String(callId), error: tooLargeMessage(bytes, limit), error_code: grpc.status.RESOURCE_EXHAUSTED }),
      );
      // Read by decodeHookCalls (the service definition below): the calls themselves.
      call.on('data', (calls: RunHookStreamRequest__Output[]) => {
        for (const c of calls) {
          answers.begin();
          void streamCall(c).then((res) => pending.settle().then(() => answers.answer(Number(c.call_id), encodeHookAnswer(res))));
        }
      });
    },
    OnEvent: unary<OnEventRequest__Output, Empty>(async (req) => {
      const { ctx } = needActive();
      const payload = parseJsonBytes<JsonValue>(req.payload, null);
      const eventCtx = Object.assign(Object.create(ctx) as PluginContext<never, SettingsMap>, {
        topic: req.topic,
        sourcePluginId: req.source_plugin_id,
      });
      for (const [pattern, handler] of Object.entries(def.events ?? {}) as Array<[string, EventHandler<never, SettingsMap>]>) {
        if (matchesTopic(pattern, req.topic)) await handler(payload, eventCtx);
      }
      return {};
    }),
    ServeHTTP: (call) => {
      const serveHTTP = def.serveHTTP;
      if (!serveHTTP || !active) {
        call.destroy(statusError(serveHTTP ? grpc.status.FAILED_PRECONDITION : grpc.status.UNIMPLEMENTED, 'ServeHTTP is not available'));
        return;
      }
      serveHttpCall(call, httpHandler, partBytes);
    },
    ServeHTTPStream: (call) => {
      if (!def.serveHTTP) {
        call.destroy(statusError(grpc.status.UNIMPLEMENTED, 'ServeHTTPStream is not available: the plugin serves no HTTP'));
        return;
      }
      serveHttpStream(call, httpHandler, { windowBytes: serve.flowControlWindowBytes, maxMessageBytes: serve.maxMessageBytes, socketDir: serve.socketDir });
    },
  };
  return { definition: withRawAnswers(contract().Hooks.service, 'RunHookBatchStream', decodeHookCalls), implementation: implementation as unknown as grpc.UntypedServiceImplementation };
}

/**
 * The stream's answer to one call. A response over the message limit would
 * end the stream, and every call on it: that call fails alone instead, with
 * RESOURCE_EXHAUSTED naming the limit, as unary RunHook would fail it.
 */
function streamAnswer(callId: string, response: RunHookResponse, limit: number): HookStreamAnswer {
  // At least the encoded size: payload bytes, reason at UTF-8's most, and the tags, lengths and call id.
  const size = (response.payload?.length ?? 0) + 3 * (response.reason?.length ?? 0) + 32;
  if (size <= limit) return { call_id: callId, response };
  return { call_id: callId, error: `the hook's response is larger than ${limit} bytes, the message size limit`, error_code: grpc.status.RESOURCE_EXHAUSTED };
}


function toStatus(err: unknown): grpc.ServiceError {
  if (err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'number' && 'details' in err) return err as grpc.ServiceError;
  const message = err instanceof Error ? err.message : String(err);
  return statusError(grpc.status.UNKNOWN, message || 'the plugin handler failed');
}
