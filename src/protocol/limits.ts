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
  const raw = fromEnv(env, MAX_MESSAGE_BYTES_ENV, () => Errors.BAD_MESSAGE_LIMIT(MAX_MESSAGE_BYTES_ENV, env[MAX_MESSAGE_BYTES_ENV]!, MAX_MESSAGE_BYTES_CEILING));
  return raw === undefined ? DEFAULT_MAX_MESSAGE_BYTES : checkMaxMessageBytes(raw, MAX_MESSAGE_BYTES_ENV);
}

/**
 * 8 MiB: the HTTP/2 flow-control window (per stream and per connection) on
 * both ends of a plugin's connection, and the credit window each side of
 * ServeHTTPStream keeps open per exchange. HTTP/2's default of 64 KiB costs a
 * round trip between the processes per 64 KiB of body, with both sides idle
 * meanwhile; grpc-js has no BDP probing to grow it (grpc-go and grpc-core do).
 * The cost is memory: a peer may send this much that is not read yet.
 */
export const DEFAULT_FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;
/** HTTP/2's own default window; also what every ServeHTTPStream exchange starts with in each direction. */
export const MIN_FLOW_CONTROL_WINDOW_BYTES = 65_536;
/** The largest window HTTP/2 can express. */
export const MAX_FLOW_CONTROL_WINDOW_BYTES = 2 ** 31 - 1;
/** Set by the host in the plugin's environment, beside MAX_MESSAGE_BYTES_ENV. */
export const FLOW_CONTROL_WINDOW_ENV = 'PLUGHOST_FLOW_CONTROL_WINDOW_BYTES';

/** Refuses a window that is not a whole number of bytes within HTTP/2's range; `source` names where it came from. */
export function checkFlowControlWindow(value: number, source: string): number {
  if (!Number.isInteger(value) || value < MIN_FLOW_CONTROL_WINDOW_BYTES || value > MAX_FLOW_CONTROL_WINDOW_BYTES) {
    throw Errors.BAD_FLOW_CONTROL_WINDOW(source, String(value), MIN_FLOW_CONTROL_WINDOW_BYTES, MAX_FLOW_CONTROL_WINDOW_BYTES);
  }
  return value;
}

/** An option's window, or the default when it is not set; checked either way. */
export function resolveFlowControlWindow(value: number | undefined, source = 'flowControlWindowBytes'): number {
  return checkFlowControlWindow(value ?? DEFAULT_FLOW_CONTROL_WINDOW_BYTES, source);
}

/** The window a plugin was given by its host, or the default when the host set none. */
export function flowControlWindowFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = fromEnv(env, FLOW_CONTROL_WINDOW_ENV, () =>
    Errors.BAD_FLOW_CONTROL_WINDOW(FLOW_CONTROL_WINDOW_ENV, env[FLOW_CONTROL_WINDOW_ENV]!, MIN_FLOW_CONTROL_WINDOW_BYTES, MAX_FLOW_CONTROL_WINDOW_BYTES));
  return raw === undefined ? DEFAULT_FLOW_CONTROL_WINDOW_BYTES : checkFlowControlWindow(raw, FLOW_CONTROL_WINDOW_ENV);
}

/** The largest body part of plugin HTTP: 1 MiB, or a quarter of a smaller message limit (never below 16 KiB). */
export function bodyPartBytes(maxMessageBytes: number): number {
  return Math.max(16 * 1024, Math.min(BODY_PART_BYTES, Math.floor(maxMessageBytes / 4)));
}
/** Large enough that a part costs little beside its bytes, small enough to interleave exchanges. */
const BODY_PART_BYTES = 1024 * 1024;

/** A whole number from the environment, undefined when unset; `bad` is thrown for anything but digits. */
function fromEnv(env: NodeJS.ProcessEnv, name: string, bad: () => Error): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw bad();
  return Number(raw);
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

/**
 * The longest KV time to live: the store's clock plus this stays an exact integer in JavaScript
 * and a PostgreSQL timestamp. ttl_ms is a uint64 on the wire, so a negative ttl from a plugin
 * arrives as a number near 2^64; every value above this is refused rather than stored as an
 * expiry nobody asked for.
 */
export const MAX_KV_TTL_MS = Number.MAX_SAFE_INTEGER - Date.UTC(3000, 0);

/**
 * A KV write's time to live in whole milliseconds, 0 (no expiry) to MAX_KV_TTL_MS: from the
 * SDK's `ttlMs` option (a number; a fraction rounds up, as the stores round an expiry) or from
 * KVSetRequest.ttl_ms (a decimal string); anything else is KV_BAD_TTL naming the value.
 */
export function checkKvTtl(key: string, ttl: unknown): number {
  const n = typeof ttl === 'string' && /^\d+$/.test(ttl) ? Number(ttl) : ttl === undefined ? 0 : ttl;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_KV_TTL_MS) throw Errors.KV_BAD_TTL(key, ttl, MAX_KV_TTL_MS);
  return Math.ceil(n);
}
