/**
 * The Python and Go example plugins, ready to pack: whether this machine can
 * run them, and if so a staged plugin folder. Without Debian's packages the
 * tests that need them say what to install and skip, unless
 * PLUGHOST_REQUIRE_INTEROP=1 (CI), where a missing peer is a failure.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const PYTHON_EXAMPLE = path.join(ROOT, 'examples', 'python');
const PYTHON = '/usr/bin/python3';
const PYTHON_INSTALL = 'apt-get install python3-grpcio python3-protobuf';

export type Peer = { ok: true; dir: string } | { ok: false; missing: string; install: string };

interface GoBuildModule {
  stageGoExample(dir: string): { ok: true; binary: string; dir: string } | { ok: false; missing: string; install: string };
}

/** The Python example's folder, when /usr/bin/python3 can import grpc and protobuf. */
export function pythonPeer(): Peer {
  const r = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return { ok: false, missing: `${PYTHON} with grpc and protobuf (${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || 'import failed'})`, install: PYTHON_INSTALL };
  }
  return { ok: true, dir: PYTHON_EXAMPLE };
}

/** The Go example built (offline, cached) and staged in `dir` with its plugin.json. */
export function goPeer(dir: string): Peer {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const build: GoBuildModule = require(path.join(ROOT, 'examples', 'go', 'build.js'));
  const staged = build.stageGoExample(dir);
  return staged.ok ? { ok: true, dir: staged.dir } : staged;
}

/** True when a missing peer must fail the run instead of skipping. */
export function requireInterop(): boolean {
  return process.env.PLUGHOST_REQUIRE_INTEROP === '1';
}

/** `describe` or `describe.skip` for a peer, saying what to install when it is missing. */
export function describeWith(peer: Peer, what: string): jest.Describe {
  if (peer.ok) return describe;
  const message = `${what} missing (${peer.missing}). Install with: ${peer.install}`;
  if (requireInterop()) throw new Error(`PLUGHOST_REQUIRE_INTEROP=1: ${message}`);
  process.stderr.write(`SKIP ${what}: ${message}\n`);
  return describe.skip;
}

/** Polls until `pid` is gone or `boundMs` passes; true when it is still alive then. */
export async function isAliveAfter(pid: number, boundMs: number): Promise<boolean> {
  const until = Date.now() + boundMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    if (Date.now() > until) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
}
