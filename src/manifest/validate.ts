import * as semver from 'semver';
import type { FieldProblem } from '../errors';
import { Obj, Problems, describe, ignorePatternProblem, isObject, join, relativePathProblem } from './check';
import { CALL_PERMISSION_FORMS, CALL_PERMISSION_PREFIX, PLUGIN_ID_PATTERN, isWellFormedCallPermission } from './permissions';
import { validateSettingsSchema } from './settings';
import { PLATFORM_KEYS } from './types';

/** A plugin id: what the REST schemas use too, so the two can never disagree. */
export const ID_PATTERN = PLUGIN_ID_PATTERN;
export const ID_LENGTH = { min: 3, max: 190 } as const;
/** The longest plugin id; URLs, socket names and routes are sized for it. */
export const MANIFEST_ID_MAX_LENGTH = ID_LENGTH.max;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const TOP_LEVEL = [
  'id', 'name', 'version', 'description', 'homepage_url', 'support_url', 'release_notes_url', 'icon_path',
  'min_host_version', 'server', 'args', 'env', 'limits', 'settings_schema', 'permissions', 'props', 'webapp', 'pack',
] as const;

/**
 * Every problem with a parsed manifest, each as a field path and what was expected there.
 * An empty list means the value is a valid `Manifest`.
 */
export function validateManifest(value: unknown): FieldProblem[] {
  const p = new Problems();
  if (!isObject(value)) {
    p.expected('', 'an object with at least id, name, version and server or webapp', value);
    return p.list;
  }
  p.onlyKeys(value, '', TOP_LEVEL);
  p.string(value, 'id', '', { required: true, pattern: PLUGIN_ID_PATTERN, min: ID_LENGTH.min, max: ID_LENGTH.max, what: `${ID_LENGTH.min} to ${ID_LENGTH.max} characters of a-z A-Z 0-9 . _ -` });
  p.string(value, 'name', '', { required: true, min: 1, what: 'a non-empty string' });
  const version = p.string(value, 'version', '', { required: true, what: 'a semantic version such as 1.2.3' });
  if (version !== undefined && semver.valid(version) === null) p.expected('version', 'a semantic version such as 1.2.3', version);
  p.string(value, 'description', '');
  for (const key of ['homepage_url', 'support_url', 'release_notes_url']) checkUrl(p, value, key);
  checkPath(p, value, 'icon_path', '');
  const minHost = p.string(value, 'min_host_version', '', { what: 'a semver version or range such as >=1.2.0' });
  if (minHost !== undefined && semver.validRange(minHost) === null) {
    p.expected('min_host_version', 'a semver version or range such as >=1.2.0', minHost);
  }
  const server = p.object(value, 'server', '');
  if (server) checkServer(p, server);
  p.stringList(value, 'args', '');
  checkEnv(p, value);
  const limits = p.object(value, 'limits', '');
  if (limits) {
    const keys = ['start_timeout_ms', 'hook_timeout_ms', 'memory_mb'];
    p.onlyKeys(limits, 'limits', keys);
    for (const key of keys) p.positiveInt(limits, key, 'limits');
  }
  if (value.settings_schema !== undefined) validateSettingsSchema(value.settings_schema, 'settings_schema', p);
  checkPermissions(p, value);
  p.object(value, 'props', '');
  const webapp = p.object(value, 'webapp', '');
  if (webapp) {
    p.onlyKeys(webapp, 'webapp', ['bundle_path']);
    if (webapp.bundle_path === undefined) p.add('webapp.bundle_path', 'required; expected a relative path to a JavaScript file');
    checkPath(p, webapp, 'bundle_path', 'webapp');
  }
  const pack = p.object(value, 'pack', '');
  if (pack) {
    p.onlyKeys(pack, 'pack', ['ignore']);
    p.stringList(pack, 'ignore', 'pack', (item, at) => {
      const problem = ignorePatternProblem(item);
      if (problem) p.add(at, problem);
    });
  }
  if (value.server === undefined && value.webapp === undefined) {
    p.add('', 'expected a server part, a webapp part, or both; found neither');
  }
  return p.list;
}

function checkServer(p: Problems, server: Obj): void {
  p.onlyKeys(server, 'server', ['executable', 'executables', 'runtime', 'entry']);
  const forms = ['executable', 'executables', 'runtime'].filter((k) => server[k] !== undefined);
  if (forms.length !== 1) {
    p.add('server', `expected exactly one of executable, executables or runtime, got ${forms.length ? forms.join(' and ') : 'none'}`);
  }
  checkPath(p, server, 'executable', 'server');
  const executables = p.object(server, 'executables', 'server');
  if (executables) {
    p.onlyKeys(executables, 'server.executables', PLATFORM_KEYS);
    if (Object.keys(executables).length === 0) p.add('server.executables', `expected at least one of ${PLATFORM_KEYS.join(', ')}`);
    for (const key of Object.keys(executables)) checkPath(p, executables, key, 'server.executables');
  }
  if (server.runtime !== undefined && server.runtime !== 'node') p.expected('server.runtime', '"node"', server.runtime);
  if (server.runtime !== undefined && server.entry === undefined) p.add('server.entry', 'required with runtime "node"; expected a relative path to a JavaScript file');
  if (server.entry !== undefined && server.runtime === undefined) p.add('server.entry', 'only allowed with runtime "node"');
  checkPath(p, server, 'entry', 'server');
}

function checkPath(p: Problems, obj: Obj, key: string, parent: string): void {
  const value = p.string(obj, key, parent, { what: 'a relative path inside the plugin folder' });
  if (value === undefined) return;
  const problem = relativePathProblem(value);
  if (problem) p.add(join(parent, key), problem);
}

function checkUrl(p: Problems, obj: Obj, key: string): void {
  const value = p.string(obj, key, '', { what: 'an http(s) URL' });
  if (value === undefined) return;
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    ok = false;
  }
  if (!ok) p.expected(key, 'an http(s) URL', value);
}

function checkEnv(p: Problems, manifest: Obj): void {
  const env = p.object(manifest, 'env', '');
  if (!env) return;
  for (const [name, value] of Object.entries(env)) {
    const at = join('env', name);
    if (!ENV_NAME.test(name)) p.add(at, 'expected an environment variable name of letters, digits and _, not starting with a digit');
    if (typeof value !== 'string') p.add(at, `expected a string value, got ${describe(value)}`);
  }
}

function checkPermissions(p: Problems, manifest: Obj): void {
  const seen = new Set<string>();
  p.stringList(manifest, 'permissions', '', (item, at) => {
    if (item.trim() === '') p.add(at, 'expected a method name or a "plugins.call:" permission, got an empty string');
    else if (item.startsWith(CALL_PERMISSION_PREFIX) && !isWellFormedCallPermission(item)) p.expected(at, CALL_PERMISSION_FORMS, item);
    else if (seen.has(item)) p.add(at, `${JSON.stringify(item)} is listed twice`);
    seen.add(item);
  });
}
