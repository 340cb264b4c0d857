/**
 * The standalone server's user authentication: a header trusted from a fronting proxy, or an
 * HS256 JWT, becoming the user id a plugin's HTTP handler sees (ctx.userId); every way a
 * token can be wrong; and the secret's minimum length.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isError, Errors } from '../../src/errors';
import { loadJwtSecret, userAuthenticator, verifyJwt } from '../../src/server/user-auth';
import { tempDir } from '../helpers';
import { pluginBundle, testServer, upload, type TestServer } from './helpers';

const SECRET = Buffer.from('a-secret-of-more-than-thirty-two-bytes!!');
const NOW = 1_700_000_000_000;

const part = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const signed = (head: string, body: string, secret = SECRET) => `${head}.${body}.${crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')}`;

function jwt(claims: Record<string, unknown>, options: { secret?: Buffer; alg?: string } = {}): string {
  return signed(part({ alg: options.alg ?? 'HS256', typ: 'JWT' }), part(claims), options.secret);
}

describe('verifyJwt', () => {
  test('answers the sub of a good token, within exp and nbf', () => {
    expect(verifyJwt(jwt({ sub: 'ann' }), SECRET, NOW)).toBe('ann');
    expect(verifyJwt(jwt({ sub: 'ann', exp: NOW / 1000 + 60, nbf: NOW / 1000 - 60 }), SECRET, NOW)).toBe('ann');
  });

  test('refuses each kind of bad token, saying why', () => {
    const refused = (token: string, why: string) => {
      let caught: unknown;
      try {
        verifyJwt(token, SECRET, NOW);
      } catch (err) {
        caught = err;
      }
      expect([token, isError(caught, Errors.USER_TOKEN_INVALID), (caught as Error).message]).toEqual([token, true, expect.stringContaining(why)]);
    };
    refused('not-a-jwt', 'expected three dot-separated parts');
    refused(jwt({ sub: 'ann' }, { secret: Buffer.from('another-secret-of-more-than-32-bytes') }), 'the signature does not match');
    refused(jwt({ sub: 'ann' }, { alg: 'none' }), 'its alg is "none"; only HS256');
    refused(jwt({ sub: 'ann', exp: NOW / 1000 - 1 }), 'expired');
    refused(jwt({ sub: 'ann', nbf: NOW / 1000 + 60 }), 'not valid yet');
    refused(jwt({ name: 'ann' }), 'no "sub" claim');
    // The payload is read only once the signature holds.
    refused(`${part({ alg: 'HS256' })}.!!!.x`, 'the signature does not match');
    refused(signed(part({ alg: 'HS256' }), part('not json')), 'its payload is not base64url JSON');
    refused(signed(part({ alg: 'HS256' }), part([1])), 'its payload is not a JSON object');
    refused(signed(part('[]'), part({ sub: 'ann' })), 'its header is not a JSON object');
  });

  test('a secret under 32 bytes is refused when it is loaded', () => {
    const work = tempDir();
    try {
      const file = path.join(work.dir, 'jwt.secret');
      fs.writeFileSync(file, 'short\n');
      expect(() => loadJwtSecret(file, '--jwt-secret-file')).toThrow('the JWT secret from --jwt-secret-file is 5 bytes; HS256 needs at least 32');
      fs.writeFileSync(file, `${SECRET}\n`);
      expect(loadJwtSecret(file).equals(SECRET)).toBe(true);
    } finally {
      work.cleanup();
    }
  });
});

describe('the user id of plugin HTTP requests', () => {
  const ID = 'com.test.users';
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function serveWith(authenticate: ReturnType<typeof userAuthenticator>): Promise<(headers: Record<string, string>) => Promise<{ status: number; body: { user?: string; headers?: Record<string, string>; error?: { code: string; message: string } } }>> {
    server = await testServer({ routes: { authenticate } });
    expect((await upload(server.url, await pluginBundle(server.work, ID, 'server/http-plugin.js'))).status).toBe(201);
    await server.host.enable(ID);
    return async (headers) => {
      const res = await fetch(`${server!.url}/plugins/${ID}/echo`, { headers });
      return { status: res.status, body: (await res.json()) as never };
    };
  }

  test('from a header a fronting proxy sets, trusted as it arrives', async () => {
    const echo = await serveWith(userAuthenticator({ trustUserHeader: 'X-User-Id' }));
    const asAnn = await echo({ 'x-user-id': 'ann' });
    expect([asAnn.status, asAnn.body.user]).toEqual([200, 'ann']);
    expect(asAnn.body.headers!['plughost-user-id']).toBe('ann');
    expect((await echo({})).body.user).toBe('');
    // A client's own Plughost-User-Id is never believed.
    expect((await echo({ 'plughost-user-id': 'mallory' })).body.user).toBe('');
  });

  test('from an HS256 JWT in Authorization: Bearer; a bad token is a 401 in the error shape, none is anonymous', async () => {
    const echo = await serveWith(userAuthenticator({ jwtSecret: SECRET }));
    const good = await echo({ authorization: `Bearer ${jwt({ sub: 'bob', exp: Date.now() / 1000 + 600 })}` });
    expect([good.status, good.body.user]).toEqual([200, 'bob']);
    // The token itself is the host's business, never forwarded.
    expect(good.body.headers!.authorization).toBeUndefined();
    expect((await echo({})).body.user).toBe('');
    const forged = await echo({ authorization: `Bearer ${jwt({ sub: 'bob' }, { secret: Buffer.from('x'.repeat(40)) })}` });
    expect(forged).toEqual({ status: 401, body: { error: { code: 'PLUGHOST_ERR_USER_TOKEN_INVALID', message: expect.stringContaining('the signature does not match the secret'), details: {} } } });
    // Without the user header option, the header means nothing.
    expect((await echo({ 'x-user-id': 'ann' })).body.user).toBe('');
  });

  test('with neither option there is no authenticator', () => {
    expect(userAuthenticator({})).toBeUndefined();
  });
});
