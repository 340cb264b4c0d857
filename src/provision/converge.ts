/**
 * Converging a host to a provisioning file. First every declared plugin's manifest is read
 * (a folder's directly, a bundle's by extracting it to a temp folder), so a broken bundle or
 * two entries with one id stop serve before anything changes. Then, per plugin: install if
 * missing or if the declared version is newer (semver), apply the declared settings, and
 * enable or disable. What changed is reported; a second start with the same file changes
 * nothing. Plugins installed but not declared are left as they are.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as semver from 'semver';
import { extractBundle } from '../bundle';
import { Errors, PlughostError } from '../errors';
import { loadManifest, validateConfig, type Manifest, type PluginConfig } from '../manifest';
import type { PluginHost, PluginInfo } from '../runtime';
import type { PluginDeclaration } from './config-file';

/** A declaration with the manifest it brings. */
export interface PlannedPlugin extends PluginDeclaration {
  manifest: Manifest;
}

export type ChangeAction = 'installed' | 'upgraded' | 'configured' | 'enabled' | 'disabled';

export interface ProvisionChange {
  id: string;
  action: ChangeAction;
  detail: string;
}

export interface ProvisionReport {
  changes: ProvisionChange[];
  /** Things an operator should know that are not changes (a newer version kept, a plugin that failed to start). */
  notes: string[];
  /** Plugins the file declares. */
  declared: number;
}

export interface ConvergeOptions {
  /** Packs a plugin folder into a bundle file; the CLI passes `plughost pack`'s own packing. */
  packFolder(dir: string, outFile: string): Promise<void>;
}

/** Reads every declared plugin's manifest; throws before anything is changed. */
export async function planProvision(plugins: PluginDeclaration[]): Promise<PlannedPlugin[]> {
  const planned: PlannedPlugin[] = [];
  const seen = new Map<string, string>();
  for (const declaration of plugins) {
    const manifest = await readManifest(declaration);
    const first = seen.get(manifest.id);
    if (first) throw Errors.PROVISION_DUPLICATE_ID(manifest.id, first, declaration.at);
    seen.set(manifest.id, declaration.at);
    planned.push({ ...declaration, manifest });
  }
  return planned;
}

async function readManifest(declaration: PluginDeclaration): Promise<Manifest> {
  try {
    if (declaration.kind === 'folder') return loadManifest(declaration.path).manifest;
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-prov-'));
    try {
      return (await extractBundle(declaration.path, path.join(scratch, 'x'))).manifest;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  } catch (err) {
    throw Errors.PROVISION_PLUGIN_UNREADABLE(declaration.at, declaration.path, (err as Error).message);
  }
}

/** Brings `host` to the planned state and says what it changed. */
export async function converge(host: PluginHost, planned: PlannedPlugin[], options: ConvergeOptions): Promise<ProvisionReport> {
  const report: ProvisionReport = { changes: [], notes: [], declared: planned.length };
  const installed = new Map((await host.list()).map((info) => [info.id, info]));
  for (const plan of planned) {
    const id = plan.manifest.id;
    let info = installed.get(id);
    const wanted = plan.manifest.version;
    if (!info || semver.gt(wanted, info.version)) {
      const from = info?.version;
      info = await step(id, from ? 'upgrade' : 'install', () => install(host, plan, options, from !== undefined));
      report.changes.push(from ? { id, action: 'upgraded', detail: `${from} → ${wanted}` } : { id, action: 'installed', detail: wanted });
    } else if (semver.lt(wanted, info.version)) {
      report.notes.push(`${id}: kept the installed ${info.version}; ${plan.at} declares the older ${wanted}`);
    }
    if (plan.settings) {
      const changed = await step(id, 'configure', () => configure(host, id, plan.settings!));
      if (changed.length) report.changes.push({ id, action: 'configured', detail: `set ${changed.join(', ')}` });
    }
    info = await host.get(id);
    if (plan.enabled && !info.enabled) {
      info = await host.enable(id).catch(() => host.get(id));
      report.changes.push({ id, action: 'enabled', detail: info.state });
    } else if (!plan.enabled && info.enabled) {
      info = await step(id, 'disable', () => host.disable(id));
      report.changes.push({ id, action: 'disabled', detail: info.state });
    }
    if (plan.enabled && info.state !== 'running' && info.state !== 'starting') {
      report.notes.push(`${id}: enabled but ${info.state}${info.lastError ? `: ${info.lastError}` : ''}`);
    }
  }
  return report;
}

async function install(host: PluginHost, plan: PlannedPlugin, options: ConvergeOptions, force: boolean): Promise<PluginInfo> {
  if (plan.kind === 'bundle') return host.install(plan.path, { force, signature: plan.signature });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-prov-'));
  try {
    const bundle = path.join(scratch, `${plan.manifest.id}-${plan.manifest.version}.tar.gz`);
    await options.packFolder(plan.path, bundle);
    return await host.install(bundle, { force, signature: plan.signature });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Sets the declared keys over the current configuration; returns the keys whose value changed. */
async function configure(host: PluginHost, id: string, settings: PluginConfig): Promise<string[]> {
  const { manifest } = await host.get(id);
  const current = await host.getConfig(id, { reveal: true });
  const wanted = validateConfig(manifest.settings_schema, { ...current, ...settings }, current);
  const changed = Object.keys(wanted).filter((key) => JSON.stringify(wanted[key]) !== JSON.stringify(current[key]));
  if (changed.length) await host.setConfig(id, wanted);
  return changed;
}

async function step<T>(id: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw Errors.PROVISION_STEP_FAILED(id, what, err instanceof PlughostError || err instanceof Error ? err.message : String(err));
  }
}

/** The report as lines for the terminal. */
export function formatReport(file: string, report: ProvisionReport): string[] {
  const head = report.changes.length === 0
    ? `provisioning ${file}: nothing changed (${report.declared} plugin(s) as declared)`
    : `provisioning ${file}: ${report.changes.length} change(s)`;
  return [head, ...report.changes.map((c) => `  ${c.action} ${c.id}: ${c.detail}`), ...report.notes.map((n) => `  note: ${n}`)];
}
