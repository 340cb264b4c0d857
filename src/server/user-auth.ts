/**
 * Who the user of a plugin HTTP request is, for the standalone server (the
 * `authenticate` option of plughostRoutes, which an integrator writes against
 * their own sessions). Two ways, one at a time:
 *
 * - a header set by a fronting proxy that has authenticated the user
 *   (`plughost serve --trust-user-header X-User-Id`). The header is believed
 *   as it arrives, so the server must be reachable only through a proxy that
 *   removes or overwrites it on every request: anyone who can reach the server
 *   directly can be any user;
 * - an HS256 JWT in `Authorization: Bearer` (`--jwt-secret-file`), its `sub`
 *   being the user id, checked against the secret and its `exp` and `nbf`.
 *
 * Without either, every request is anonymous (an empty user id).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { FastifyRequest } from 'fastify';
import { Errors } from '../errors';
import { bearerToken } from './auth';

/** HS256 keys shorter than its 256-bit output make the signature easier to forge than it need be. */
export const MIN_JWT_SECRET_BYTES = 32;

export type UserAuthenticator = (request: FastifyRequest) => string | null;

export interface UserAuthOptions {
  /** A request header whose value is the user id, trusted as it arrives. */
  trustUserHeader?: string;
  /** The HMAC secret of HS256 JWTs whose `sub` is the user id. */
  jwtSecret?: Buffer;
  /** For `exp` and `nbf`; ms since the epoch. */
  now?: () => number;
}

/** The `authenticate` option of plughostRoutes for these options; undefined when neither is set. */
export function userAuthenticator(options: UserAuthOptions): UserAuthenticator | undefined {
  const { trustUserHeader, jwtSecret } = options;
  if (trustUserHeader !== undefined) {
    const name = trustUserHeader.toLowerCase();
    return (request) => {
      const value = request.headers[name];
      const first = Array.isArray(value) ? value[0] : value;
      return first ? first.trim() || null : null;
    };
  }
  if (jwtSecret !== undefined) {
    const now = options.now ?? Date.now;
    return (request) => {
      const token = bearerToken(request.headers.authorization);
      return token === null ? null : verifyJwt(token, jwtSecret, now());
    };
  }
  return undefined;
}

/** The secret in `file` (surrounding white space dropped); JWT_SECRET_TOO_SHORT when it is under MIN_JWT_SECRET_BYTES. */
export function loadJwtSecret(file: string, source = file): Buffer {
  const secret = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'utf8');
  if (secret.length < MIN_JWT_SECRET_BYTES) throw Errors.JWT_SECRET_TOO_SHORT(source, secret.length, MIN_JWT_SECRET_BYTES);
  return secret;
}

/** The `sub` of an HS256 JWT signed with `secret` and valid at `nowMs`; throws USER_TOKEN_INVALID saying why not. */
export function verifyJwt(token: string, secret: Buffer, nowMs: number): string {
  const parts = token.split('.');
  if (parts.length !== 3) throw Errors.USER_TOKEN_INVALID('expected three dot-separated parts (a JWT)');
  const [head, body, signature] = parts;
  const header = decodePart(head, 'header');
  if (header.alg !== 'HS256') throw Errors.USER_TOKEN_INVALID(`its alg is ${JSON.stringify(header.alg)}; only HS256 is accepted`);
  const expected = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) throw Errors.USER_TOKEN_INVALID('the signature does not match the secret');
  const claims = decodePart(body, 'payload');
  const seconds = nowMs / 1000;
  if (claims.exp !== undefined && !(typeof claims.exp === 'number' && seconds < claims.exp)) throw Errors.USER_TOKEN_INVALID('it has expired (exp)');
  if (claims.nbf !== undefined && !(typeof claims.nbf === 'number' && seconds >= claims.nbf)) throw Errors.USER_TOKEN_INVALID('it is not valid yet (nbf)');
  if (typeof claims.sub !== 'string' || claims.sub === '') throw Errors.USER_TOKEN_INVALID('it has no "sub" claim (the user id)');
  return claims.sub;
}

function decodePart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw Errors.USER_TOKEN_INVALID(`its ${what} is not base64url JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw Errors.USER_TOKEN_INVALID(`its ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
