/**
 * The one error catalog. Each error has a stable code, the HTTP status it maps
 * to when it reaches the REST API, and a message template that names the
 * offending input and what was expected. Code elsewhere throws these; it never
 * writes its own message for a condition listed here.
 */

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
  PLUGIN_EXITED: define('PLUGIN_EXITED', 502, (code: number | null, signal: string | null) =>
    `plugin process has exited (${exitText(code, signal)})`),
  PLUGIN_UNHEALTHY: define('PLUGIN_UNHEALTHY', 502, (status: string) =>
    `plugin health check answered ${status}, expected SERVING`),
};

function exitText(code: number | null, signal: string | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

function tail(lines: string[]): string {
  return lines.length ? `; last stderr lines:\n${lines.join('\n')}` : '; it wrote nothing to stderr';
}
