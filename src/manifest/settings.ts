import { Errors } from '../errors';
import { Obj, Problems, describe, isObject, join } from './check';
import { PluginConfig, SETTING_TYPES, Setting, SettingType, SettingValue, SettingsSchema } from './types';

/** What secret values are replaced with on the way out of the host. */
export const SECRET_MASK = '********';

const KEY_PATTERN = /^[a-zA-Z0-9_.-]{1,100}$/;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const WITH_OPTIONS: readonly SettingType[] = ['dropdown', 'radio', 'multiselect'];

/**
 * The most items a `list` or `multiselect` value may hold. A configuration travels whole in
 * every OnConfigurationChange and is read by every console form, so a list is a setting, not a
 * data store: keep larger collections in the plugin's KV.
 */
export const MAX_LIST_ITEMS = 1000;

/** Checks a manifest's `settings_schema`, adding each problem under `path`. */
export function validateSettingsSchema(value: unknown, path: string, p: Problems): void {
  if (!isObject(value)) return p.expected(path, 'an object with a "settings" list', value);
  p.onlyKeys(value, path, ['settings']);
  const settings = value.settings;
  if (!Array.isArray(settings)) return p.expected(join(path, 'settings'), 'a list of settings', settings);
  const keys = new Set<string>();
  settings.forEach((setting, i) => {
    const at = join(join(path, 'settings'), i);
    if (!isObject(setting)) return p.expected(at, 'an object with key and type', setting);
    const key = checkSettingShape(setting, at, p);
    if (key === undefined) return;
    if (keys.has(key)) p.add(join(at, 'key'), `${JSON.stringify(key)} is used by an earlier setting; keys must be unique`);
    keys.add(key);
  });
}

function checkSettingShape(s: Obj, at: string, p: Problems): string | undefined {
  p.onlyKeys(s, at, ['key', 'type', 'display_name', 'default', 'options', 'required', 'help_text']);
  const key = p.string(s, 'key', at, { required: true, pattern: KEY_PATTERN, what: '1 to 100 characters of a-z A-Z 0-9 . _ -' });
  if (key !== undefined && RESERVED_KEYS.has(key)) p.add(join(at, 'key'), `${JSON.stringify(key)} is reserved; choose another key`);
  const type = p.string(s, 'type', at, { required: true, what: `one of ${SETTING_TYPES.join(', ')}` });
  const known = type !== undefined && (SETTING_TYPES as readonly string[]).includes(type);
  if (type !== undefined && !known) p.expected(join(at, 'type'), `one of ${SETTING_TYPES.join(', ')}`, type);
  p.string(s, 'display_name', at);
  p.string(s, 'help_text', at);
  p.boolean(s, 'required', at);
  const values = checkOptions(s, at, p);
  if (known && WITH_OPTIONS.includes(type as SettingType) && s.options === undefined) {
    p.add(join(at, 'options'), `required for type ${type}; expected a list of { display_name, value }`);
  }
  if (known && !WITH_OPTIONS.includes(type as SettingType) && s.options !== undefined) {
    p.add(join(at, 'options'), `only allowed for ${WITH_OPTIONS.join(', ')}, not ${type}`);
  }
  if (known && s.default !== undefined) {
    const why = valueProblem(type as SettingType, s.default, values);
    if (why) p.add(join(at, 'default'), why);
  }
  return key;
}

function checkOptions(s: Obj, at: string, p: Problems): string[] {
  const options = s.options;
  if (options === undefined) return [];
  const where = join(at, 'options');
  if (!Array.isArray(options) || options.length === 0) {
    p.expected(where, 'a non-empty list of { display_name, value }', options);
    return [];
  }
  const values: string[] = [];
  options.forEach((option, i) => {
    const oat = join(where, i);
    if (!isObject(option)) return p.expected(oat, 'an object with display_name and value', option);
    p.onlyKeys(option, oat, ['display_name', 'value']);
    p.string(option, 'display_name', oat, { required: true });
    const value = p.string(option, 'value', oat, { required: true });
    if (value !== undefined && values.includes(value)) p.add(join(oat, 'value'), `${JSON.stringify(value)} is listed twice`);
    if (value !== undefined) values.push(value);
  });
  return values;
}

/** Why `value` cannot be held by a setting of `type`, or null when it can. */
function valueProblem(type: SettingType, value: unknown, options: string[]): string | null {
  switch (type) {
    case 'bool':
      return typeof value === 'boolean' ? null : `expected true or false, got ${describe(value)}`;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? null : `expected a number, got ${describe(value)}`;
    case 'dropdown':
    case 'radio':
      return typeof value === 'string' && options.includes(value) ? null : `expected ${oneOf(options)}, got ${describe(value)}`;
    case 'list':
      return listProblem(value, 'a list of strings', (item) => (typeof item === 'string' ? null : `expected a string, got ${describe(item)}`));
    case 'multiselect':
      return listProblem(value, `a list of values from ${listOf(options)}`, (item, i, items) => {
        if (typeof item !== 'string' || !options.includes(item)) return `expected ${oneOf(options)}, got ${describe(item)}`;
        return items.indexOf(item) < i ? `${JSON.stringify(item)} is chosen twice` : null;
      });
    default:
      return typeof value === 'string' ? null : `expected a string, got ${describe(value)}`;
  }
}

function listOf(options: string[]): string {
  return options.map((o) => JSON.stringify(o)).join(', ');
}

function oneOf(options: string[]): string {
  return `one of ${listOf(options)}`;
}

/** Why `value` is not a list whose every item passes `itemProblem`, naming the first bad item by index. */
function listProblem(value: unknown, what: string, itemProblem: (item: unknown, i: number, items: unknown[]) => string | null): string | null {
  if (!Array.isArray(value)) return `expected ${what}, got ${describe(value)}`;
  if (value.length > MAX_LIST_ITEMS) return `expected at most ${MAX_LIST_ITEMS} items (the limit of a list setting), got ${value.length}; keep larger collections in the plugin's KV`;
  for (let i = 0; i < value.length; i++) {
    const why = itemProblem(value[i], i, value);
    if (why) return `item [${i}]: ${why}`;
  }
  return null;
}

/**
 * Checks a configuration against a settings schema and returns it normalized: defaults filled
 * in, keys in schema order. Unknown keys are refused so a misspelt key is not silently ignored.
 * A secret sent back as `SECRET_MASK` (what `maskSecrets` showed the client) keeps its value
 * from `previous`, so a client can save a form without re-entering secrets.
 */
export function validateConfig(schema: SettingsSchema | undefined, config: unknown, previous: PluginConfig = {}): PluginConfig {
  const p = new Problems();
  const settings = schema?.settings ?? [];
  if (config !== undefined && config !== null && !isObject(config)) {
    p.expected('', 'an object of setting values', config);
    throw Errors.CONFIG_INVALID(p.list);
  }
  const input: Obj = isObject(config) ? config : {};
  const keys = new Set(settings.map((s) => s.key));
  for (const key of Object.keys(input)) {
    if (!keys.has(key)) p.add(key, `unknown setting; expected one of ${[...keys].join(', ') || '(none: this plugin has no settings)'}`);
  }
  const out: PluginConfig = Object.create(null);
  for (const setting of settings) {
    const value = resolveValue(setting, input[setting.key], previous);
    if (value === undefined || (setting.required && isMissing(value))) {
      if (setting.required) p.add(setting.key, `required; ${expectedFor(setting)}`);
      continue;
    }
    const why = valueProblem(setting.type, value, (setting.options ?? []).map((o) => o.value));
    if (why) p.add(setting.key, why);
    else out[setting.key] = value as SettingValue;
  }
  if (p.list.length) throw Errors.CONFIG_INVALID(p.list);
  return { ...out };
}

/** Whether a required setting holding `value` counts as unset: no value, an empty text or an empty list. */
export function isMissing(value: unknown): boolean {
  return value === undefined || value === '' || (Array.isArray(value) && value.length === 0);
}

function resolveValue(setting: Setting, given: unknown, previous: PluginConfig): unknown {
  if (setting.type === 'secret' && given === SECRET_MASK && previous[setting.key] !== undefined) return previous[setting.key];
  return given === undefined || given === null ? setting.default : given;
}

function expectedFor(setting: Setting): string {
  const expected = valueProblem(setting.type, Symbol('missing'), (setting.options ?? []).map((o) => o.value))?.replace(/, got .*$/, '') ?? 'a value';
  return setting.type === 'list' || setting.type === 'multiselect' ? `${expected}, at least one` : expected;
}

/** A copy of `config` with every secret setting that has a value replaced by `SECRET_MASK`. */
export function maskSecrets(schema: SettingsSchema | undefined, config: PluginConfig): PluginConfig {
  const secret = new Set((schema?.settings ?? []).filter((s) => s.type === 'secret').map((s) => s.key));
  const out: PluginConfig = {};
  for (const [key, value] of Object.entries(config)) {
    out[key] = secret.has(key) && value !== '' ? SECRET_MASK : value;
  }
  return out;
}
