'use strict';
// Makes the SDK's own package, @plughost/sdk, from the build in dist/: the compiled sdk/ and the
// part of src/ it requires (the protocol layer, found by following require() from the SDK's
// entry points), their type declarations, and proto/. Its dependencies are the ones those files
// require, at the versions the root package.json pins: no fastify, no SQLite, no native build.
//   node scripts/pack-sdk.js [--out dir]      (npm run pack:sdk builds first)
// Prints the tarball's path.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const ENTRIES = ['sdk/index.js', 'sdk/testing.js'];

/** Files under dist/ reachable from the entries, and the packages they require. */
function closure() {
  const files = new Set();
  const packages = new Set();
  const walk = (file) => {
    if (files.has(file)) return;
    files.add(file);
    if (!file.endsWith('.js')) return;
    const source = fs.readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/require\(["']([^"']+)["']\)/g)) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
        continue;
      }
      const base = path.resolve(path.dirname(file), spec);
      const found = [base, `${base}.js`, path.join(base, 'index.js')].find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
      if (!found) throw new Error(`${path.relative(DIST, file)} requires ${spec}, which dist/ does not have: run npm run build`);
      walk(found);
    }
  };
  for (const entry of ENTRIES) walk(path.join(DIST, entry));
  return { files: [...files], packages: [...packages].sort() };
}

function main() {
  const outIndex = process.argv.indexOf('--out');
  const outDir = path.resolve(outIndex > 0 ? process.argv[outIndex + 1] : path.join(DIST, 'packages'));
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const template = JSON.parse(fs.readFileSync(path.join(ROOT, 'sdk', 'package.json'), 'utf8'));
  const { files, packages } = closure();
  const optional = new Set(Object.keys(template.peerDependencies ?? {}));
  const dependencies = {};
  for (const name of packages.filter((p) => !optional.has(p))) {
    const version = root.dependencies?.[name];
    if (!version) throw new Error(`the SDK requires ${name}, which the root package.json does not list in dependencies`);
    dependencies[name] = version;
  }
  for (const banned of ['fastify', 'better-sqlite3', 'pg']) {
    if (dependencies[banned]) throw new Error(`the SDK's files require ${banned}; it must stay out of @plughost/sdk`);
  }
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-sdk-'));
  try {
    for (const file of files) {
      const rel = path.relative(DIST, file);
      for (const f of [file, file.replace(/\.js$/, '.d.ts')]) {
        if (!fs.existsSync(f)) continue;
        fs.mkdirSync(path.join(stage, 'dist', path.dirname(rel)), { recursive: true });
        fs.copyFileSync(f, path.join(stage, 'dist', path.relative(DIST, f)));
      }
    }
    // Declarations the copied ones import (types only: no JavaScript behind them, e.g. the generated proto types).
    copyTypeClosure(stage);
    fs.cpSync(path.join(ROOT, 'proto'), path.join(stage, 'proto'), { recursive: true });
    const pkg = { ...template, version: root.version, dependencies };
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    fs.copyFileSync(path.join(ROOT, 'sdk', 'README.md'), path.join(stage, 'README.md'));
    if (fs.existsSync(path.join(ROOT, 'LICENSE'))) fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(stage, 'LICENSE'));
    fs.mkdirSync(outDir, { recursive: true });
    const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8' }).trim().split('\n').pop();
    process.stdout.write(`${path.join(outDir, name)}\n`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Adds every .d.ts under dist/ that a staged .d.ts imports by a relative path, until none is missing. */
function copyTypeClosure(stage) {
  const stageDist = path.join(stage, 'dist');
  const pending = [];
  const list = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? list(path.join(dir, d.name)) : [path.join(dir, d.name)]));
  for (const f of list(stageDist)) if (f.endsWith('.d.ts')) pending.push(f);
  while (pending.length) {
    const file = pending.pop();
    const source = fs.readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*["'](\.[^"']+)["']/g)) {
      const base = path.resolve(path.dirname(file), spec);
      const rel = path.relative(stageDist, base);
      for (const candidate of [`${rel}.d.ts`, path.join(rel, 'index.d.ts'), rel.endsWith('.json') ? rel : null].filter(Boolean)) {
        const from = path.join(DIST, candidate);
        const to = path.join(stageDist, candidate);
        if (fs.existsSync(to) || !fs.existsSync(from)) continue;
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(from, to);
        if (to.endsWith('.d.ts')) pending.push(to);
        break;
      }
    }
  }
}

main();
