/**
 * `plughost plugin config get <id>` and `plughost plugin config set <id> key=value ... | --file f`.
 * Values given as key=value are typed by the plugin's settings schema (numbers and booleans
 * converted, list settings gathered from repeated keys or a JSON list) and merged into the
 * current configuration; a --file is the whole configuration.
 * Masked secrets sent back unchanged keep their stored value on the server.
 */
import * as fs from 'node:fs';
import type { PluginConfig, PluginInfo } from '../../../runtime';
import type { Setting, SettingValue } from '../../../manifest';
import { renderTable } from '../../table';
import { EXIT, UsageError } from '../../io';
import { invocation, noMore, positional, print } from './context';

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/** Converts the text after `=` to what the setting holds; unknown keys stay text for the server to refuse. */
export function typedValue(key: string, raw: string, setting: Setting | undefined): SettingValue {
  if (setting?.type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${key}=${raw}: setting ${key} is a number; expected e.g. ${key}=42`);
    return n;
  }
  if (setting?.type === 'bool') {
    if (TRUE.has(raw.toLowerCase())) return true;
    if (FALSE.has(raw.toLowerCase())) return false;
    throw new UsageError(`${key}=${raw}: setting ${key} is a bool; expected true or false`);
  }
  return raw;
}

/**
 * The items one `key=value` gives a `list` or `multiselect` setting: a JSON list
 * (`key='["a","b"]'`) is taken whole, an empty value gives none, anything else is one item;
 * repeating the key adds items, so an item may hold commas.
 */
export function listItems(key: string, raw: string): string[] {
  if (raw === '') return [];
  if (!raw.trimStart().startsWith('[')) return [raw];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`${key}=${raw}: setting ${key} is a list and the value starts with "[" but is not JSON (${(err as Error).message}); expected e.g. ${key}='["a","b"]', or ${key}=a ${key}=b`);
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new UsageError(`${key}=${raw}: setting ${key} is a list; expected a JSON list of strings such as ["a","b"]`);
  }
  return parsed;
}

export function parseAssignments(pairs: string[], settings: Setting[]): PluginConfig {
  const config: PluginConfig = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`${JSON.stringify(pair)}: expected key=value`);
    const key = pair.slice(0, at);
    const raw = pair.slice(at + 1);
    const setting = settings.find((s) => s.key === key);
    if (setting?.type === 'list' || setting?.type === 'multiselect') {
      const earlier = config[key];
      config[key] = [...(Array.isArray(earlier) ? earlier : []), ...listItems(key, raw)];
    } else {
      config[key] = typedValue(key, raw, setting);
    }
  }
  return config;
}

function configTable(config: PluginConfig): string {
  const rows = Object.entries(config);
  if (rows.length === 0) return 'no settings';
  return renderTable<[string, unknown]>([
    { header: 'KEY', value: ([key]) => key },
    { header: 'VALUE', value: ([, value]) => (typeof value === 'string' ? value : JSON.stringify(value)) },
  ], rows);
}

export async function config(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'get') return get(rest);
  if (action === 'set') return set(rest);
  throw new UsageError(`plugin config ${action === undefined ? '' : JSON.stringify(action)}: expected get or set`);
}

async function get(args: string[]): Promise<number> {
  const { client, json, positionals } = invocation(args, {});
  const id = positional(positionals, 0, 'plugin id');
  noMore(positionals, 1);
  const current = await client.request<PluginConfig>('GET', `/plugins/${encodeURIComponent(id)}/config`);
  print(json, current, () => configTable(current));
  return EXIT.ok;
}

async function set(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, { file: { type: 'string' } });
  const id = positional(positionals, 0, 'plugin id');
  const pairs = positionals.slice(1);
  if (!values.file && pairs.length === 0) throw new UsageError('nothing to set: give key=value pairs or --file config.json');
  const base = `/plugins/${encodeURIComponent(id)}`;
  const info = await client.request<PluginInfo>('GET', base);
  const assigned = parseAssignments(pairs, info.manifest.settings_schema?.settings ?? []);
  const start = values.file ? readConfigFile(values.file) : await client.request<PluginConfig>('GET', `${base}/config`);
  const saved = await client.request<PluginConfig>('PUT', `${base}/config`, { ...start, ...assigned });
  print(json, saved, () => `saved the configuration of ${id}\n${configTable(saved)}`);
  return EXIT.ok;
}

function readConfigFile(file: string): PluginConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--file ${file}: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--file ${file}: expected a JSON object of setting values`);
  return parsed as PluginConfig;
}
