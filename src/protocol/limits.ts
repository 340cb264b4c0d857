/**
 * The gRPC message size limit, one number for every connection of a plugin:
 * the host's channel to the plugin, the plugin's server, and both directions
 * of the broker. The host chooses it (PluginClientOptions.maxMessageBytes) and
 * tells the plugin through PLUGHOST_MAX_MESSAGE_BYTES, so both ends of each
 * connection refuse the same sizes. grpc-js would otherwise receive at most
 * 4 MiB; go-plugin lifts its limits to math.MaxInt32.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors, type PlughostError } from '../errors';

/**
 * 64 MiB: sixteen times grpc-js's 4 MiB, room for documents and images in a
 * hook or API payload, while a runaway or hostile peer still cannot make
 * either side buffer a near-2 GiB message (grpc-js holds each message whole in
 * memory, and plughost then parses it as JSON).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** go-plugin's own value (math.MaxInt32), the most a gRPC length prefix can say. */
export const MAX_MESSAGE_BYTES_CEILING = 2 ** 31 - 1;
/** Set by the host in the plugin's environment; read by servePlugin, which uses the default when it is absent (go-plugin hosts). */
export const MAX_MESSAGE_BYTES_ENV = 'PLUGHOST_MAX_MESSAGE_BYTES';

/** Refuses a limit that is not a whole number of bytes from 1 to 2^31-1; `source` names where it came from. */
export function checkMaxMessageBytes(value: number, source: string): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_MESSAGE_BYTES_CEILING) {
    throw Errors.BAD_MESSAGE_LIMIT(source, String(value), MAX_MESSAGE_BYTES_CEILING);
  }
  return value;
}

/** An option's value, or the default when it is not set; checked either way. */
export function resolveMaxMessageBytes(value: number | undefined, source = 'maxMessageBytes'): number {
  return checkMaxMessageBytes(value ?? DEFAULT_MAX_MESSAGE_BYTES, source);
}

/** The limit a plugin was given by its host, or the default when the host set none. */
export function maxMessageBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[MAX_MESSAGE_BYTES_ENV];
  if (raw === undefined || raw === '') return DEFAULT_MAX_MESSAGE_BYTES;
  if (!/^\d+$/.test(raw)) throw Errors.BAD_MESSAGE_LIMIT(MAX_MESSAGE_BYTES_ENV, raw, MAX_MESSAGE_BYTES_CEILING);
  return checkMaxMessageBytes(Number(raw), MAX_MESSAGE_BYTES_ENV);
}

/** grpc-js options that apply `maxBytes` to both directions; valid for channels and servers alike. */
export function messageSizeOptions(maxBytes: number): grpc.ChannelOptions {
  return { 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes };
}

/**
 * The catalog error for a call that failed because a message was over the
 * limit on either side, else null. grpc-js and grpc-go word it several ways
 * ("Received message larger than max (N vs M)", "Attempted to send message
 * with a size larger than M", "trying to send message larger than max"), all
 * under RESOURCE_EXHAUSTED.
 */
export function messageTooLarge(err: unknown, call: string, limit: number): PlughostError | null {
  const e = err as Partial<grpc.ServiceError> | undefined;
  if (e?.code !== grpc.status.RESOURCE_EXHAUSTED) return null;
  const text = e.details || e.message || '';
  if (!/larger than/i.test(text)) return null;
  const sizes = /\((\d+) vs\.? (\d+)\)/.exec(text);
  const size = sizes ? Number(sizes[1]) : null;
  // The side that refused may have a different limit (a go-plugin peer, a host with another setting): report the one it applied.
  const applied = sizes ? Number(sizes[2]) : Number(/larger than (\d+)/.exec(text)?.[1] ?? limit);
  return Errors.MESSAGE_TOO_LARGE(call, size, applied, limit, text);
}
