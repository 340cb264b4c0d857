/**
 * `plughost types` and the step of `plughost pack` that runs it, as the built CLI in a child
 * process over real plugin folders: written where asked, never over a hand-written file,
 * `--check` for CI, and pack refreshing only a file the command wrote.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');

function plughost(args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
}

describe('plughost types', () => {
  const work = tempDir('phty-');
  const dir = path.join(work.dir, 'p');
  const file = path.join(dir, 'src', 'settings.ts');

  beforeAll(() => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', 'plugin.ts'), 'export {};\n');
    fs.writeFileSync(path.join(dir, 'plugin.yaml'), [
      'id: com.example.types', 'name: Types', 'version: 0.1.0',
      'server: { runtime: node, entry: src/plugin.ts }',
      'settings_schema:', '  settings:', '    - { key: hosts, type: list, required: true }',
    ].join('\n'));
  }, 120_000);

  afterAll(() => work.cleanup());

  it('writes src/settings.ts from a YAML manifest, then finds it up to date', () => {
    expect(plughost(['types', 'p'], work.dir)).toMatchObject({ status: 0, stdout: 'wrote p/src/settings.ts (1 setting)\n' });
    expect(fs.readFileSync(file, 'utf8')).toContain('// Source: plugin.yaml, settings_schema.');
    expect(fs.readFileSync(file, 'utf8')).toContain('  hosts: string[];\n');
    expect(plughost(['types', 'p'], work.dir)).toMatchObject({ status: 0, stdout: 'p/src/settings.ts is up to date\n' });
    expect(plughost(['types', '.', '--check'], dir)).toMatchObject({ status: 0, stdout: 'src/settings.ts is up to date\n' });
  });

  it('--check exits 1 for a missing or stale file and changes nothing', () => {
    const missing = plughost(['types', '.', '--check', '--out', 'types/config.ts'], dir);
    expect(missing).toMatchObject({ status: 1, stderr: '"types/config.ts" is missing; run plughost types . --out types/config.ts to write it\n' });
    expect(fs.existsSync(path.join(dir, 'types'))).toBe(false);
    expect(plughost(['types', '.', '--out', 'types/config.ts'], dir)).toMatchObject({ status: 0, stdout: 'wrote types/config.ts (1 setting)\n' });
    expect(plughost(['types', '.', '--check', '--out', 'types/config.ts'], dir).status).toBe(0);
  });

  it('never overwrites a file it did not write', () => {
    const own = path.join(dir, 'src', 'mine.ts');
    fs.writeFileSync(own, 'export type Settings = { mine: true };\n');
    const r = plughost(['types', '.', '--out', 'src/mine.ts'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`plughost types: "${own}" exists and was not written by plughost types (its first line is not the generated header); move it away or write the type elsewhere with --out\n`);
    expect(fs.readFileSync(own, 'utf8')).toBe('export type Settings = { mine: true };\n');
  });

  it('is refreshed by pack when generated, and left alone by pack when hand-written', () => {
    fs.appendFileSync(path.join(dir, 'plugin.yaml'), '\n    - { key: mode, type: radio, default: a, options: [{ display_name: A, value: a }] }\n');
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'plughost'));
    const packed = plughost(['pack', 'p', '-o', 'p.tar.gz'], work.dir);
    expect(packed.status).toBe(0);
    expect(packed.stdout).toMatch(/^updated p\/src\/settings\.ts from plugin\.yaml\n/);
    expect(fs.readFileSync(file, 'utf8')).toContain('  mode: "a";\n');
    expect(plughost(['pack', 'p', '-o', 'p.tar.gz'], work.dir).stdout).not.toContain('updated');

    fs.writeFileSync(file, 'export type Settings = { hosts: string[] };\n');
    const again = plughost(['pack', 'p', '-o', 'p.tar.gz'], work.dir);
    expect(again.status).toBe(0);
    expect(again.stdout).not.toContain('updated');
    expect(fs.readFileSync(file, 'utf8')).toBe('export type Settings = { hosts: string[] };\n');
  });
});
