/**
 * What an install over an installed plugin does with its stored configuration.
 * Each setting is judged on its own, so one setting the new version dropped or
 * retyped costs that setting only, never the others (secrets included): a value
 * that still fits the new settings schema is kept, one that does not is dropped
 * and reported, and the new version's defaults fill what is missing.
 */
import { PlughostError } from '../errors';
import { isMissing, validateConfig, type PluginConfig, type Setting, type SettingsSchema } from '../manifest';

/** One setting an upgrade could not keep, and why, in words for the operator. */
export interface DroppedSetting {
  key: string;
  reason: string;
}

export interface CarriedConfig {
  config: PluginConfig;
  dropped: DroppedSetting[];
  /** Required by the new version and without a value: enable will refuse until it is set. */
  missing: string[];
}

/**
 * `previous` (stored under `oldSchema`) moved under `newSchema`. Reasons never
 * quote a secret's value: a setting that is a secret in either schema is
 * described by what was expected only.
 */
export function carryConfig(oldSchema: SettingsSchema | undefined, newSchema: SettingsSchema | undefined, previous: PluginConfig): CarriedConfig {
  const settings = newSchema?.settings ?? [];
  const wasSecret = new Set((oldSchema?.settings ?? []).filter((s) => s.type === 'secret').map((s) => s.key));
  const byKey = new Map(settings.map((s) => [s.key, s]));
  const kept: PluginConfig = {};
  const dropped: DroppedSetting[] = [];
  for (const [key, value] of Object.entries(previous)) {
    const setting = byKey.get(key);
    if (!setting) {
      dropped.push({ key, reason: 'the new version has no such setting' });
      continue;
    }
    const problem = valueProblem(setting, value);
    if (problem === null) kept[key] = value;
    else dropped.push({ key, reason: `its value does not fit the new version (${wasSecret.has(key) || setting.type === 'secret' ? withoutValue(problem) : problem})` });
  }
  for (const setting of settings) {
    if (kept[setting.key] === undefined && setting.default !== undefined) kept[setting.key] = setting.default;
  }
  const missing = settings.filter((s) => s.required && isMissing(kept[s.key])).map((s) => s.key);
  if (missing.length > 0) return { config: kept, dropped, missing };
  // Normalized as any stored configuration is: keys in schema order.
  return { config: validateConfig(newSchema, kept), dropped, missing };
}

/** The warnings an install reports for a carried configuration, one sentence each. */
export function carryWarnings(carried: CarriedConfig, newSchema: SettingsSchema | undefined): string[] {
  const defaults = new Set((newSchema?.settings ?? []).filter((s) => s.default !== undefined).map((s) => s.key));
  return [
    ...carried.dropped.map(({ key, reason }) =>
      `setting ${JSON.stringify(key)} was dropped: ${reason}${defaults.has(key) ? '; it now has the new default' : ''}`),
    ...carried.missing.map((key) => `setting ${JSON.stringify(key)} is required by the new version and has no value; set it before enabling the plugin`),
  ];
}

/** Why `value` does not fit `setting` alone, or null when it does (an empty required value counts as missing, not invalid). */
function valueProblem(setting: Setting, value: unknown): string | null {
  try {
    validateConfig({ settings: [{ ...setting, required: false }] }, { [setting.key]: value });
    return null;
  } catch (err) {
    const problems = err instanceof PlughostError ? (err.details.problems as Array<{ message: string }> | undefined) : undefined;
    return problems?.[0]?.message ?? String(err);
  }
}

function withoutValue(problem: string): string {
  return problem.replace(/, got .*$/, '');
}
