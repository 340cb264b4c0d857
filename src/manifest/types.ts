/**
 * The plugin manifest as plugin authors write it (plugin.json, plugin.yaml or plugin.yml).
 * Field names are snake_case on purpose: they are the file format, not JavaScript style.
 */

/** Go-style platform keys, as go-plugin projects name their release builds. */
export const PLATFORM_KEYS = ['linux-amd64', 'linux-arm64', 'darwin-amd64', 'darwin-arm64', 'windows-amd64'] as const;
export type PlatformKey = (typeof PLATFORM_KEYS)[number];

/** The server part: one executable, one per platform, or a script run by the host's own node. */
export type ServerSpec =
  | { executable: string; executables?: undefined; runtime?: undefined; entry?: undefined }
  | { executables: Partial<Record<PlatformKey, string>>; executable?: undefined; runtime?: undefined; entry?: undefined }
  | { runtime: 'node'; entry: string; executable?: undefined; executables?: undefined };

export interface Limits {
  /** How long the plugin may take to print its handshake line. */
  start_timeout_ms?: number;
  /** Deadline of one hook call. */
  hook_timeout_ms?: number;
  /** Memory ceiling for the plugin process, in MiB. */
  memory_mb?: number;
}

export const SETTING_TYPES = ['bool', 'text', 'longtext', 'number', 'dropdown', 'radio', 'secret', 'list', 'multiselect'] as const;
export type SettingType = (typeof SETTING_TYPES)[number];

/** A value a setting can hold once configured: a `list` or `multiselect` holds a list of strings. */
export type SettingValue = boolean | string | number | string[];

export interface SettingOption {
  display_name: string;
  value: string;
}

export interface Setting {
  key: string;
  type: SettingType;
  display_name?: string;
  default?: SettingValue;
  /** Required (and only allowed) for dropdown, radio and multiselect. */
  options?: SettingOption[];
  required?: boolean;
  help_text?: string;
}

export interface SettingsSchema {
  settings: Setting[];
}

export interface WebappSpec {
  /** A JavaScript bundle, relative to the plugin folder, served to the integrator's front end. */
  bundle_path: string;
}

/** How `plughost pack` builds the bundle from the plugin folder. */
export interface PackSpec {
  /**
   * Paths left out besides the ones always left out. Simple globs, relative to the plugin
   * folder: `*` and `?` within one path segment, `**` for any number of segments; a pattern
   * without `/` matches a name at any depth, one with a leading or inner `/` is anchored at the
   * plugin folder, a trailing `/` matches folders only.
   */
  ignore?: string[];
}

/** A JSON value, as `props` may hold anything JSON can say. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface Manifest {
  id: string;
  name: string;
  version: string;
  description?: string;
  homepage_url?: string;
  support_url?: string;
  release_notes_url?: string;
  icon_path?: string;
  /** A semver range (">=1.2.0") or a plain version, meaning "this version or newer". */
  min_host_version?: string;
  server?: ServerSpec;
  args?: string[];
  env?: Record<string, string>;
  limits?: Limits;
  settings_schema?: SettingsSchema;
  /** Names of the integrator's API methods this plugin may call through `Invoke`. */
  permissions?: string[];
  props?: { [key: string]: JsonValue };
  webapp?: WebappSpec;
  pack?: PackSpec;
}

/** A configuration for a plugin: setting key to value. */
export type PluginConfig = Record<string, SettingValue>;

export type ManifestFormat = 'json' | 'yaml';

/** The file names a manifest may have, in the order they are looked for. */
export const MANIFEST_FILES = ['plugin.json', 'plugin.yaml', 'plugin.yml'] as const;
