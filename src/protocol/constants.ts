/** Wire constants shared by the host and plugin sides. Facts of go-plugin's protocol unless noted. */

/** go-plugin's core protocol version: the first field of the handshake line. */
export const CORE_PROTOCOL_VERSION = 1;

/** The default magic cookie: keeps a plugin from running when launched by hand. */
export const DEFAULT_HANDSHAKE: Handshake = { magicCookieKey: 'PLUGHOST_PLUGIN', magicCookieValue: 'plughost' };

export interface Handshake {
  magicCookieKey: string;
  magicCookieValue: string;
}

export const DEFAULT_APP_VERSIONS: readonly number[] = [1];
export const DEFAULT_START_TIMEOUT_MS = 60_000;
export const DEFAULT_KILL_GRACE_MS = 2_000;
export const DEFAULT_BROKER_DIAL_TIMEOUT_MS = 5_000;
/** go-plugin's default TCP port range for plugins that listen on TCP. */
export const DEFAULT_MIN_PORT = 10_000;
export const DEFAULT_MAX_PORT = 25_000;

/** Environment variables the host sets for the plugin. */
export const ENV = {
  protocolVersions: 'PLUGIN_PROTOCOL_VERSIONS',
  minPort: 'PLUGIN_MIN_PORT',
  maxPort: 'PLUGIN_MAX_PORT',
  unixSocketDir: 'PLUGIN_UNIX_SOCKET_DIR',
  clientCert: 'PLUGIN_CLIENT_CERT',
  /** plughost extension: asks a plughost plugin to listen on TCP instead of a unix socket. */
  network: 'PLUGHOST_PLUGIN_NETWORK',
} as const;

/** The health service name every plugin reports as SERVING. */
export const HEALTH_SERVICE_NAME = 'plugin';

/**
 * Linux's sun_path holds 108 bytes including the terminating NUL; macOS holds 104.
 * grpc-js truncates longer paths silently, so both sides refuse them up front.
 */
export const MAX_UNIX_SOCKET_PATH_BYTES = process.platform === 'darwin' ? 103 : 107;

/** Longest stderr/stdout line kept whole; the rest of a longer line is dropped and the record marked truncated. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
/** Lines of stderr quoted in errors about a plugin that failed to start. */
export const STDERR_TAIL_LINES = 20;

/** go-plugin's refusal, printed by a plugin launched without the cookie. Peers and users grep for it. */
export const NOT_A_PLUGIN_MESSAGE =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n';

/** Channel options for every connection: certificates name "localhost", as go-plugin's do. */
export const TLS_SERVER_NAME = 'localhost';
