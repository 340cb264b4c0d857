'use strict';
/**
 * Builds the Go example plugin offline, in GOPATH mode, against Debian's
 * hashicorp/go-plugin 1.0.1 and google.golang.org/grpc (under /usr/share/gocode),
 * and stages a plugin folder (plugin.json + bin/go-example) ready to pack.
 *
 * The binary is cached under <repo>/.cache/example-go/<hash>/, the hash covering
 * the Go sources, this file and `go version`; concurrent callers build into
 * private temp dirs and rename into place, and a loser keeps the winner's build.
 *
 *   node examples/go/build.js [stage-dir]   prints {"ok":true,"binary":...}
 */
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');

const GOCODE = '/usr/share/gocode';
const NEEDED = ['github.com/hashicorp/go-plugin', 'google.golang.org/grpc', 'github.com/golang/protobuf/proto'];
const INSTALL = 'apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-goprotobuf-dev';
const PKG = 'plughost-example-go';
const BINARY = 'go-example';
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CACHE_ROOT = path.join(REPO_ROOT, '.cache', 'example-go');

function sources() {
  const found = [];
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(__dirname, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (fs.statSync(path.join(__dirname, r)).isDirectory()) walk(r);
      else if (name.endsWith('.go')) found.push(r);
    }
  };
  walk('');
  return found;
}

function goVersion() {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? null : r.stdout.trim();
}

function hashOf(version, files) {
  const h = crypto.createHash('sha256');
  h.update(`${version}\0`);
  h.update(fs.readFileSync(__filename));
  for (const f of files) h.update(`\0${f}\0`).update(fs.readFileSync(path.join(__dirname, f)));
  return h.digest('hex').slice(0, 16);
}

/**
 * @returns {{ok: true, binary: string} | {ok: false, missing: string, install: string}}
 * Throws with the compiler output when the toolchain is there but the build fails.
 */
function buildGoExample() {
  const version = goVersion();
  if (!version) return { ok: false, missing: 'go (not found on PATH)', install: INSTALL };
  for (const pkg of NEEDED) {
    if (!fs.existsSync(path.join(GOCODE, 'src', pkg))) return { ok: false, missing: path.join(GOCODE, 'src', pkg), install: INSTALL };
  }
  const files = sources();
  const finalDir = path.join(CACHE_ROOT, hashOf(version, files));
  const binary = path.join(finalDir, BINARY);
  if (fs.existsSync(binary)) return { ok: true, binary };

  fs.mkdirSync(CACHE_ROOT, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE_ROOT, `tmp-${process.pid}-`));
  try {
    const pkgDir = path.join(work, 'gopath', 'src', PKG);
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(pkgDir, f)), { recursive: true });
      fs.copyFileSync(path.join(__dirname, f), path.join(pkgDir, f));
    }
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    const r = spawnSync('go', ['build', '-o', path.join(out, BINARY), PKG], {
      cwd: pkgDir,
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOPATH: `${path.join(work, 'gopath')}${path.delimiter}${GOCODE}`,
        GOPROXY: 'off',
        GOFLAGS: '',
        CGO_ENABLED: '0',
        GOCACHE: process.env.GOCACHE || path.join(REPO_ROOT, '.cache', 'interop-go', 'gocache'),
      },
    });
    if (r.error) throw new Error(`go build ${PKG}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`go build ${PKG} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
    try {
      fs.renameSync(out, finalDir);
    } catch (err) {
      if (!fs.existsSync(binary)) throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { ok: true, binary };
}

/** Copies plugin.json and the built binary into `dir` (bin/go-example), ready for packBundle. */
function stageGoExample(dir) {
  const built = buildGoExample();
  if (!built.ok) return built;
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync(path.join(__dirname, 'plugin.json'), path.join(dir, 'plugin.json'));
  fs.copyFileSync(built.binary, path.join(dir, 'bin', BINARY));
  fs.chmodSync(path.join(dir, 'bin', BINARY), 0o755);
  return { ok: true, binary: built.binary, dir };
}

module.exports = { buildGoExample, stageGoExample, INSTALL };

if (require.main === module) {
  console.log(JSON.stringify(process.argv[2] ? stageGoExample(process.argv[2]) : buildGoExample()));
}
