/**
 * The admin token: from PLUGHOST_ADMIN_TOKEN, else generated once and kept in
 * the data dir (mode 0600). Compared in constant time.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const TOKEN_FILE = 'admin-token';

export interface TokenSource {
  token: string;
  /** True when this call created it (the caller prints it once). */
  generated: boolean;
  file: string | null;
}

export function resolveAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): TokenSource {
  const fromEnv = env.PLUGHOST_ADMIN_TOKEN;
  if (fromEnv) return { token: fromEnv, generated: false, file: null };
  const file = path.join(dataDir, TOKEN_FILE);
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token) return { token, generated: false, file };
  } catch {
    // No token yet: make one.
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { token, generated: true, file };
}

/** Constant-time comparison: digests make the lengths equal, so length leaks nothing either. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** The token from an "Authorization: Bearer ..." header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
