/**
 * Locates (and builds on demand) the Go interop peers: a go-plugin 1.0.1 host
 * and plugin, see test/interop/go/README.md. The build logic lives in plain
 * JS (./go/build.js) so that bench/ can share it without compiling TS.
 */
import * as path from 'path';

export interface GoPeers {
  /** go-plugin host binary (flags: -plugin, -automtls, -mode call|bench|chain, ...). */
  gohost: string;
  /** go-plugin plugin binary serving grpctest.Test under plugin name "test". */
  goplugin: string;
  /** go-plugin's test.proto (package grpctest: services Test and PingPong). */
  testProto: string;
}

export type GoPeersResult =
  | { ok: true; peers: GoPeers }
  | { ok: false; missing: string; install: string };

interface BuildModule {
  buildGoPeers(): GoPeersResult;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const build: BuildModule = require(path.join(__dirname, 'go', 'build.js'));

/**
 * Synchronously checks for Go, go-plugin's test.proto and google.golang.org/grpc;
 * if present, builds (or reuses cached) binaries. Throws with the compiler
 * output if the build fails.
 */
export function findGoPeers(): GoPeersResult {
  return build.buildGoPeers();
}

/** True when interop tests must not be skipped (PLUGHOST_REQUIRE_INTEROP=1). */
export function requireInterop(): boolean {
  return process.env.PLUGHOST_REQUIRE_INTEROP === '1';
}
