/**
 * The admin token: from PLUGHOST_ADMIN_TOKEN, else generated once and kept in
 * the data dir (mode 0600). At least 32 characters; compared in constant time.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from '../errors';
import type { AuthThrottle } from './auth-throttle';

export const TOKEN_FILE = 'admin-token';

/** Shorter tokens are refused at start: a guessable token makes the throttle the only defence. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/** Throws ADMIN_TOKEN_TOO_SHORT naming where the token came from. */
export function checkAdminToken(token: string, source: string): void {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) throw Errors.ADMIN_TOKEN_TOO_SHORT(source, token.length, MIN_ADMIN_TOKEN_LENGTH);
}

export interface TokenSource {
  token: string;
  /** True when this call created it (the caller prints it once). */
  generated: boolean;
  file: string | null;
}

export function resolveAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): TokenSource {
  const fromEnv = env.PLUGHOST_ADMIN_TOKEN;
  if (fromEnv) {
    checkAdminToken(fromEnv, 'PLUGHOST_ADMIN_TOKEN');
    return { token: fromEnv, generated: false, file: null };
  }
  const file = path.join(dataDir, TOKEN_FILE);
  let saved = '';
  try {
    saved = fs.readFileSync(file, 'utf8').trim();
  } catch {
    // No token yet: make one.
  }
  if (saved) {
    checkAdminToken(saved, file);
    return { token: saved, generated: false, file };
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

/**
 * The admin check for a route or hook: the bearer token, with failures counted
 * by the throttle. A throttled address gets 429 and Retry-After before its
 * token is looked at.
 */
export type AdminAuthenticator = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export function adminAuthenticator(adminToken: string, throttle: AuthThrottle): AdminAuthenticator {
  return async (request, reply) => {
    const wait = throttle.retryAfter(request.ip);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw Errors.AUTH_THROTTLED(throttle.maxFailures, throttle.windowMs, wait);
    }
    const token = bearerToken(request.headers.authorization);
    if (token && tokenMatches(token, adminToken)) return;
    throttle.fail(request.ip);
    throw token ? Errors.AUTH_WRONG() : Errors.AUTH_MISSING();
  };
}
