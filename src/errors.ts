/**
 * The one error catalog. Each error has a stable code, the HTTP status it maps
 * to when it reaches the REST API, and a message template that names the
 * offending input and what was expected. Code elsewhere throws these; it never
 * writes its own message for a condition listed here.
 */
import type { StoreContents } from './store/store';

export class PlughostError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PlughostError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** An error factory: `Errors.X(args)` builds the error; `Errors.X.code` is its code for matching. */
export interface ErrorFactory<A extends unknown[]> {
  (...args: A): PlughostError;
  readonly code: string;
  readonly status: number;
}

function define<A extends unknown[]>(
  code: string,
  status: number,
  message: (...args: A) => string,
  details?: (...args: A) => Record<string, unknown>,
): ErrorFactory<A> {
  const full = `PLUGHOST_ERR_${code}`;
  const factory = (...args: A) => new PlughostError(full, status, message(...args), details ? details(...args) : {});
  return Object.assign(factory, { code: full, status });
}

/** True when `err` is a PlughostError made by `factory`. */
export function isError<A extends unknown[]>(err: unknown, factory: ErrorFactory<A>): err is PlughostError {
  return err instanceof PlughostError && err.code === factory.code;
}

/** How users raise the gRPC message size limit (src/protocol/limits.ts). */
const MESSAGE_LIMIT_OPTION =
  'maxMessageBytes (PluginHost defaults.maxMessageBytes, PluginClient and createTestHost option maxMessageBytes; plugins receive it as PLUGHOST_MAX_MESSAGE_BYTES)';
const mib = (bytes: number) => `${+(bytes / 1048576).toFixed(2)} MiB`;
const quote = (s: string, max = 200) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

export const Errors = {
  // ---- protocol: launching and handshaking ----
  CHECKSUM_MISMATCH: define('CHECKSUM_MISMATCH', 500, (path: string, expected: string, actual: string) =>
    `executable ${path} has SHA-256 ${actual}, expected ${expected}; refusing to launch it`),
  SPAWN_FAILED: define('SPAWN_FAILED', 500, (path: string, reason: string) =>
    `could not launch plugin executable ${path}: ${reason}`),
  HANDSHAKE_TIMEOUT: define('HANDSHAKE_TIMEOUT', 504, (ms: number, stderr: string[]) =>
    `plugin sent no handshake line within ${ms} ms${tail(stderr)}`),
  HANDSHAKE_EXITED: define('HANDSHAKE_EXITED', 502, (code: number | null, signal: string | null, stderr: string[]) =>
    `plugin exited before its handshake (${exitText(code, signal)})${tail(stderr)}`),
  HANDSHAKE_COOKIE_REFUSED: define('HANDSHAKE_COOKIE_REFUSED', 502, (key: string, code: number | null, signal: string | null, stderr: string[]) =>
    `plugin refused the magic cookie: it exited (${exitText(code, signal)}) with go-plugin's "This binary is a plugin" message, ` +
    `so the cookie the host set in ${key} did not match what the plugin expects. ` +
    `The plugin and the host must agree on HandshakeConfig (MagicCookieKey and MagicCookieValue)${tail(stderr)}`),
  HANDSHAKE_STDOUT_CLOSED: define('HANDSHAKE_STDOUT_CLOSED', 502, (stderr: string[]) =>
    `plugin closed its stdout without printing a handshake line${tail(stderr)}`),
  HANDSHAKE_BAD_LINE: define('HANDSHAKE_BAD_LINE', 502, (line: string, why: string) =>
    `malformed handshake line ${quote(line)}: ${why}`, (line: string) => ({ line })),
  HANDSHAKE_VERSION: define('HANDSHAKE_VERSION', 502, (line: string, offered: number, supported: number[]) =>
    `handshake line ${quote(line)} chose app protocol version ${offered}, but this host supports only ${supported.join(', ')}`),
  NO_COMMON_VERSION: define('NO_COMMON_VERSION', 502, (offered: number[], supported: number[]) =>
    `no common app protocol version: host offered ${offered.join(', ')}, plugin supports ${supported.join(', ')}`),
  SOCKET_PATH_TOO_LONG: define('SOCKET_PATH_TOO_LONG', 500, (path: string, max: number) =>
    `unix socket path ${quote(path)} is ${Buffer.byteLength(path)} bytes; the limit is ${max}. Use a shorter PLUGIN_UNIX_SOCKET_DIR`),
  PORT_RANGE: define('PORT_RANGE', 500, (min: string, max: string, why: string) =>
    `cannot listen on TCP in PLUGIN_MIN_PORT=${min}..PLUGIN_MAX_PORT=${max}: ${why}`),
  BAD_CLIENT_CERT: define('BAD_CLIENT_CERT', 500, (why: string) =>
    `PLUGIN_CLIENT_CERT is not a usable PEM certificate: ${why}`),
  REATTACH_CONFIG: define('REATTACH_CONFIG', 400, (field: string, expected: string) =>
    `reattach config field "${field}": expected ${expected}`),
  REATTACH_UNREACHABLE: define('REATTACH_UNREACHABLE', 502, (address: string, why: string) =>
    `cannot reattach to plugin at ${address}: ${why}`),
  // ---- protocol: after the handshake ----
  BROKER_DIAL_TIMEOUT: define('BROKER_DIAL_TIMEOUT', 504, (id: number, ms: number) =>
    `broker: no connection info for service id ${id} within ${ms} ms`),
  BROKER_CLOSED: define('BROKER_CLOSED', 502, (why: string) => `broker stream is closed: ${why}`),
  BROKER_BAD_CONN_INFO: define('BROKER_BAD_CONN_INFO', 502, (id: number, network: string, address: string) =>
    `broker: connection info for service id ${id} has network ${quote(network)} and address ${quote(address)}; expected unix or tcp`),
  MESSAGE_TOO_LARGE: define('MESSAGE_TOO_LARGE', 413, (call: string, size: number | null, applied: number, configured: number, grpcText: string) =>
    `${call}: ${size === null ? 'a message' : `a message of ${size} bytes`} is over the gRPC message size limit of ${applied} bytes ` +
    `(${mib(applied)}); ` +
    (applied === configured
      ? `raise it with ${MESSAGE_LIMIT_OPTION}`
      : `that is the other side's own limit, not the configured ${configured} bytes: make the plugin apply PLUGHOST_MAX_MESSAGE_BYTES (docs/protocol.md)`),
    (call: string, size: number | null, applied: number, configured: number, grpcText: string) => ({ size, limit: applied, configured, grpc: grpcText })),
  BAD_MESSAGE_LIMIT: define('BAD_MESSAGE_LIMIT', 400, (source: string, value: string, max: number) =>
    `${source} is ${quote(value)}; expected a whole number of bytes from 1 to ${max}`),
  BAD_FLOW_CONTROL_WINDOW: define('BAD_FLOW_CONTROL_WINDOW', 400, (source: string, value: string, min: number, max: number) =>
    `${source} is ${quote(value)}; expected a whole number of bytes from ${min} to ${max}`),
  PLUGIN_EXITED: define('PLUGIN_EXITED', 502, (code: number | null, signal: string | null) =>
    `plugin process has exited (${exitText(code, signal)})`),
  PLUGIN_UNHEALTHY: define('PLUGIN_UNHEALTHY', 502, (status: string) =>
    `plugin health check answered ${status}, expected SERVING`),
  // ---- runtime ----
  PLUGIN_NOT_FOUND: define('PLUGIN_NOT_FOUND', 404, (id: string) => `no plugin with id ${JSON.stringify(id)} is installed`),
  PLUGIN_EXISTS: define('PLUGIN_EXISTS', 409, (id: string, installed: string, bundle: string, change: 'upgrade' | 'downgrade' | 'same') =>
    change === 'same'
      ? `plugin ${JSON.stringify(id)} ${installed} is already installed and this bundle is the same version; use force (?force=true, plughost plugin add --force) to reinstall it`
      : `plugin ${JSON.stringify(id)}: ${installed} is installed; this bundle is ${bundle} (${change === 'upgrade' ? 'an upgrade' : 'a downgrade'}); use force (?force=true, plughost plugin add --force) to replace it`,
    (id: string, installed: string, bundle: string, change: string) => ({ id, installed_version: installed, bundle_version: bundle, change })),
  PLUGIN_REPLACED: define('PLUGIN_REPLACED', 409, (id: string, version: string) =>
    `plugin ${JSON.stringify(id)} was replaced by version ${version} while the configuration was being saved; read it again and save it against the new version`),
  PLUGIN_BUSY: define('PLUGIN_BUSY', 409, (id: string, what: string) =>
    `plugin ${JSON.stringify(id)} is busy: ${what} is in progress; try again when it is done`),
  PLUGIN_BUNDLE_UNAVAILABLE: define('PLUGIN_BUNDLE_UNAVAILABLE', 500, (id: string, sha256: string, why: string) =>
    `plugin ${JSON.stringify(id)} has no folder in the data dir matching its bundle sha256 ${sha256}, and it could not be placed from the database: ${why}; reinstall the bundle`,
    (id: string, sha256: string) => ({ id, sha256 })),
  PLUGIN_NOT_RUNNING: define('PLUGIN_NOT_RUNNING', 502, (id: string, state: string) =>
    `plugin ${JSON.stringify(id)} is not running (state ${state})`, (id: string, state: string) => ({ id, state })),
  ILLEGAL_TRANSITION: define('ILLEGAL_TRANSITION', 500, (id: string, from: string, to: string, reason: string, why: string) =>
    `internal error: plugin ${JSON.stringify(id)} cannot move from ${from} to ${to} (${reason}): ${why}`,
    (id: string, from: string, to: string, reason: string) => ({ id, from, to, reason })),
  PLUGIN_DISABLED: define('PLUGIN_DISABLED', 503, (id: string, state: string) =>
    `plugin ${JSON.stringify(id)} is disabled, so it serves no requests; enable it with POST /api/v1/plugins/${encodeURIComponent(id)}/enable or \`plughost plugin enable ${id}\``,
    (id: string, state: string) => ({ id, state })),
  HOST_VERSION_UNSATISFIED: define('HOST_VERSION_UNSATISFIED', 400, (id: string, wanted: string, actual: string) =>
    `plugin ${JSON.stringify(id)} needs host version ${wanted}; this host is ${actual}`),
  NO_SERVER_PART: define('NO_SERVER_PART', 400, (id: string, what: string) =>
    `plugin ${JSON.stringify(id)} has no server part, so it cannot ${what}`),
  ACTIVATION_FAILED: define('ACTIVATION_FAILED', 502, (id: string, step: string, why: string) =>
    `plugin ${JSON.stringify(id)} failed to activate during ${step}: ${why}`),
  MEMORY_LIMIT_EXCEEDED: define('MEMORY_LIMIT_EXCEEDED', 502, (limitMb: number, option: string, how: string) =>
    `exceeded its memory limit of ${limitMb} MiB (${option}; raise it there): ${how}`),
  HEAP_OUT_OF_MEMORY: define('HEAP_OUT_OF_MEMORY', 502, (line: string, heapMb: number | null, option: string | null) =>
    `ran out of JavaScript heap (V8 out of memory${heapMb ? `, --max-old-space-size=${heapMb} from ${option}` : ''}): ${line}`),
  OUT_OF_MEMORY: define('OUT_OF_MEMORY', 502, (line: string) => `ran out of memory: ${line}`),
  CGROUP_UNAVAILABLE: define('CGROUP_UNAVAILABLE', 500, (why: string) =>
    `no cgroup for this plugin (${why}): a memory limit is enforced by the RSS watchdog instead, and a descendant that leaves the plugin's process tree and drops its instance marker is not contained`),
  CONNECTION_LOST: define('CONNECTION_LOST', 502, (why: string) =>
    `lost its gRPC connection while its process still runs: ${why}`),
  CONFIG_REJECTED: define('CONFIG_REJECTED', 400, (id: string, why: string) =>
    `plugin ${JSON.stringify(id)} rejected the new configuration: ${why}`),
  HOOK_FAILED: define('HOOK_FAILED', 502, (id: string, hook: string, why: string) =>
    `hook ${hook} of plugin ${JSON.stringify(id)} failed: ${why}`),
  HOOK_TIMEOUT: define('HOOK_TIMEOUT', 504, (id: string, hook: string, ms: number) =>
    `hook ${hook} of plugin ${JSON.stringify(id)} passed its deadline of ${ms} ms (Deadline exceeded)`),
  HOOK_PLUGIN_NOT_RUNNING: define('HOOK_PLUGIN_NOT_RUNNING', 409, (id: string, hook: string, state: string) =>
    `plugin ${JSON.stringify(id)} is not running (state ${state}), so its hook ${JSON.stringify(hook)} cannot be called; ` +
    `enable it first (POST /api/v1/plugins/${encodeURIComponent(id)}/enable or \`plughost plugin enable ${id}\`)`,
    (id: string, hook: string, state: string) => ({ id, hook, state })),
  HOOK_NOT_IMPLEMENTED: define('HOOK_NOT_IMPLEMENTED', 404, (id: string, hook: string) =>
    `plugin ${JSON.stringify(id)} does not implement hook ${JSON.stringify(hook)}`),
  PERMISSION_DENIED: define('PERMISSION_DENIED', 403, (id: string, method: string) =>
    `plugin ${JSON.stringify(id)} may not invoke ${JSON.stringify(method)}: its manifest's "permissions" does not list it`),
  CALL_NOT_PERMITTED: define('CALL_NOT_PERMITTED', 403, (caller: string, target: string, permission: string) =>
    `plugin ${JSON.stringify(caller)} may not call plugin ${JSON.stringify(target)}: its manifest lacks the permission ${JSON.stringify(permission)}; add it to "permissions"`),
  TOPIC_RESERVED: define('TOPIC_RESERVED', 403, (id: string, topic: string, prefix: string) =>
    `plugin ${JSON.stringify(id)} may not publish on ${JSON.stringify(topic.slice(0, 200))}: topics starting with ${JSON.stringify(prefix)} are published only by the host`),
  API_METHOD_UNKNOWN: define('API_METHOD_UNKNOWN', 404, (method: string) => `the host has no API method ${JSON.stringify(method)}`),
  KV_BAD_KEY: define('KV_BAD_KEY', 400, (key: string) =>
    `KV key ${JSON.stringify(key.slice(0, 80))} is invalid: expected 1-256 bytes of UTF-8`),
  KV_BAD_TTL: define('KV_BAD_TTL', 400, (key: string, ttl: unknown, max: number) =>
    `KV set of ${JSON.stringify(key.slice(0, 80))}: ttlMs ${typeof ttl === 'number' || (typeof ttl === 'string' && /^\d+$/.test(ttl)) ? String(ttl) : JSON.stringify(ttl) ?? String(ttl)} is invalid; expected milliseconds from 0 (no expiry) to ${max}` +
    (Number(ttl) >= 2 ** 63 ? ' (a negative ttl_ms written into the uint64 field arrives this large)' : '')),
  KV_VALUE_TOO_LARGE: define('KV_VALUE_TOO_LARGE', 413, (key: string, size: number, max: number) =>
    `KV value for ${JSON.stringify(key.slice(0, 80))} is ${size} bytes; the limit is ${max}`),
  BAD_API_REQUEST: define('BAD_API_REQUEST', 400, (field: string, expected: string) =>
    `API request field "${field}": expected ${expected}`),
  HOST_CLOSED: define('HOST_CLOSED', 503, () => 'the plugin host is closed'),
  LOCK_TOKEN_STALE: define('LOCK_TOKEN_STALE', 412, (pluginId: string, name: string, token: number, why: string) =>
    `lock ${quote(name)} of plugin ${JSON.stringify(pluginId)}: token ${token} is stale (${why}); the lease is lost, acquire the lock again`),
  CLUSTER_LOCK_TIMEOUT: define('CLUSTER_LOCK_TIMEOUT', 503, (name: string, waitedMs: number) =>
    `the cluster lock ${quote(name)} was held by another node for all of ${waitedMs} ms; a node that died frees it after its TTL: try again`),
  JOB_PERIOD_NOT_CURRENT: define('JOB_PERIOD_NOT_CURRENT', 412, (pluginId: string, name: string, period: number, current: number) =>
    `job ${quote(name)} of plugin ${JSON.stringify(pluginId)}: period ${period} cannot be claimed; the current period by the store's clock is ${current} (only ${current - 1} to ${current + 1} may be claimed)`),
  INSPECT_NOT_ALLOWED: define('INSPECT_NOT_ALLOWED', 403, (id: string) =>
    `plugin ${JSON.stringify(id)} cannot start under the inspector: this server does not allow it; start it with --allow-inspect (a development server only)`),
  INSPECT_BAD: define('INSPECT_BAD', 400, (id: string, given: string, why: string) =>
    `inspect ${quote(given, 80)} for plugin ${JSON.stringify(id)}: ${why}`),
  HOST_BAD_OPTION: define('HOST_BAD_OPTION', 400, (name: string, value: unknown, expected: string) =>
    `plugin host option ${name} is ${JSON.stringify(value) ?? String(value)}; expected ${expected}`),
  NODE_ID_INVALID: define('NODE_ID_INVALID', 400, (value: string, source: string, rule: string) =>
    `node id ${quote(value, 80)} (from ${source}) is invalid: expected ${rule}`, (value: string, source: string) => ({ node_id: value.slice(0, 80), source })),
  // ---- server ----
  AUTH_MISSING: define('AUTH_MISSING', 401, () => 'missing admin token: send "Authorization: Bearer <token>"'),
  AUTH_WRONG: define('AUTH_WRONG', 403, () => 'the admin token is not valid'),
  AUTH_THROTTLED: define('AUTH_THROTTLED', 429, (failures: number, windowMs: number, retryAfterS: number) =>
    `too many failed authentications from this address (${failures} within ${windowMs / 1000} s, the authThrottle limit); retry after ${retryAfterS} s`,
  (_failures: number, _windowMs: number, retryAfterS: number) => ({ retry_after_s: retryAfterS })),
  ADMIN_TOKEN_TOO_SHORT: define('ADMIN_TOKEN_TOO_SHORT', 400, (source: string, length: number, min: number) =>
    `the admin token from ${source} is ${length} characters; at least ${min} are required, so it cannot be guessed. ` +
    'Unset it to have one generated, or make one with: openssl rand -base64 32'),
  UPLOAD_TOO_LARGE: define('UPLOAD_TOO_LARGE', 413, (what: string, limit: number) =>
    `${what} is larger than the limit of ${limit} bytes (${Math.round(limit / 1048576)} MiB)`),
  UPLOAD_MISSING: define('UPLOAD_MISSING', 400, (field: string) =>
    `no bundle in the request: send a multipart field "${field}" or an application/gzip body`),
  UPLOAD_BAD_CONTENT_TYPE: define('UPLOAD_BAD_CONTENT_TYPE', 415, (got: string) =>
    `content type ${JSON.stringify(got)} is not accepted here; expected multipart/form-data or application/gzip`),
  UPLOAD_NO_BOUNDARY: define('UPLOAD_NO_BOUNDARY', 400, () =>
    'the multipart/form-data body has no boundary: send Content-Type "multipart/form-data; boundary=..." (curl -F and FormData add it)'),
  UPLOAD_INCOMPLETE: define('UPLOAD_INCOMPLETE', 400, (why: string) => `the upload did not complete: ${why}`),
  BAD_BODY: define('BAD_BODY', 400, (why: string) => `bad request body: ${why}`),
  BAD_URL: define('BAD_URL', 400, (url: string, why: string) => `URL ${JSON.stringify(url.slice(0, 300))} is not accepted: ${why}`),
  DOWNLOAD_FAILED: define('DOWNLOAD_FAILED', 502, (url: string, why: string) => `downloading ${url.slice(0, 300)} failed: ${why}`),
  URL_ADDRESS_REFUSED: define('URL_ADDRESS_REFUSED', 400, (url: string, hostname: string, address: string, kind: string) =>
    `URL ${JSON.stringify(url.slice(0, 300))} is not fetched: ${hostname === address ? address : `${hostname} resolves to ${address}, which`} is in the ${kind} range; ` +
    'internal addresses are refused unless the host allows them (installFromUrl.allowHosts, plughost serve --allow-url-host)',
  (_url: string, hostname: string, address: string, kind: string) => ({ hostname, address, address_class: kind })),
  DOWNLOAD_NOT_BUNDLE: define('DOWNLOAD_NOT_BUNDLE', 400, (url: string, contentType: string, size: number) =>
    `the response from ${url.slice(0, 300)} is not a gzip bundle (content-type ${contentType}, ${size} bytes)`,
  (_url: string, contentType: string, size: number) => ({ content_type: contentType, size })),
  BAD_ALLOW_HOST: define('BAD_ALLOW_HOST', 400, (entry: string, why: string) =>
    `installFromUrl.allowHosts entry ${JSON.stringify(entry.slice(0, 200))} is not valid: ${why}`),
  NOT_FOUND: define('NOT_FOUND', 404, (what: string) => `${what} was not found`),
  REQUEST_TIMEOUT: define('REQUEST_TIMEOUT', 408, (headersMs: number, requestMs: number) =>
    `the request did not arrive in time: its head must arrive within ${headersMs} ms and the whole request within ${requestMs} ms ` +
    '(server options connections.headersTimeoutMs and connections.requestTimeoutMs)'),
  HEADERS_TOO_LARGE: define('HEADERS_TOO_LARGE', 431, () =>
    "the request's head is larger than the server accepts (Node's --max-http-header-size, 16 KiB by default)"),
  BAD_HTTP: define('BAD_HTTP', 400, (reason: string) => `the request is not valid HTTP/1.1: ${reason}`, (reason: string) => ({ reason })),
  BAD_REQUEST_PATH: define('BAD_REQUEST_PATH', 400, (why: string) => `the request path is not accepted: ${why}`),
  REQUEST_PATH_TOO_LONG: define('REQUEST_PATH_TOO_LONG', 414, (max: number) =>
    `a segment of the request path is longer than ${max} characters; plugin ids are at most 190`),
  RANGE_NOT_SATISFIABLE: define('RANGE_NOT_SATISFIABLE', 416, (file: string, range: string, size: number) =>
    `the range ${quote(range)} is outside static file ${quote(file)}, which is ${size} bytes`),
  PRECONDITION_FAILED: define('PRECONDITION_FAILED', 412, (file: string) =>
    `static file ${quote(file)} no longer matches the request's If-Match or If-Unmodified-Since`),
  EVENTS_TICKET_INVALID: define('EVENTS_TICKET_INVALID', 403, () =>
    'the event stream ticket is unknown, used or expired: POST /api/v1/events/ticket for a new one'),
  WEBAPP_FORBIDDEN: define('WEBAPP_FORBIDDEN', 403, () => "this request may not read the plugins' client bundles"),
  USER_TOKEN_INVALID: define('USER_TOKEN_INVALID', 401, (why: string) =>
    `the bearer token of this request is not a valid user token: ${why}; send an HS256 JWT signed with the server's secret (plughost serve --jwt-secret-file), or no Authorization header to be anonymous`),
  JWT_SECRET_TOO_SHORT: define('JWT_SECRET_TOO_SHORT', 400, (source: string, length: number, min: number) =>
    `the JWT secret from ${source} is ${length} bytes; HS256 needs at least ${min} (e.g. openssl rand -base64 48 > jwt.secret)`),
  // ---- manifest ----
  MANIFEST_NOT_FOUND: define('MANIFEST_NOT_FOUND', 400, (dir: string) =>
    `no manifest in ${quote(dir)}: expected one of plugin.json, plugin.yaml, plugin.yml`),
  MANIFEST_AMBIGUOUS: define('MANIFEST_AMBIGUOUS', 400, (dir: string, names: string[]) =>
    `${quote(dir)} holds more than one manifest (${names.join(', ')}); keep exactly one`, (dir: string, names: string[]) => ({ names })),
  MANIFEST_TOO_LARGE: define('MANIFEST_TOO_LARGE', 413, (file: string, size: number, max: number) =>
    `manifest ${quote(file)} is ${size} bytes; the limit is ${max}`),
  MANIFEST_SYNTAX: define('MANIFEST_SYNTAX', 400, (file: string, why: string) =>
    `manifest ${quote(file)} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${why}`),
  MANIFEST_ALIAS_LIMIT: define('MANIFEST_ALIAS_LIMIT', 400, (file: string, max: number) =>
    `manifest ${quote(file)} expands YAML aliases more than ${max} times (an alias bomb?); refusing it`),
  MANIFEST_FORBIDDEN_KEY: define('MANIFEST_FORBIDDEN_KEY', 400, (file: string, path: string, key: string) =>
    `manifest ${quote(file)} has the key ${quote(key)} at ${path || '(root)'}; __proto__, constructor and prototype are refused`),
  MANIFEST_INVALID: define('MANIFEST_INVALID', 400, (file: string, problems: FieldProblem[]) =>
    `manifest ${quote(file)} is invalid:${problemList(problems)}`, (file: string, problems: FieldProblem[]) => ({ problems })),
  CONFIG_INVALID: define('CONFIG_INVALID', 400, (problems: FieldProblem[]) =>
    `configuration does not match the settings schema:${problemList(problems)}`, (problems: FieldProblem[]) => ({ problems })),
  NO_EXECUTABLE_FOR_PLATFORM: define('NO_EXECUTABLE_FOR_PLATFORM', 400, (id: string, key: string, available: string[]) =>
    `plugin ${quote(id)} has no server executable for ${key}; it has ${available.length ? available.join(', ') : 'none'}`),
  // ---- bundle ----
  BUNDLE_TOO_LARGE: define('BUNDLE_TOO_LARGE', 413, (bundle: string, size: number, max: number) =>
    `bundle ${quote(bundle)} is over the compressed size limit: ${size} bytes read, the limit is ${max}`),
  BUNDLE_UNCOMPRESSED_TOO_LARGE: define('BUNDLE_UNCOMPRESSED_TOO_LARGE', 413, (entry: string, inflated: number, max: number) =>
    `bundle inflates past the uncompressed limit of ${max} bytes (stopped at ${inflated} bytes, in entry ${quote(entry)})`,
    (entry: string, inflated: number, max: number) => ({ entry, inflated, max })),
  BUNDLE_TOO_MANY_ENTRIES: define('BUNDLE_TOO_MANY_ENTRIES', 413, (entry: string, max: number) =>
    `bundle has more than ${max} entries (entry ${quote(entry)} is one too many)`),
  BUNDLE_FILE_TOO_LARGE: define('BUNDLE_FILE_TOO_LARGE', 413, (entry: string, size: number, max: number) =>
    `bundle entry ${quote(entry)} is ${size} bytes; the per-file limit is ${max}`),
  BUNDLE_NOT_GZIP: define('BUNDLE_NOT_GZIP', 400, (bundle: string, why: string) =>
    `bundle ${quote(bundle)} is not a gzip-compressed tar (.tar.gz): ${why}`),
  BUNDLE_CORRUPT: define('BUNDLE_CORRUPT', 400, (bundle: string, why: string) =>
    `bundle ${quote(bundle)} is damaged: ${why}`),
  BUNDLE_UNSAFE_PATH: define('BUNDLE_UNSAFE_PATH', 400, (entry: string, rule: string) =>
    `bundle entry ${quote(entry)} is refused: ${rule}`, (entry: string, rule: string) => ({ entry, rule })),
  BUNDLE_UNSUPPORTED_ENTRY: define('BUNDLE_UNSUPPORTED_ENTRY', 400, (entry: string, kind: string) =>
    `bundle entry ${quote(entry)} is a ${kind}; only regular files and folders are allowed`, (entry: string, kind: string) => ({ entry, kind })),
  BUNDLE_DUPLICATE_ENTRY: define('BUNDLE_DUPLICATE_ENTRY', 400, (entry: string, normalized: string) =>
    `bundle entry ${quote(entry)} repeats the path ${quote(normalized)} of an earlier entry; each path may appear once`),
  BUNDLE_NO_MANIFEST: define('BUNDLE_NO_MANIFEST', 400, (bundle: string, found: string[]) =>
    `bundle ${quote(bundle)} has no manifest at its root or inside exactly one top-level folder` +
    (found.length ? `; manifests found at ${found.join(', ')}` : '; expected plugin.json, plugin.yaml or plugin.yml')),
  BUNDLE_MISSING_FILE: define('BUNDLE_MISSING_FILE', 400, (field: string, file: string) =>
    `manifest field ${field} names ${quote(file)}, which is not a regular file in the plugin folder`),
  BUNDLE_DEST_EXISTS: define('BUNDLE_DEST_EXISTS', 409, (dest: string) =>
    `destination ${quote(dest)} already exists; remove it first or extract elsewhere`),
  PACK_UNSUPPORTED_FILE: define('PACK_UNSUPPORTED_FILE', 400, (file: string, kind: string) =>
    `cannot pack ${quote(file)}: it is a ${kind}; bundles hold only regular files and folders`),
  PACK_IGNORES_NEEDED_FILE: define('PACK_IGNORES_NEEDED_FILE', 400, (file: string, why: string, pattern: string, source: string) =>
    source === 'pack.ignore'
      ? `pack.ignore pattern ${quote(pattern)} leaves out ${quote(file)} (${why}); narrow the pattern`
      : `cannot pack ${quote(file)} (${why}): bundles never hold a path matching ${quote(pattern)}; rename it`),
  // ---- authoring: plughost init and plughost types ----
  INIT_DIR_NOT_EMPTY: define('INIT_DIR_NOT_EMPTY', 409, (dir: string, found: string[]) =>
    `${quote(dir)} is not empty (it holds ${found.slice(0, 5).map((f) => quote(f)).join(', ')}${found.length > 5 ? `, and ${found.length - 5} more` : ''}); ` +
    'choose a new or empty folder, or pass --force to write the project over what is there'),
  SETTINGS_TYPES_HAND_WRITTEN: define('SETTINGS_TYPES_HAND_WRITTEN', 409, (file: string) =>
    `${quote(file)} exists and was not written by plughost types (its first line is not the generated header); ` +
    'move it away or write the type elsewhere with --out'),
  SETTINGS_TYPES_STALE: define('SETTINGS_TYPES_STALE', 409, (file: string, manifest: string, how: string, missing: boolean) =>
    `${quote(file)} ${missing ? 'is missing' : `does not match the settings_schema of ${quote(manifest)}`}; run ${how} to write it`),
  BUNDLE_UNSIGNED: define('BUNDLE_UNSIGNED', 401, (bundle: string, sigPath: string) =>
    `bundle ${quote(bundle)} is unsigned (no ${quote(sigPath)}) and signatures are required`),
  BUNDLE_SIGNATURE_MALFORMED: define('BUNDLE_SIGNATURE_MALFORMED', 400, (sig: string, why: string) =>
    `signature ${quote(sig)} is not an Ed25519 signature: ${why}; expected 64 raw bytes or their base64`),
  BUNDLE_SIGNATURE_UNTRUSTED: define('BUNDLE_SIGNATURE_UNTRUSTED', 403, (bundle: string, keyCount: number) =>
    keyCount === 0
      ? `bundle ${quote(bundle)} cannot be verified: no trusted public keys are configured`
      : `signature of bundle ${quote(bundle)} verifies under none of the ${keyCount} trusted key(s): the bundle was changed after signing, or signed by a key that is not trusted`),
  BAD_KEY: define('BAD_KEY', 400, (source: string, expected: string, why: string) =>
    `key ${quote(source)} is not ${expected}: ${why}`),
  // ---- store ----
  STORE_UNKNOWN_PLUGIN: define('STORE_UNKNOWN_PLUGIN', 404, (id: string) =>
    `no plugin with id ${quote(id)} is installed`, (id: string) => ({ id })),
  STORE_VERSION_TOO_NEW: define('STORE_VERSION_TOO_NEW', 500, (file: string, found: number, known: number) =>
    `database ${quote(file)} has schema version ${found}, but this plughost knows versions up to ${known}; ` +
    'it was written by a newer plughost: upgrade plughost or point it at another data directory'),
  STORE_OPEN_FAILED: define('STORE_OPEN_FAILED', 500, (file: string, why: string) =>
    `cannot open the SQLite database ${quote(file)}: ${why}`),
  STORE_CLOSED: define('STORE_CLOSED', 500, (file: string, method: string) =>
    `store ${quote(file)} is closed; ${method}() was called after close()`),
  STORE_UNAVAILABLE: define('STORE_UNAVAILABLE', 503, (where: string, why: string) =>
    `the database ${where} cannot be used right now: ${why}`),
  STORE_BUNDLE_MISMATCH: define('STORE_BUNDLE_MISMATCH', 400, (expected: string, actual: string, size: number) =>
    `bundle bytes to store as sha256 ${expected} hash to ${actual} (${size} bytes); nothing was stored`,
    (expected: string, actual: string, size: number) => ({ expected, actual, size })),
  STORE_BUNDLE_CORRUPT: define('STORE_BUNDLE_CORRUPT', 500, (sha256: string, why: string) =>
    `the stored bundle sha256 ${sha256} is corrupt: ${why}; reinstall the bundle to store it again`,
    (sha256: string) => ({ sha256 })),
  STORE_BATCH_ROLLED_BACK: define('STORE_BATCH_ROLLED_BACK', 500, (database: string, why: string) =>
    `the database ${quote(database)} rolled back a transaction of batched KV calls, so nothing this call wrote was kept: ${why}; make the call again`),
  STORE_BAD_ARGUMENT: define('STORE_BAD_ARGUMENT', 400, (name: string, value: unknown, expected: string) =>
    `store argument ${name} is ${JSON.stringify(value) ?? String(value)}; expected ${expected}`),
  // ---- provisioning ----
  PROVISION_READ_FAILED: define('PROVISION_READ_FAILED', 400, (file: string, why: string) =>
    `cannot read the provisioning file ${quote(file)}: ${why}`),
  PROVISION_SYNTAX: define('PROVISION_SYNTAX', 400, (file: string, why: string) =>
    `provisioning file ${quote(file)} is not valid YAML or JSON: ${why}`),
  PROVISION_INVALID: define('PROVISION_INVALID', 400, (file: string, problems: FieldProblem[]) =>
    `provisioning file ${quote(file)} has ${problems.length} problem(s):${problemList(problems)}`, (_file: string, problems: FieldProblem[]) => ({ problems })),
  PROVISION_PLUGIN_UNREADABLE: define('PROVISION_PLUGIN_UNREADABLE', 400, (at: string, source: string, why: string) =>
    `${at} (${quote(source)}): ${why}`),
  PROVISION_DUPLICATE_ID: define('PROVISION_DUPLICATE_ID', 400, (id: string, first: string, second: string) =>
    `${first} and ${second} both declare plugin ${quote(id)}; declare each plugin once`),
  PROVISION_STEP_FAILED: define('PROVISION_STEP_FAILED', 500, (id: string, step: string, why: string) =>
    `provisioning could not ${step} plugin ${quote(id)}: ${why}`),
  // ---- migration (plughost migrate) ----
  STORE_FILE_IN_USE: define('STORE_FILE_IN_USE', 409, (file: string) =>
    `the SQLite database ${quote(file)} is open in another process (a plughost host running on its data dir, or another program): ` +
    'stop it, then try again'),
  MIGRATE_SOURCE_MISSING: define('MIGRATE_SOURCE_MISSING', 400, (file: string) =>
    `there is no SQLite database at ${quote(file)}: give the data dir of the install to move (--data-dir) or its database file (--from)`),
  MIGRATE_BUNDLES_MISSING: define('MIGRATE_BUNDLES_MISSING', 409, (file: string, missing: Array<{ id: string; sha256: string }>) =>
    `${missing.length} plugin(s) have no bundle stored in ${quote(file)}: ` +
    `${missing.map((m) => `${quote(m.id)} (sha256 ${m.sha256})`).join(', ')}; they were installed before plughost kept bundles ` +
    'in its database: install each again (plughost plugin add <bundle> --force), then run plughost migrate again; nothing was copied',
    (_file: string, missing: Array<{ id: string; sha256: string }>) => ({ missing })),
  MIGRATE_TARGET_NOT_EMPTY: define('MIGRATE_TARGET_NOT_EMPTY', 409, (where: string, found: StoreContents) =>
    `the target database ${where} already holds ${countsText(found)}; plughost migrate copies only into a database without ` +
    'plughost data: give it a new database; nothing was copied', (_where: string, found: StoreContents) => ({ ...found })),
  MIGRATE_INTERRUPTED: define('MIGRATE_INTERRUPTED', 500, (why: string) =>
    `the copy was interrupted (${why})`),
  MIGRATE_LEFT_OVER: define('MIGRATE_LEFT_OVER', 500, (left: StoreContents) =>
    `after deleting what was copied the target still holds ${countsText(left)} (did a host start on it during the copy?)`),
  MIGRATE_COPY_FAILED: define('MIGRATE_COPY_FAILED', 500, (where: string, step: string, why: string) =>
    `copying to ${where} failed while ${step}: ${why}; what had been copied was removed again, so the target holds no plughost data`),
  MIGRATE_UNDO_FAILED: define('MIGRATE_UNDO_FAILED', 500, (where: string, step: string, why: string, undoWhy: string) =>
    `copying to ${where} failed while ${step}: ${why}; removing the partial copy failed too: ${undoWhy}; ` +
    'the target may hold part of the copy: empty it (a new database, or DROP its plughost_* tables) before running plughost migrate again'),
  API_MODULE_LOAD_FAILED: define('API_MODULE_LOAD_FAILED', 400, (file: string, source: string, why: string) =>
    `the API module ${quote(file)} (from ${source}) could not be loaded: ${why}`, (file: string, source: string) => ({ file, source })),
  API_MODULE_NOT_API: define('API_MODULE_NOT_API', 400, (file: string, source: string, why: string) =>
    `the API module ${quote(file)} (from ${source}) ${why}; expected its export (module.exports, or export default) to be an object of methods, ` +
    'e.g. module.exports = { getNote: (args, caller) => ... }', (file: string, source: string) => ({ file, source })),
};

/** One validation problem: the dotted field path and what was expected there. */
export interface FieldProblem {
  path: string;
  message: string;
}

function problemList(problems: FieldProblem[]): string {
  return problems.map((p) => `\n  - ${p.path || '(root)'}: ${p.message}`).join('');
}

/** "3 plugin records, 12 KV values and 1 bundle": the counts that are not 0. */
function countsText(c: StoreContents): string {
  const parts = ([[c.plugins, 'plugin record'], [c.kv, 'KV value'], [c.bundles, 'bundle']] as const)
    .filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`);
  return parts.length <= 1 ? (parts[0] ?? 'nothing') : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

function exitText(code: number | null, signal: string | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

function tail(lines: string[]): string {
  return lines.length ? `; last stderr lines:\n${lines.join('\n')}` : '; it wrote nothing to stderr';
}
