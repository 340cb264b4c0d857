/**
 * The Settings type written from a settings schema: every setting type, optional versus
 * always present, keys that are not identifiers, doc comments that cannot close early; and
 * the generated source type-checks against the SDK's built types (dist/, made by npm run build)
 * the way a plugin uses it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SETTINGS_TYPES_HEADER, isGeneratedSettingsTypes, settingsTypeSource, type SettingsSchema } from '../../src/manifest';
import { tempDir } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const days = [{ display_name: 'Monday', value: 'mon' }, { display_name: 'Tuesday', value: 'tue' }];

const SCHEMA: SettingsSchema = {
  settings: [
    { key: 'greeting', type: 'text', display_name: 'Greeting', default: 'Hello', help_text: 'Shown on */ the page.' },
    { key: 'notes', type: 'longtext' },
    { key: 'token', type: 'secret', required: true },
    { key: 'limit', type: 'number', default: 10 },
    { key: 'loud', type: 'bool' },
    { key: 'color', type: 'dropdown', options: [{ display_name: 'Red', value: 'red' }, { display_name: 'Quote', value: 'say "hi"' }] },
    { key: 'size', type: 'radio', default: 's', options: [{ display_name: 'S', value: 's' }] },
    { key: 'log.level', type: 'text' },
    { key: 'tags', type: 'list', default: [] },
    { key: 'days', type: 'multiselect', options: days },
  ],
};

describe('settingsTypeSource', () => {
  it('writes one property per setting, typed and optional as validateConfig guarantees', () => {
    expect(settingsTypeSource(SCHEMA, 'plugin.yaml')).toBe(`${SETTINGS_TYPES_HEADER}
// Source: plugin.yaml, settings_schema. \`plughost pack\` refreshes this file; \`plughost types --check\` fails when it is stale.

/** The plugin's configuration as \`ctx.config\` holds it. */
export type Settings = {
  /** Greeting: Shown on *\\/ the page. */
  greeting: string;
  notes?: string;
  token: string;
  limit: number;
  loud?: boolean;
  color?: "red" | "say \\"hi\\"";
  size: "s";
  "log.level"?: string;
  tags: string[];
  days?: Array<"mon" | "tue">;
};
`);
  });

  it('writes an empty type for a plugin without settings, and knows its own files by their first line', () => {
    const source = settingsTypeSource(undefined, 'plugin.json');
    expect(source).toContain('export type Settings = {};\n');
    expect(isGeneratedSettingsTypes(source)).toBe(true);
    expect(isGeneratedSettingsTypes(`// my own\n${source}`)).toBe(false);
  });

  it('compiles with strict tsc and constrains a plugin that uses it', () => {
    const work = tempDir('phst-');
    try {
      fs.writeFileSync(path.join(work.dir, 'settings.ts'), settingsTypeSource(SCHEMA, 'plugin.json'));
      fs.writeFileSync(path.join(work.dir, 'plugin.ts'), `import { definePlugin } from ${JSON.stringify(path.join(ROOT, 'dist', 'sdk', 'index'))};
import type { Settings } from './settings';
export default definePlugin<{}, {}, Settings>({
  onActivate(ctx) {
    const days: Array<'mon' | 'tue'> = ctx.config.days ?? [];
    const tags: string[] = ctx.config.tags;
    const level: string | undefined = ctx.config['log.level'];
    // @ts-expect-error a setting the manifest does not have
    ctx.log.info(ctx.config.greting);
    ctx.log.info(ctx.config.greeting, { days, tags, level, limit: ctx.config.limit + 1 });
  },
});
`);
      const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--skipLibCheck', '--target', 'ES2022', '--module', 'commonjs', '--types', 'node', path.join(work.dir, 'plugin.ts')], { cwd: ROOT, encoding: 'utf8' });
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    } finally {
      work.cleanup();
    }
  }, 60_000);
});
