/**
 * The provisioning file (`plughost serve --config plughost.yaml`): server settings (its
 * `server:` section) and the plugins the host must have. Everything is checked before
 * anything starts, and every problem is listed with its field path, so an operator fixes
 * the file in one round.
 * Relative paths are relative to the file's own folder, not to where serve was started.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { readPublicKey } from '../bundle';
import { Errors } from '../errors';
import { findManifestFile, type SettingValue } from '../manifest';
import { Problems, describe, isObject, join, type Obj } from '../manifest/check';

/** A provisioning file is a short list; anything bigger is a mistake. */
export const MAX_PROVISION_BYTES = 1024 * 1024;
/** Aliases let an operator reuse a settings block; more than this is an expansion attack. */
export const MAX_PROVISION_ALIASES = 50;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const BUNDLE_SUFFIX = /\.(tar\.gz|tgz)$/;

/** Server settings that files written before the `server:` section keep at the top level; still read there. */
const TOP_LEVEL_SERVER_KEYS = ['data_dir', 'host', 'port', 'metrics_port', 'allow_url_hosts', 'require_signature', 'trusted_keys'] as const;
const SERVER_KEYS = [
  ...TOP_LEVEL_SERVER_KEYS, 'auto_mtls', 'max_upload_bytes', 'hook_timeout_ms', 'start_timeout_ms', 'log_level', 'trust_user_header', 'jwt_secret_file', 'api',
] as const;
const ROOT_KEYS = ['server', 'plugins', ...TOP_LEVEL_SERVER_KEYS] as const;

/** The levels `log_level` (and `plughost serve --log-level`) accept: pino's. */
export const SERVER_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** An HTTP header name (RFC 9110 token), for `trust_user_header`. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const PLUGIN_KEYS = ['path', 'enabled', 'settings', 'signature'] as const;

/** One declared plugin, with its paths made absolute. */
export interface PluginDeclaration {
  /** Where it was declared, e.g. `plugins[2]`, for messages. */
  at: string;
  /** A bundle file or a plugin folder. */
  path: string;
  kind: 'bundle' | 'folder';
  /** Default true: a plugin is declared to run it. */
  enabled: boolean;
  /** Values to hold; keys not listed keep what the host has. */
  settings?: Record<string, SettingValue>;
  signature?: string;
}

/** The server settings of a provisioning file, from its `server:` section or the top level; paths absolute. */
export interface ProvisionServerSettings {
  dataDir?: string;
  host?: string;
  port?: number;
  /** /metrics on a listener of its own (as --metrics-port). */
  metricsPort?: number;
  /** Internal hosts install-from-url may reach (as --allow-url-host). */
  allowUrlHosts?: string[];
  requireSignature?: boolean;
  trustedKeys?: string[];
  /** The runtime's AutoMTLS default (as --auto-mtls). */
  autoMTLS?: boolean;
  /** Largest bundle accepted by upload or URL install (as --max-upload-bytes). */
  maxUploadBytes?: number;
  hookTimeoutMs?: number;
  startTimeoutMs?: number;
  logLevel?: (typeof SERVER_LOG_LEVELS)[number];
  /** A request header whose value is the user id of plugin HTTP requests (as --trust-user-header). */
  trustUserHeader?: string;
  /** A file holding the HS256 secret of user JWTs (as --jwt-secret-file). */
  jwtSecretFile?: string;
  /** A module whose export is the integrator API object (as --api-module). */
  apiModule?: string;
}

export interface ProvisionFile extends ProvisionServerSettings {
  /** Absolute path of the file read. */
  file: string;
  plugins: PluginDeclaration[];
}

/** Reads and checks a provisioning file; throws PROVISION_* errors naming every problem. */
export function loadProvisionFile(file: string): ProvisionFile {
  const absolute = path.resolve(file);
  let text: string;
  try {
    const size = fs.statSync(absolute).size;
    if (size > MAX_PROVISION_BYTES) throw new Error(`it is ${size} bytes; the limit is ${MAX_PROVISION_BYTES}`);
    text = fs.readFileSync(absolute, 'utf8');
  } catch (err) {
    throw Errors.PROVISION_READ_FAILED(absolute, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  return checkProvision(parseProvisionText(text, absolute), absolute);
}

/** Parses YAML (JSON is YAML too, but a .json file gets JSON's own messages) with alias and key limits. */
export function parseProvisionText(text: string, file: string): unknown {
  let value: unknown;
  if (file.endsWith('.json')) {
    try {
      value = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (err) {
      throw Errors.PROVISION_SYNTAX(file, (err as Error).message);
    }
  } else {
    const doc = YAML.parseDocument(text, { schema: 'core', uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length) throw Errors.PROVISION_SYNTAX(file, doc.errors.map((e) => e.message).join('; '));
    try {
      value = doc.toJS({ maxAliasCount: MAX_PROVISION_ALIASES });
    } catch (err) {
      const why = (err as Error).message;
      throw Errors.PROVISION_SYNTAX(file, /alias/i.test(why) ? `too many alias expansions (the limit is ${MAX_PROVISION_ALIASES})` : why);
    }
  }
  const bad = forbiddenKey(value, '');
  if (bad !== null) throw Errors.PROVISION_INVALID(file, [{ path: bad, message: 'this key is not allowed (it could change object prototypes)' }]);
  return value;
}

function forbiddenKey(value: unknown, at: string): string | null {
  if (value === null || typeof value !== 'object') return null;
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [join(at, i), v]) : Object.entries(value).map(([k, v]) => [join(at, k), v]);
  if (!Array.isArray(value)) for (const key of Object.keys(value)) if (FORBIDDEN_KEYS.has(key)) return join(at, key);
  for (const [where, child] of entries) {
    const found = forbiddenKey(child, where);
    if (found !== null) return found;
  }
  return null;
}

/** Checks a parsed file; `file` locates relative paths and names the file in errors. */
export function checkProvision(value: unknown, file: string): ProvisionFile {
  const p = new Problems();
  const dir = path.dirname(file);
  const resolve = (v: string) => path.resolve(dir, v);
  if (!isObject(value)) {
    p.expected('', `an object with any of ${ROOT_KEYS.join(', ')}`, value);
    throw Errors.PROVISION_INVALID(file, p.list);
  }
  p.onlyKeys(value, '', ROOT_KEYS);
  const section = p.object(value, 'server', '');
  if (section) {
    p.onlyKeys(section, 'server', SERVER_KEYS);
    for (const key of TOP_LEVEL_SERVER_KEYS) {
      if (key in section && key in value) p.add(join('server', key), 'is also given at the top level; give it once, here');
    }
  }
  const server = { ...checkServer(value, '', resolve, p), ...(section ? checkServer(section, 'server', resolve, p) : {}) };
  if (server.requireSignature === true && !server.trustedKeys?.length) {
    p.add(section && 'require_signature' in section ? 'server.require_signature' : 'require_signature', 'is true but trusted_keys lists no public key; no bundle could be installed');
  }
  const plugins: PluginDeclaration[] = [];
  if (value.plugins !== undefined && !Array.isArray(value.plugins)) p.expected('plugins', 'a list of { path, enabled, settings }', value.plugins);
  if (Array.isArray(value.plugins)) {
    value.plugins.forEach((item, i) => {
      const declared = checkPlugin(item, join('plugins', i), resolve, p);
      if (declared) plugins.push(declared);
    });
  }
  if (p.list.length) throw Errors.PROVISION_INVALID(file, p.list);
  return { file, ...server, plugins };
}

/**
 * The server settings `obj` holds (the top level or the `server:` section, at `at`). Values
 * are taken as they are: any problem found here makes the whole file refused.
 */
function checkServer(obj: Obj, at: string, resolve: (p: string) => string, p: Problems): ProvisionServerSettings {
  const out: ProvisionServerSettings = {};
  const dataDir = p.string(obj, 'data_dir', at, { min: 1, what: 'a folder path' });
  if (dataDir !== undefined) out.dataDir = resolve(dataDir);
  out.host = p.string(obj, 'host', at, { min: 1, what: 'a host name or address to listen on, e.g. 127.0.0.1' });
  for (const [key, name] of [['port', 'port'], ['metrics_port', 'metricsPort']] as const) {
    const v = obj[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535)) p.expected(join(at, key), 'a port number 0-65535', v);
    out[name] = v as number | undefined;
  }
  p.stringList(obj, 'allow_url_hosts', at, (item) => {
    (out.allowUrlHosts ??= []).push(item);
  });
  p.stringList(obj, 'trusted_keys', at, (item, where) => {
    const key = resolve(item);
    const why = keyProblem(key);
    if (why) p.add(where, why);
    (out.trustedKeys ??= []).push(key);
  });
  if ('trusted_keys' in obj) out.trustedKeys ??= [];
  for (const [key, name] of [['require_signature', 'requireSignature'], ['auto_mtls', 'autoMTLS']] as const) {
    p.boolean(obj, key, at);
    out[name] = obj[key] as boolean | undefined;
  }
  for (const [key, name] of [['max_upload_bytes', 'maxUploadBytes'], ['hook_timeout_ms', 'hookTimeoutMs'], ['start_timeout_ms', 'startTimeoutMs']] as const) {
    p.positiveInt(obj, key, at);
    out[name] = obj[key] as number | undefined;
  }
  const level = p.string(obj, 'log_level', at, { pattern: new RegExp(`^(${SERVER_LOG_LEVELS.join('|')})$`), what: `one of ${SERVER_LOG_LEVELS.join(', ')}` });
  out.logLevel = level as ProvisionServerSettings['logLevel'];
  out.trustUserHeader = p.string(obj, 'trust_user_header', at, { pattern: HEADER_NAME, what: 'an HTTP header name such as X-User-Id' });
  for (const [key, name, what] of [['jwt_secret_file', 'jwtSecretFile', 'a file holding the HS256 secret of user JWTs'], ['api', 'apiModule', 'a JavaScript module whose export is the API object']] as const) {
    const text = p.string(obj, key, at, { min: 1, what: `the path of ${what}` });
    if (text === undefined) continue;
    const file = resolve(text);
    if (!isKind(file, 'file')) p.add(join(at, key), `${file} is not a file; expected ${what}`);
    out[name] = file;
  }
  if (out.trustUserHeader !== undefined && out.jwtSecretFile !== undefined) {
    p.add(join(at, 'jwt_secret_file'), 'is given with trust_user_header; a user is known one way: choose one');
  }
  for (const key of Object.keys(out) as Array<keyof ProvisionServerSettings>) if (out[key] === undefined) delete out[key];
  return out;
}

function checkPlugin(item: unknown, at: string, resolve: (p: string) => string, p: Problems): PluginDeclaration | undefined {
  if (!isObject(item)) return void p.expected(at, 'an object with path, enabled and settings', item);
  p.onlyKeys(item, at, PLUGIN_KEYS);
  p.boolean(item, 'enabled', at);
  const settings = checkSettings(item, at, p);
  const signatureText = p.string(item, 'signature', at, { min: 1, what: 'the path of a detached signature file' });
  const signature = signatureText === undefined ? undefined : resolve(signatureText);
  if (signature !== undefined && !isKind(signature, 'file')) p.add(join(at, 'signature'), `${signature} is not a file`);
  const text = p.string(item, 'path', at, { required: true, min: 1, what: 'the path of a bundle (.tar.gz) or a plugin folder' });
  if (text === undefined) return undefined;
  const source = resolve(text);
  const kind = sourceKind(source, join(at, 'path'), p);
  if (!kind) return undefined;
  return { at, path: source, kind, enabled: item.enabled !== false, settings, signature };
}

function checkSettings(item: Obj, at: string, p: Problems): Record<string, SettingValue> | undefined {
  const settings = p.object(item, 'settings', at);
  if (!settings) return undefined;
  const where = join(at, 'settings');
  for (const [key, v] of Object.entries(settings)) {
    const expected = 'expected a text, number or true/false value, or a list of texts';
    const odd = Array.isArray(v) ? v.find((item) => typeof item !== 'string') : undefined;
    if (Array.isArray(v) && odd !== undefined) p.add(join(where, key), `${expected}, got a list holding ${describe(odd)}`);
    else if (!Array.isArray(v) && !['string', 'number', 'boolean'].includes(typeof v)) p.add(join(where, key), `${expected}, got ${describe(v)}`);
  }
  return settings as Record<string, SettingValue>;
}

function sourceKind(source: string, at: string, p: Problems): PluginDeclaration['kind'] | undefined {
  if (isKind(source, 'dir')) {
    try {
      findManifestFile(source);
      return 'folder';
    } catch (err) {
      return void p.add(at, `${source} is a folder without a usable manifest: ${(err as Error).message}`);
    }
  }
  if (isKind(source, 'file')) {
    if (BUNDLE_SUFFIX.test(source)) return 'bundle';
    return void p.add(at, `${source} is a file but not a bundle; expected a .tar.gz made by plughost pack, or a plugin folder`);
  }
  return void p.add(at, `${source} does not exist; expected a bundle (.tar.gz) or a plugin folder`);
}

function keyProblem(file: string): string | null {
  if (!isKind(file, 'file')) return `${file} is not a file; expected an Ed25519 public key (PEM)`;
  try {
    readPublicKey(file);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function isKind(p: string, kind: 'file' | 'dir'): boolean {
  try {
    const stat = fs.statSync(p);
    return kind === 'file' ? stat.isFile() : stat.isDirectory();
  } catch {
    return false;
  }
}
