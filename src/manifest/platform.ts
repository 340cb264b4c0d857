import { Errors } from '../errors';
import { Manifest, PLATFORM_KEYS, PlatformKey } from './types';

/** What the host should launch: a file from the bundle, or a script for its own node. */
export type LaunchTarget = { kind: 'exec'; path: string } | { kind: 'node'; entry: string };

const GO_OS: Partial<Record<NodeJS.Platform, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows' };
const GO_ARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64' };

/** Node's platform and arch spelled the way Go release builds are named (`linux-amd64`). */
export function platformKey(platform: string = process.platform, arch: string = process.arch): string {
  const os = GO_OS[platform as NodeJS.Platform] ?? platform;
  return `${os}-${GO_ARCH[arch] ?? arch}`;
}

/**
 * Picks what to run for this machine. A single `executable` is assumed to suit the machine
 * (the author built it for where the plugin is deployed); `executables` must name this platform.
 */
export function selectExecutable(manifest: Manifest, platform: string = process.platform, arch: string = process.arch): LaunchTarget {
  const server = manifest.server;
  const key = platformKey(platform, arch);
  if (!server) throw Errors.NO_EXECUTABLE_FOR_PLATFORM(manifest.id, key, []);
  if (server.runtime === 'node') return { kind: 'node', entry: server.entry };
  if (server.executable !== undefined) return { kind: 'exec', path: server.executable };
  const builds = server.executables;
  const available = PLATFORM_KEYS.filter((k) => builds[k] !== undefined);
  const chosen = (PLATFORM_KEYS as readonly string[]).includes(key) ? builds[key as PlatformKey] : undefined;
  if (chosen === undefined) throw Errors.NO_EXECUTABLE_FOR_PLATFORM(manifest.id, key, available);
  return { kind: 'exec', path: chosen };
}
