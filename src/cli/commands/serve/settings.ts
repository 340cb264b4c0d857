/**
 * What `plughost serve` runs with. Each setting comes from its flag, else its PLUGHOST_*
 * variable, else the provisioning file, else the default; text that does not parse is a
 * usage error naming where it came from (`--port eighty`, `PLUGHOST_PORT=eighty`). The file
 * is checked on its own (src/provision), so its values arrive typed.
 */
import * as path from 'node:path';
import type { parseArgs } from 'node:util';
import { PlughostError } from '../../../errors';
import { HEADER_NAME, SERVER_LOG_LEVELS, type ProvisionFile } from '../../../provision';
import { checkNodeId } from '../../../runtime/node-id';
import { UsageError } from '../../io';

export const SERVE_OPTIONS = {
  'data-dir': { type: 'string' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  config: { type: 'string', short: 'c' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'allow-url-host': { type: 'string', multiple: true },
  'memory-limit-mb': { type: 'string' },
  database: { type: 'string' },
  'node-id': { type: 'string' },
  'reconcile-interval': { type: 'string' },
  'auto-mtls': { type: 'boolean' },
  'no-auto-mtls': { type: 'boolean' },
  'max-upload-bytes': { type: 'string' },
  'hook-timeout-ms': { type: 'string' },
  'start-timeout-ms': { type: 'string' },
  'log-level': { type: 'string' },
  'trusted-key': { type: 'string', multiple: true },
  'require-signature': { type: 'boolean' },
  'no-require-signature': { type: 'boolean' },
  'trust-user-header': { type: 'string' },
  'jwt-secret-file': { type: 'string' },
  'api-module': { type: 'string' },
  'allow-inspect': { type: 'boolean' },
} as const;

/** `plughost serve --help`: each option with its variable and provisioning file key. */
export const SERVE_HELP = `usage: plughost serve [options]

Each setting is taken from its flag, else its variable, else the provisioning file (--config),
else the default. File keys sit in the file's server: section; data_dir, host, port,
metrics_port, allow_url_hosts, require_signature and trusted_keys are also read at the top
level, where files written before the section have them.

  flag                          variable                         file key           default
  --config FILE                 -                                -                  none
  --data-dir DIR                PLUGHOST_DATA_DIR                data_dir           ./data
  --host ADDR                   PLUGHOST_HOST                    host               127.0.0.1
  --port N                      PLUGHOST_PORT                    port               8065
  --metrics-port N              PLUGHOST_METRICS_PORT            metrics_port       /metrics on the main port, admin token
  --allow-url-host H ...        PLUGHOST_ALLOW_URL_HOSTS (a,b)   allow_url_hosts    public addresses only
  --require-signature, --no-…   PLUGHOST_REQUIRE_SIGNATURE       require_signature  false
  --trusted-key PEM ...         PLUGHOST_TRUSTED_KEYS (a,b)      trusted_keys       none
  --auto-mtls, --no-auto-mtls   PLUGHOST_AUTO_MTLS               auto_mtls          false
  --max-upload-bytes N          PLUGHOST_MAX_UPLOAD_BYTES        max_upload_bytes   52428800 (50 MiB)
  --hook-timeout-ms MS          PLUGHOST_HOOK_TIMEOUT_MS         hook_timeout_ms    5000 (a manifest's limits.hook_timeout_ms wins)
  --start-timeout-ms MS         PLUGHOST_START_TIMEOUT_MS        start_timeout_ms   30000 (a manifest's limits.start_timeout_ms wins)
  --log-level LEVEL             PLUGHOST_LOG_LEVEL               log_level          info (trace debug info warn error fatal silent)
  --trust-user-header NAME      PLUGHOST_TRUST_USER_HEADER       trust_user_header  none: plugin requests are anonymous
  --jwt-secret-file FILE        PLUGHOST_JWT_SECRET_FILE         jwt_secret_file    none
  --api-module FILE             PLUGHOST_API_MODULE              api                none: Invoke finds no method
  --memory-limit-mb N           PLUGHOST_MEMORY_LIMIT_MB         -                  0 (none)
  --database URL                PLUGHOST_DATABASE_URL            -                  SQLite in the data dir
  --reconcile-interval MS       PLUGHOST_RECONCILE_INTERVAL_MS   -                  5000
  --node-id ID                  PLUGHOST_NODE_ID                 -                  kept in <data-dir>/node-id
  --metrics-host ADDR           -                                -                  127.0.0.1
  --allow-inspect               PLUGHOST_ALLOW_INSPECT           -                  false: enable ?inspect= is refused

--allow-inspect lets an admin start a node plugin under the Node inspector on a loopback port
(POST /api/v1/plugins/:id/enable?inspect=127.0.0.1:9229, plughost plugin enable --inspect,
plughost dev --inspect): for a development server only.
--trust-user-header believes the header as it arrives: serve behind a proxy that sets it on
every request (and strips what clients send), or anyone can be any user.
The admin token: PLUGHOST_ADMIN_TOKEN, else <data-dir>/admin-token (made on first start).`;

export type ServeValues = ReturnType<typeof parseArgs<{ options: typeof SERVE_OPTIONS }>>['values'];

/** A file `serve` reads, with where it was named, for messages. */
export interface NamedFile {
  file: string;
  source: string;
}

export interface ServeSettings {
  dataDir: string;
  port: number;
  host: string;
  metrics?: { port: number; host: string };
  allowUrlHosts?: string[];
  memoryLimitMb?: number;
  database?: string;
  nodeId?: string;
  reconcileIntervalMs?: number;
  autoMTLS?: boolean;
  maxUploadBytes?: number;
  hookTimeoutMs?: number;
  startTimeoutMs?: number;
  logLevel: string;
  trustedKeys: string[];
  requireSignature?: boolean;
  trustUserHeader?: string;
  jwtSecretFile?: NamedFile;
  apiModule?: NamedFile;
  /** Admins may start node plugins under the inspector (development servers). */
  allowInspect: boolean;
}

interface Kind<T> {
  parse(text: string): T | undefined;
  expected: string;
  /** Never repeated in a message (a database URL holds its password). */
  secret?: boolean;
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

const wholeNumber = (min: number, max: number, expected: string): Kind<number> => ({
  parse: (text) => {
    const n = Number(text);
    return text.trim() !== '' && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
  },
  expected,
});
const PORT = wholeNumber(0, 65535, 'a port number 0-65535');
const MILLISECONDS = wholeNumber(1, Number.MAX_SAFE_INTEGER, 'milliseconds, a whole number 1 or more');
const BOOLEAN: Kind<boolean> = { parse: (text) => (TRUE.has(text.toLowerCase()) ? true : FALSE.has(text.toLowerCase()) ? false : undefined), expected: 'true or false' };
const TEXT: Kind<string> = { parse: (text) => text || undefined, expected: 'a value' };
const LOG_LEVEL: Kind<string> = { parse: (text) => ((SERVER_LOG_LEVELS as readonly string[]).includes(text) ? text : undefined), expected: `one of ${SERVER_LOG_LEVELS.join(', ')}` };
const HEADER: Kind<string> = { parse: (text) => (HEADER_NAME.test(text) ? text : undefined), expected: 'an HTTP header name such as X-User-Id' };
const POSTGRES_URL: Kind<string> = { parse: (text) => (/^postgres(ql)?:\/\//.test(text) ? text : undefined), expected: 'a postgres:// or postgresql:// URL', secret: true };

export function resolveServeSettings(values: ServeValues, file: ProvisionFile | undefined, env: NodeJS.ProcessEnv = process.env): ServeSettings {
  /** The flag's value, else the variable's (an empty variable counts as unset), parsed. */
  const pick = <T>(flag: keyof typeof SERVE_OPTIONS, variable: string, kind: Kind<T>, flagText = values[flag] as string | undefined): T | undefined => {
    const [text, name, sep] = flagText !== undefined ? [flagText, `--${flag}`, ' '] : env[variable] ? [env[variable]!, variable, '='] : [undefined, '', ''];
    if (text === undefined) return undefined;
    const value = kind.parse(text);
    if (value === undefined) throw new UsageError(`${kind.secret ? name : `${name}${sep}${text}`}: expected ${kind.expected}`);
    return value;
  };
  /** `--x` and `--no-x` as the text of one flag. */
  const toggle = (flag: 'auto-mtls' | 'require-signature'): string | undefined => {
    const on = values[flag];
    const off = values[`no-${flag}`];
    if (on && off) throw new UsageError(`--${flag} and --no-${flag} say opposite things; give one`);
    return on ? 'true' : off ? 'false' : undefined;
  };
  /** A file named by a flag or variable (relative to the working folder), else by the provisioning file. */
  const named = (flag: 'jwt-secret-file' | 'api-module', variable: string, fromFile: string | undefined, key: string): NamedFile | undefined => {
    const given = pick(flag, variable, TEXT);
    if (given !== undefined) return { file: path.resolve(given), source: values[flag] !== undefined ? `--${flag}` : variable };
    return fromFile === undefined ? undefined : { file: fromFile, source: `server.${key} in ${file!.file}` };
  };

  const metricsPort = pick('metrics-port', 'PLUGHOST_METRICS_PORT', PORT) ?? file?.metricsPort;
  const keysFromEnv = values['trusted-key'] === undefined ? env.PLUGHOST_TRUSTED_KEYS?.split(',').filter(Boolean) : undefined;
  const settings: ServeSettings = {
    dataDir: path.resolve(pick('data-dir', 'PLUGHOST_DATA_DIR', TEXT) ?? file?.dataDir ?? './data'),
    port: pick('port', 'PLUGHOST_PORT', PORT) ?? file?.port ?? 8065,
    host: pick('host', 'PLUGHOST_HOST', TEXT) ?? file?.host ?? '127.0.0.1',
    metrics: metricsPort === undefined ? undefined : { port: metricsPort, host: values['metrics-host'] ?? '127.0.0.1' },
    allowUrlHosts: values['allow-url-host'] ?? env.PLUGHOST_ALLOW_URL_HOSTS?.split(',').filter(Boolean) ?? file?.allowUrlHosts,
    memoryLimitMb: pick('memory-limit-mb', 'PLUGHOST_MEMORY_LIMIT_MB', wholeNumber(0, Number.MAX_SAFE_INTEGER, 'a whole number of MiB (0 for no limit)')),
    // SQLite in the data dir unless a PostgreSQL URL is given.
    database: pick('database', 'PLUGHOST_DATABASE_URL', POSTGRES_URL),
    nodeId: nodeIdOption(values['node-id'], env.PLUGHOST_NODE_ID),
    reconcileIntervalMs: pick('reconcile-interval', 'PLUGHOST_RECONCILE_INTERVAL_MS', MILLISECONDS),
    autoMTLS: pick('auto-mtls', 'PLUGHOST_AUTO_MTLS', BOOLEAN, toggle('auto-mtls')) ?? file?.autoMTLS,
    maxUploadBytes: pick('max-upload-bytes', 'PLUGHOST_MAX_UPLOAD_BYTES', wholeNumber(1, Number.MAX_SAFE_INTEGER, 'a whole number of bytes, 1 or more')) ?? file?.maxUploadBytes,
    hookTimeoutMs: pick('hook-timeout-ms', 'PLUGHOST_HOOK_TIMEOUT_MS', MILLISECONDS) ?? file?.hookTimeoutMs,
    startTimeoutMs: pick('start-timeout-ms', 'PLUGHOST_START_TIMEOUT_MS', MILLISECONDS) ?? file?.startTimeoutMs,
    logLevel: pick('log-level', 'PLUGHOST_LOG_LEVEL', LOG_LEVEL) ?? file?.logLevel ?? 'info',
    trustedKeys: (values['trusted-key'] ?? keysFromEnv)?.map((key) => path.resolve(key)) ?? file?.trustedKeys ?? [],
    requireSignature: pick('require-signature', 'PLUGHOST_REQUIRE_SIGNATURE', BOOLEAN, toggle('require-signature')) ?? file?.requireSignature,
    trustUserHeader: pick('trust-user-header', 'PLUGHOST_TRUST_USER_HEADER', HEADER) ?? file?.trustUserHeader,
    jwtSecretFile: named('jwt-secret-file', 'PLUGHOST_JWT_SECRET_FILE', file?.jwtSecretFile, 'jwt_secret_file'),
    apiModule: named('api-module', 'PLUGHOST_API_MODULE', file?.apiModule, 'api'),
    allowInspect: pick('allow-inspect', 'PLUGHOST_ALLOW_INSPECT', BOOLEAN, values['allow-inspect'] ? 'true' : undefined) ?? false,
  };
  if (settings.trustUserHeader !== undefined && settings.jwtSecretFile !== undefined) {
    throw new UsageError(`a trusted user header (${settings.trustUserHeader}) and a JWT secret (${settings.jwtSecretFile.source}) are both set; a user is known one way: choose one`);
  }
  if (settings.requireSignature && settings.trustedKeys.length === 0) {
    throw new UsageError('signatures are required but no trusted key is given (--trusted-key, PLUGHOST_TRUSTED_KEYS or trusted_keys); no bundle could be installed');
  }
  return settings;
}

/** --node-id, else PLUGHOST_NODE_ID, checked here so a bad one is a usage error; undefined keeps the data dir's. */
function nodeIdOption(flag: string | undefined, env: string | undefined): string | undefined {
  const [value, source] = flag !== undefined ? [flag, '--node-id'] : env ? [env, 'PLUGHOST_NODE_ID'] : [undefined, ''];
  if (value === undefined) return undefined;
  try {
    return checkNodeId(value, source);
  } catch (e) {
    throw e instanceof PlughostError ? new UsageError(e.message) : e;
  }
}
