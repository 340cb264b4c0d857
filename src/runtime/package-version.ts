import * as fs from 'node:fs';
import * as path from 'node:path';

/** The folder of the nearest package.json above this file: plughost's own checkout or installed package. */
export function packageRoot(): string | undefined {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** This package's version, from the nearest package.json above this file: the host version plugins see. */
export function packageVersion(): string {
  const root = packageRoot();
  return root ? (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version : '0.0.0';
}
