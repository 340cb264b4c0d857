/**
 * A host's node id: the name its heartbeats and its observed plugin states go
 * under in the store, so it must survive restarts. Given by the integrator or
 * operator, else generated once and kept in `<dataDir>/node-id`.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Errors } from '../errors';

export const NODE_ID_FILE = 'node-id';
/** Safe in URLs, file names, log lines and SQL text without quoting. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const NODE_ID_RULE = "1 to 63 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or digit";

/** Throws NODE_ID_INVALID naming the value, where it came from, and the rule. */
export function checkNodeId(value: string, source: string): string {
  if (!NODE_ID_PATTERN.test(value)) throw Errors.NODE_ID_INVALID(value, source, NODE_ID_RULE);
  return value;
}

/**
 * The given id (checked), else the one kept in the data dir, else a new
 * `node-<8 hex>` written there (mode 0600). The new file is linked into place
 * complete, so two hosts starting on one data dir agree on the id.
 */
export function resolveNodeId(dataDir: string, given?: string): string {
  if (given !== undefined) return checkNodeId(given, 'the nodeId option');
  const file = path.join(dataDir, NODE_ID_FILE);
  const kept = readKept(file);
  if (kept !== undefined) return kept;
  const fresh = `node-${crypto.randomBytes(4).toString('hex')}`;
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, `${fresh}\n`, { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readKept(file) as string;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function readKept(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return checkNodeId(text.trim(), file);
}
