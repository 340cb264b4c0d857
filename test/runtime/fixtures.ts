/** Builds plugin bundles around test/fixtures/runtime/contract-plugin.js for runtime tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packBundle } from '../../src/bundle';
import { FIXTURES } from '../helpers';

export interface FixtureOptions {
  id: string;
  version?: string;
  env?: Record<string, string>;
  permissions?: string[];
  limits?: Record<string, number>;
  min_host_version?: string;
  settings?: boolean;
  /** Replaces the default settings schema. */
  settingsSchema?: Record<string, unknown>;
  /** The plugin program, below test/fixtures. Default runtime/contract-plugin.js. */
  program?: string;
}

/** Packs a bundle for the contract fixture plugin (or `program`) and returns its path. */
export async function fixtureBundle(workDir: string, o: FixtureOptions): Promise<string> {
  const dir = path.join(workDir, `src-${o.id}-${o.version ?? '1.0.0'}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir, { recursive: true });
  const manifest: Record<string, unknown> = {
    id: o.id,
    name: `Fixture ${o.id}`,
    version: o.version ?? '1.0.0',
    server: { runtime: 'node', entry: 'main.js' },
    env: o.env ?? {},
    permissions: o.permissions ?? [],
    limits: { hook_timeout_ms: 3000, ...o.limits },
  };
  if (o.min_host_version) manifest.min_host_version = o.min_host_version;
  if (o.settingsSchema) {
    manifest.settings_schema = o.settingsSchema;
  } else if (o.settings !== false) {
    manifest.settings_schema = {
      settings: [
        { key: 'greeting', type: 'text', default: 'hello' },
        { key: 'token', type: 'secret' },
        { key: 'count', type: 'number', default: 1 },
      ],
    };
  }
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest, null, 2));
  fs.writeFileSync(path.join(dir, 'main.js'), `require(${JSON.stringify(path.join(FIXTURES, o.program ?? 'runtime/contract-plugin.js'))});\n`);
  const out = `${dir}.tar.gz`;
  await packBundle(dir, out);
  return out;
}
