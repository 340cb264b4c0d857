'use strict';
/**
 * Builds the Go interop peers (gohost, goplugin) against the Debian-packaged
 * hashicorp/go-plugin 1.0.1, offline, in GOPATH mode.
 *
 * Binaries are cached under <repo>/.cache/interop-go/<hash>/ where <hash>
 * covers the Go sources, this file and `go version`. Concurrent callers (e.g.
 * two jest workers) each build into a private temp dir and rename it into
 * place; whoever loses the race keeps the winner's binaries.
 *
 * Plain CommonJS so both bench/ (plain Node) and test/ (ts-jest) can use it.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');

const GOCODE = '/usr/share/gocode';
const GO_PLUGIN_DIR = path.join(GOCODE, 'src/github.com/hashicorp/go-plugin');
const TEST_PROTO = path.join(GO_PLUGIN_DIR, 'test/grpc/test.proto');
const GRPC_DIR = path.join(GOCODE, 'src/google.golang.org/grpc');
const INSTALL = 'apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev';

const SRC_DIR = path.join(__dirname, 'src');
const PROGRAMS = ['goplugin', 'gohost'];
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CACHE_ROOT = path.join(REPO_ROOT, '.cache', 'interop-go');

function missing(what) {
  return { ok: false, missing: what, install: INSTALL };
}

function goVersion() {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.trim();
}

function sourceHash(version) {
  const h = crypto.createHash('sha256');
  h.update(version + '\0');
  h.update(fs.readFileSync(__filename));
  for (const prog of PROGRAMS) {
    const file = path.join(SRC_DIR, prog, 'main.go');
    h.update('\0' + prog + '\0');
    h.update(fs.readFileSync(file));
  }
  return h.digest('hex').slice(0, 16);
}

function binPaths(dir) {
  return { gohost: path.join(dir, 'gohost'), goplugin: path.join(dir, 'goplugin') };
}

function complete(dir) {
  const b = binPaths(dir);
  return fs.existsSync(b.gohost) && fs.existsSync(b.goplugin);
}

function goBuild(gopath, outFile, pkg) {
  const env = {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: `${gopath}${path.delimiter}${GOCODE}`,
    GOPROXY: 'off',
    GOFLAGS: '',
    CGO_ENABLED: '0',
    GOCACHE: process.env.GOCACHE || path.join(CACHE_ROOT, 'gocache'),
  };
  const r = spawnSync('go', ['build', '-o', outFile, pkg], {
    cwd: path.join(gopath, 'src', pkg),
    env,
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.error) throw new Error(`go build ${pkg}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`go build ${pkg} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  }
}

/**
 * @returns {{ok: true, peers: {gohost: string, goplugin: string, testProto: string}}
 *         | {ok: false, missing: string, install: string}}
 * Throws (with the compiler output) when the toolchain is present but the build fails.
 */
function buildGoPeers() {
  const version = goVersion();
  if (!version) return missing('go (not found on PATH)');
  if (!fs.existsSync(TEST_PROTO)) return missing(TEST_PROTO);
  if (!fs.existsSync(GRPC_DIR)) return missing(GRPC_DIR);

  const finalDir = path.join(CACHE_ROOT, sourceHash(version));
  const done = () => ({ ok: true, peers: { ...binPaths(finalDir), testProto: TEST_PROTO } });
  if (complete(finalDir)) return done();

  fs.mkdirSync(CACHE_ROOT, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE_ROOT, `tmp-${process.pid}-`));
  try {
    const gopath = path.join(work, 'gopath');
    const outDir = path.join(work, 'out');
    fs.mkdirSync(outDir);
    for (const prog of PROGRAMS) {
      const pkg = `plughost-interop/${prog}`;
      const pkgDir = path.join(gopath, 'src', pkg);
      fs.mkdirSync(pkgDir, { recursive: true });
      fs.copyFileSync(path.join(SRC_DIR, prog, 'main.go'), path.join(pkgDir, 'main.go'));
      goBuild(gopath, path.join(outDir, prog), pkg);
    }
    try {
      fs.renameSync(outDir, finalDir);
    } catch (err) {
      // Another process renamed its build into place first: use that one.
      if (!complete(finalDir)) throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (!complete(finalDir)) throw new Error(`go interop build left no binaries in ${finalDir}`);
  return done();
}

module.exports = { buildGoPeers, INSTALL, TEST_PROTO };

if (require.main === module) {
  console.log(JSON.stringify(buildGoPeers()));
}
