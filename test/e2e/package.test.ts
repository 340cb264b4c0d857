/**
 * The package as users get it: `npm pack`, unpacked into a fresh ESM project and a fresh
 * CommonJS project, type-checked there with strict tsc, and the documentation's import lines
 * run with node.
 *
 * Packing uses `--ignore-scripts`: `npm test`'s pretest has just built dist/, and running the
 * prepack build here would rewrite dist/ under the feet of the other tests (and take a minute
 * on two cores). That prepack builds is asserted on its own below.
 *
 * The temporary projects get the tarball's contents as node_modules/plughost and, for its
 * dependencies, symlinks to this repository's node_modules, one per name the packed
 * package.json lists under `dependencies` (and typescript and @types/node, the consumer's own
 * tools). No registry and no npm cache are involved, so this works offline on a clean CI clone
 * after `npm ci`; and because plughost's own files resolve only through those links, a
 * dependency the code needs but package.json does not declare (or a devDependency leaking into
 * the public types, such as @types/better-sqlite3) fails here as it would for a user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as semver from 'semver';

const ROOT = path.resolve(__dirname, '..', '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
  files: string[];
  dependencies: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
};
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Every `import { … } from 'plughost…'` line of the README and the docs a user copies from. */
function documentedImports(): string[] {
  const pages = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).map((f) => path.join('docs', f))];
  const lines = new Set<string>();
  for (const page of pages) {
    // At a line's start in code blocks, or in running text between backticks.
    for (const m of fs.readFileSync(path.join(ROOT, page), 'utf8').matchAll(/^import \{[^}]*\} from 'plughost(?:\/[a-z/]+)?'|`(import \{[^}`]*\} from 'plughost(?:\/[a-z/]+)?')/gm)) {
      lines.add(`${m[1] ?? m[0]};`);
    }
  }
  return [...lines];
}

/** The runtime names of an import line (type-only names dropped), for a check that each is defined. */
function valueNames(line: string): string[] {
  return /\{([^}]*)\}/.exec(line)![1].split(',').map((s) => s.trim()).filter((s) => s && !s.startsWith('type '));
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} in ${cwd} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function link(project: string, name: string): void {
  const at = path.join(project, 'node_modules', name);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules', name), at, 'dir');
}

describe('the packed package', () => {
  let work: string;
  let unpacked: string;
  let files: string[];
  let packedPkg: typeof PKG;
  const imports = documentedImports();

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-package-'));
    const [info] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' })) as [{ filename: string; files: { path: string }[] }];
    files = info.files.map((f) => f.path);
    unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', path.join(work, info.filename), '-C', unpacked]);
    packedPkg = JSON.parse(fs.readFileSync(path.join(unpacked, 'package', 'package.json'), 'utf8'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  /** A consumer project with the unpacked package installed in it, as npm would lay it out. */
  function project(name: string, pkg: object, tsconfig: object, sources: Record<string, string>): string {
    const dir = path.join(work, name);
    fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    fs.cpSync(path.join(unpacked, 'package'), path.join(dir, 'node_modules', 'plughost'), { recursive: true });
    for (const dep of [...Object.keys(packedPkg.dependencies), 'typescript', '@types/node']) link(dir, dep);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, ...pkg }));
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    for (const [file, text] of Object.entries(sources)) fs.writeFileSync(path.join(dir, file), text);
    return dir;
  }

  /**
   * One module per documented import line (two lines may import the same name), each printing
   * typeof what it imported (so tsc cannot drop the import as unused), and main.ts importing
   * them all in order, so one node process runs every line.
   */
  function importModules(lines: string[]): Record<string, string> {
    const modules: Record<string, string> = Object.fromEntries(
      lines.map((line, i) => [`import-${i}.ts`, `${line}\nconsole.log(JSON.stringify({ ${valueNames(line).map((n) => `${JSON.stringify(n)}: typeof ${n}`).join(', ')} }));\n`]),
    );
    modules['main.ts'] = lines.map((_, i) => `import './import-${i}.js';\n`).join('');
    return modules;
  }

  function runImports(dir: string, lines: string[]): void {
    const printed = run(process.execPath, [path.join('out', 'main.js')], dir).trim().split('\n');
    expect(printed).toHaveLength(lines.length);
    lines.forEach((line, i) => {
      const seen = JSON.parse(printed[i]) as Record<string, string>;
      for (const name of valueNames(line)) expect(`${line}: ${name} is ${seen[name]}`).toBe(`${line}: ${name} is function`);
    });
  }

  /** An expect-error directive fails tsc when its line type-checks, so an import that resolved to `any` fails here. */
  const TYPED = `
import { PluginHost } from 'plughost';
import { servePlugin } from 'plughost/sdk';
import { createTestHost } from 'plughost/sdk/testing';
// @ts-expect-error a class is not a number: proves the import is typed, not any
export const a: number = PluginHost;
// @ts-expect-error
export const b: number = servePlugin;
// @ts-expect-error
export const c: number = createTestHost;
`;

  it('holds dist/ and what the exports and the bin name, and no bundles or source maps', () => {
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/sdk/index.d.ts');
    for (const target of Object.values(PKG.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)))) {
      expect(files).toContain(path.posix.normalize(target));
    }
    for (const bin of Object.values(PKG.bin)) expect(files).toContain(path.posix.normalize(bin));
    // What plughost init copies: the TypeScript template (its gitignore without the dot npm would drop) and the Python starter.
    for (const f of ['src/plugin.ts', 'src/types.ts', 'test/plugin.test.ts', 'tsconfig.json', 'gitignore', 'README.md']) expect(files).toContain(`templates/typescript/${f}`);
    expect(files).toContain('examples/python/main.py');
    expect(files.filter((f) => f.startsWith('dist/bundles/') || f.endsWith('.map') || f.startsWith('dist/test/'))).toEqual([]);
  });

  it('builds dist/ when packed from a fresh clone (prepack)', () => {
    expect(PKG.scripts.prepack).toBe('npm run build');
    expect(PKG.scripts.build).toMatch(/\btsc -p tsconfig\.json\b/);
    const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
    expect(tsconfig.compilerOptions.outDir).toBe('dist');
  });

  it('locks no dependency that wants a newer Node than engines allows (npm ci would warn EBADENGINE)', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
    const oldest = semver.minVersion(PKG.engines.node)!.version;
    const wanting = Object.entries(lock.packages)
      .filter(([, p]) => p.engines?.node && !semver.satisfies(oldest, p.engines.node))
      .map(([at, p]) => `${at}@${p.version} wants node ${p.engines!.node}`);
    expect(wanting).toEqual([]);
  });

  it('runs its bin', () => {
    const dir = project('bin', {}, {}, {});
    expect(run(process.execPath, [path.join(dir, 'node_modules', 'plughost', PKG.bin.plughost), '--help'], dir)).toContain('plughost pack');
  });

  it('type-checks and runs in an ESM project (moduleResolution node16)', () => {
    const lines = imports;
    expect(lines.some((l) => l.includes("from 'plughost/webapp'"))).toBe(true);
    const dir = project(
      'esm',
      { type: 'module' },
      // skipLibCheck false: our .d.ts files are checked too, so one naming a module the user lacks types for (TS7016) fails here.
      { compilerOptions: { strict: true, skipLibCheck: false, module: 'node16', moduleResolution: 'node16', target: 'ES2022', lib: ['ES2022', 'DOM'], types: ['node'], outDir: 'out' } },
      {
        ...importModules(lines),
        'typed.ts': `${TYPED}import { startPlugins } from 'plughost/webapp';\n// @ts-expect-error\nexport const d: number = startPlugins;\nexport const e: Promise<void> = startPlugins({ base: '/x' }).ready;\n`,
      },
    );
    run(process.execPath, [TSC, '-p', '.'], dir);
    runImports(dir, lines);
  });

  it('type-checks and runs in a CommonJS project (moduleResolution node10)', () => {
    // plughost/webapp is a browser ES module: a CommonJS Node project has no use for it.
    const lines = imports.filter((l) => !l.includes("'plughost/webapp'"));
    const dir = project(
      'cjs',
      { type: 'commonjs' },
      // skipLibCheck true, as `tsc --init` writes it: checking every library's .d.ts again costs ten seconds and the ESM project does it.
      { compilerOptions: { strict: true, skipLibCheck: true, module: 'commonjs', moduleResolution: 'node10', target: 'ES2022', lib: ['ES2022'], types: ['node'], esModuleInterop: true, outDir: 'out' } },
      { ...importModules(lines), 'typed.ts': TYPED },
    );
    run(process.execPath, [TSC, '-p', '.'], dir);
    runImports(dir, lines);
  });
});
