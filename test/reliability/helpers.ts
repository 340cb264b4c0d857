/** Bundles of the misbehaving fixture, and waiting on processes and states, for reliability and security tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packBundle } from '../../src/bundle';
import { FIXTURES, NODE } from '../helpers';

export { until } from '../helpers';

export const MISBEHAVING = path.join(FIXTURES, 'reliability', 'misbehaving-plugin.js');

export interface MisbehavingOptions {
  version?: string;
  env?: Record<string, string>;
  limits?: Record<string, number>;
  permissions?: string[];
  /** Run through a shell-script executable instead of `runtime: node`. */
  executable?: boolean;
  /** Extra files, path → content. */
  files?: Record<string, string | Buffer>;
}

/** Packs a bundle that runs the misbehaving fixture; returns its path. */
export async function misbehavingBundle(workDir: string, id: string, o: MisbehavingOptions = {}): Promise<string> {
  const dir = path.join(workDir, `src-${id}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(path.join(dir, 'public'), { recursive: true });
  const manifest = {
    id,
    name: id,
    version: o.version ?? '1.0.0',
    server: o.executable ? { executable: 'run.sh' } : { runtime: 'node', entry: 'main.js' },
    env: o.env ?? {},
    permissions: o.permissions ?? [],
    limits: { hook_timeout_ms: 10_000, start_timeout_ms: 15_000, ...o.limits },
  };
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'main.js'), `require(${JSON.stringify(MISBEHAVING)});\n`);
  fs.writeFileSync(path.join(dir, 'run.sh'), `#!/bin/sh\nexec ${JSON.stringify(NODE)} "$(dirname "$0")/main.js" "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), '<p>public</p>');
  for (const [file, content] of Object.entries(o.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  const out = `${dir}.tar.gz`;
  await packBundle(dir, out);
  return out;
}

/** True when `pid` is gone or a zombie (exited, not yet reaped by whoever inherited it). */
export function exited(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }
}

export const rssMiB = (): number => process.memoryUsage().rss / (1024 * 1024);
