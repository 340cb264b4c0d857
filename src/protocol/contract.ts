/**
 * The plughost contract (proto/plughost/v1): the Hooks service plugins serve
 * and the API service the host serves back over the broker. Shared by the
 * runtime and the SDK.
 */
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType as ApiProto } from '../gen/api';
import type { ProtoGrpcType as HooksProto } from '../gen/hooks';
import { ownProtos } from './proto';

export type HooksCtor = HooksProto['plughost']['v1']['Hooks'];
export type ApiCtor = ApiProto['plughost']['v1']['API'];
export type { HooksClient } from '../gen/plughost/v1/Hooks';
export type { APIClient } from '../gen/plughost/v1/API';

/** What a plugin may list in ImplementedResponse.methods: Hooks methods, and "HTTPSideChannel" (a capability of ServeHTTPStream, side-channel.ts). */
export const LIFECYCLE_METHODS = ['OnActivate', 'OnDeactivate', 'OnConfigurationChange', 'ServeHTTP', 'ServeHTTPStream', 'RunHookStream', 'RunHookBatchStream', 'OnEvent', 'HTTPSideChannel'] as const;
export type LifecycleMethod = (typeof LIFECYCLE_METHODS)[number];

let loaded: { Hooks: HooksCtor; API: ApiCtor } | undefined;

export function contract(): { Hooks: HooksCtor; API: ApiCtor } {
  if (!loaded) {
    const pkg = ownProtos() as unknown as HooksProto & ApiProto;
    loaded = { Hooks: pkg.plughost.v1.Hooks, API: pkg.plughost.v1.API };
  }
  return loaded;
}

/** A grpc-js client's unary method in its (request, options, callback) form. */
export type UnaryMethod<Req, Res> = (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

/** A unary call as a promise, with a deadline in ms from now. */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

/** A gRPC status error whose details are `message`, as a plugin's or the host's handlers answer with and callers read (`details`). */
export function statusError(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}

/** JSON to the bytes a contract field carries. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value === undefined ? null : value));
}

/** Bytes of a JSON field back to a value; empty bytes give `fallback`. */
export function parseJsonBytes<T>(bytes: Buffer | Uint8Array | undefined, fallback: T): T {
  if (!bytes || bytes.length === 0) return fallback;
  // A view, not Buffer.from(bytes), which copies a Buffer: the payload is read once, here.
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T;
}
