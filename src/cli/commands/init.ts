/**
 * `plughost init <dir>`: a plugin project that tests, builds and deploys as soon as it is
 * installed. TypeScript by default (the files under templates/typescript, a manifest and a
 * package.json made here); `--lang python` and `--lang go` copy plughost's example of that
 * language as a starter.
 *
 * plughost is not on a registry yet, so the project's package.json points at this very
 * installation (`file:<its folder>`) unless `--plughost` names another spec; when that folder
 * is a checkout with its own build tools, they are linked too, so `npm install` needs no
 * download. The plugin's code imports the SDK from its own package, `@plughost/sdk`, as an
 * author who installs the SDK alone writes it; plughost stays a dependency for its CLI (types,
 * pack, dev, plugin add). From a checkout, init packs that package (scripts/pack-sdk.js) and
 * points at the tarball; `--sdk` names another spec.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { Errors } from '../../errors';
import { ID_LENGTH, ID_PATTERN, MANIFEST_FILES, loadManifest, validateManifest, type Manifest } from '../../manifest';
import { packageRoot } from '../../runtime/package-version';
import { EXIT, UsageError, onePositional, out } from '../io';
import { writeSettingsTypes } from './types';

export const usage =
  'plughost init <dir> [--id ID] [--name NAME] [--lang typescript|python|go] [--plughost SPEC] [--sdk SPEC] [--force] [--yes]   make a plugin project that tests, builds and deploys at once';

const LANGS = ['typescript', 'python', 'go'] as const;
type Lang = (typeof LANGS)[number];

/**
 * The starters of other languages: files taken from plughost's example of that language, then
 * the files of templates/<lang>, and
 * what `plughost pack` must leave out of the bundle (sources the host does not run).
 */
const STARTERS: Record<Exclude<Lang, 'typescript'>, { fromExample: string[]; template: string[]; packIgnore?: string[] }> = {
  python: { fromExample: ['.'], template: [] },
  go: { fromExample: ['main.go', 'gen', 'plugin.json'], template: ['build.sh', 'README.md', 'gitignore'], packIgnore: ['main.go', 'gen/', 'build.sh', '.gitignore'] },
};

/** The build tools a TypeScript project needs beside plughost: the type checker, the bundler `plughost pack` uses, Node's types. */
const TOOLCHAIN = ['typescript', 'esbuild', '@types/node'] as const;

/** Where `npm run build` writes the bundle and `npm run deploy` takes it from. */
const BUNDLE = 'dist/plugin.tar.gz';

/** The TypeScript template's files, copied with the identity put in (see copyTemplate). */
const TS_TEMPLATE_FILES = ['src/plugin.ts', 'src/types.ts', 'test/plugin.test.ts', 'tsconfig.json', 'gitignore', 'README.md'];

interface Identity {
  id: string;
  name: string;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      name: { type: 'string' },
      lang: { type: 'string', default: 'typescript' },
      plughost: { type: 'string' },
      sdk: { type: 'string' },
      force: { type: 'boolean' },
      yes: { type: 'boolean', short: 'y' },
    },
  });
  const dir = path.resolve(onePositional(positionals, 'project folder'));
  const lang = values.lang as Lang;
  if (!LANGS.includes(lang)) throw new UsageError(`--lang ${values.lang}: expected one of ${LANGS.join(', ')}`);
  refuseNonEmpty(dir, values.force === true);
  const root = packageRoot();
  if (!root) throw new Error('cannot find the folder plughost is installed in (no package.json above it)');
  const identity = await chooseIdentity(dir, values, process.stdin.isTTY === true && values.yes !== true);
  fs.mkdirSync(dir, { recursive: true });
  if (lang === 'typescript') writeTypeScriptProject(dir, root, identity, { plughost: values.plughost, sdk: values.sdk });
  else copyStarter(dir, root, lang, identity);
  out(`created ${identity.id} (${identity.name}) in ${dir}, ${lang}`);
  out(nextSteps(dir, lang));
  return EXIT.ok;
}

function refuseNonEmpty(dir: string, force: boolean): void {
  let found: string[];
  try {
    found = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (found.length > 0 && !force) throw Errors.INIT_DIR_NOT_EMPTY(dir, found.sort());
}

/** From the flags; else asked on a terminal; else derived from the folder's name, and said so. */
async function chooseIdentity(dir: string, flags: { id?: string; name?: string }, interactive: boolean): Promise<Identity> {
  const base = path.basename(dir);
  const slug = base.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'plugin';
  const defaults = { id: `com.example.${slug}`, name: (base.replace(/[-_.]+/g, ' ').trim() || 'Plugin').replace(/^./, (c) => c.toUpperCase()) };
  if (flags.id !== undefined && flags.name !== undefined) return { id: checkId(flags.id), name: flags.name };
  if (!interactive) {
    const derived = (['id', 'name'] as const).filter((k) => flags[k] === undefined);
    for (const key of derived) out(`no --${key} given and no terminal to ask on: using ${key} ${JSON.stringify(defaults[key])} (change it in plugin.json)`);
    return { id: checkId(flags.id ?? defaults.id), name: flags.name ?? defaults.name };
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  // Lines are read through the iterator, which keeps those typed (or pasted) ahead of a question.
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string, fallback: string): Promise<string> => {
    rl.setPrompt(`${question} (${fallback}): `);
    rl.prompt();
    const line = await lines.next();
    if (line.done) throw new Error(`no answer to "${question}": the input ended`);
    return (line.value as string).trim() || fallback;
  };
  try {
    let id = flags.id;
    while (id === undefined) {
      const answer = await ask('plugin id', defaults.id);
      const why = idProblem(answer);
      if (why) out(why);
      else id = answer;
    }
    const name = flags.name ?? (await ask('plugin name', defaults.name));
    return { id: checkId(id), name };
  } finally {
    rl.close();
  }
}

function idProblem(id: string): string | null {
  if (id.length >= ID_LENGTH.min && id.length <= ID_LENGTH.max && ID_PATTERN.test(id)) return null;
  return `id ${JSON.stringify(id)}: expected ${ID_LENGTH.min} to ${ID_LENGTH.max} characters of a-z A-Z 0-9 . _ - (e.g. com.example.greeter)`;
}

function checkId(id: string): string {
  const why = idProblem(id);
  if (why) throw new UsageError(`--${why}`);
  return id;
}

/** The specs of the project's plughost and @plughost/sdk dependencies, as given on the command line. */
interface Specs {
  plughost?: string;
  sdk?: string;
}

function writeTypeScriptProject(dir: string, root: string, identity: Identity, specs: Specs): void {
  const manifest: Manifest = {
    id: identity.id,
    name: identity.name,
    version: '0.1.0',
    description: `${identity.name}: a plughost plugin.`,
    server: { runtime: 'node', entry: 'src/plugin.ts' },
    settings_schema: {
      settings: [
        { key: 'greeting', type: 'text', display_name: 'Greeting', default: 'Hello', help_text: 'What GET /hello answers with.' },
        { key: 'blocked_words', type: 'list', display_name: 'Blocked words', default: ['spam'], help_text: 'NoteWillBeSaved rejects a note that holds one of these.' },
      ],
    },
  };
  writeManifest(dir, manifest);
  writeJson(path.join(dir, 'package.json'), packageJson(dir, root, identity, specs));
  copyTemplate(dir, path.join(root, 'templates', 'typescript'), TS_TEMPLATE_FILES, identity);
  writeSettingsTypes(loadManifest(dir), path.join(dir, 'src', 'settings.ts'));
}

/**
 * The project's package.json. plughost comes from `specs.plughost` (default: this installation's
 * folder), @plughost/sdk from `specs.sdk` (default: see sdkSpec); the toolchain is linked from
 * plughost's folder's node_modules when it has it (a checkout), else taken from the registry at
 * the versions plughost itself is built with.
 */
function packageJson(dir: string, root: string, identity: Identity, specs: Specs): object {
  const plughost = normalizeSpec(specs.plughost ?? root);
  const linkedFrom = plughost.startsWith('file:') ? path.resolve(dir, plughost.slice('file:'.length)) : undefined;
  const own = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; devDependencies?: Record<string, string> };
  const devDependencies: Record<string, string> = { plughost, '@plughost/sdk': specs.sdk ? normalizeSpec(specs.sdk) : sdkSpec(root, own.version) };
  for (const tool of TOOLCHAIN) {
    const local = linkedFrom && path.join(linkedFrom, 'node_modules', tool);
    devDependencies[tool] = local && fs.existsSync(path.join(local, 'package.json')) ? `file:${local}` : own.devDependencies?.[tool] ?? '*';
  }
  return {
    name: identity.id.toLowerCase().replace(/^[._]+/, ''),
    version: '0.1.0',
    private: true,
    description: `${identity.name}: a plughost plugin`,
    scripts: {
      types: 'plughost types .',
      check: 'plughost types . && tsc -p tsconfig.json',
      test: 'npm run check && node --test .build/test/*.test.js',
      build: `npm run check && plughost pack . -o ${BUNDLE}`,
      deploy: `npm run build && plughost plugin add ${BUNDLE} --force --enable`,
      dev: 'plughost dev .',
    },
    engines: { node: '>=20' },
    devDependencies,
    // npm 11 runs a dependency's install script only when allowed: esbuild's checks its platform binary.
    allowScripts: { esbuild: true },
  };
}

/**
 * @plughost/sdk at this installation's version: in a checkout (it has scripts/pack-sdk.js), the
 * package packed from its build into dist/packages, packed again each time so it is never older
 * than the build; in an installed plughost, the published package of the same version.
 */
function sdkSpec(root: string, version: string): string {
  const script = path.join(root, 'scripts', 'pack-sdk.js');
  if (!fs.existsSync(script)) return `^${version}`;
  const tarball = execFileSync(process.execPath, [script, '--out', path.join(root, 'dist', 'packages')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  return `file:${tarball}`;
}

/** A bare path (`../plughost`, `/tmp/plughost-0.1.0.tgz`) as npm's `file:` spec; anything else as given. */
function normalizeSpec(spec: string): string {
  return /^(\.{0,2}\/|[A-Za-z]:[\\/])/.test(spec) ? `file:${spec}` : spec;
}

/** Copies the starter of `lang` from plughost's example, with the manifest's id and name replaced. */
function copyStarter(dir: string, root: string, lang: Exclude<Lang, 'typescript'>, identity: Identity): void {
  const starter = STARTERS[lang];
  const example = path.join(root, 'examples', lang);
  for (const name of starter.fromExample) {
    const from = path.join(example, name);
    if (!fs.existsSync(from)) throw new Error(`the ${lang} starter is copied from examples/${lang} of plughost, and ${root} has no ${path.relative(root, from)}`);
    fs.cpSync(from, path.join(dir, name), { recursive: true, force: true });
  }
  copyTemplate(dir, path.join(root, 'templates', lang), starter.template, identity);
  const { manifest } = loadManifest(dir);
  const pack = starter.packIgnore ? { pack: { ignore: starter.packIgnore } } : {};
  writeManifest(dir, { ...manifest, id: identity.id, name: identity.name, description: `${identity.name}: a plughost plugin in ${lang}.`, ...pack });
}

/**
 * Copies template files, putting the identity in for `{{id}}` and `{{name}}` and keeping modes
 * (a script stays executable). `gitignore` becomes `.gitignore`: npm leaves a file of that name
 * out of a published package.
 */
function copyTemplate(dir: string, template: string, files: string[], identity: Identity): void {
  for (const from of files) {
    const to = from === 'gitignore' ? '.gitignore' : from;
    const source = path.join(template, from);
    const text = fs.readFileSync(source, 'utf8').replace(/\{\{(id|name)\}\}/g, (_, key: keyof Identity) => identity[key]);
    fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    fs.writeFileSync(path.join(dir, to), text, { mode: fs.statSync(source).mode & 0o777 });
  }
}

function writeManifest(dir: string, manifest: Manifest): void {
  const problems = validateManifest(manifest);
  if (problems.length > 0) throw Errors.MANIFEST_INVALID('plugin.json', problems);
  for (const other of MANIFEST_FILES) fs.rmSync(path.join(dir, other), { force: true });
  writeJson(path.join(dir, 'plugin.json'), manifest);
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function nextSteps(dir: string, lang: Lang): string {
  const cd = `cd ${path.relative(process.cwd(), dir) || '.'}`;
  if (lang !== 'typescript') {
    return [
      'next:',
      `  ${cd}`,
      ...(lang === 'go' ? ['  sh build.sh                      # bin/go-example; README.md says what to install'] : []),
      '  plughost pack . -o plugin.tar.gz',
      '  plughost conformance plugin.tar.gz',
      '  plughost plugin add plugin.tar.gz --force --enable   # with PLUGHOST_URL and PLUGHOST_TOKEN set',
    ].join('\n');
  }
  return [
    'next:',
    `  ${cd}`,
    '  npm install',
    '  npm test',
    `  npm run build          # ${BUNDLE}`,
    '  npm run deploy         # with PLUGHOST_URL and PLUGHOST_TOKEN set, into a running plughost serve',
    '  npm run dev            # the same on every change (plughost dev)',
  ].join('\n');
}
