/** Failed admin authentication is throttled per client address; the right token never is. */
import { AuthThrottle, clientKey } from '../../src/server/auth-throttle';
import { AUTH, testServer, type TestServer } from './helpers';

describe('over REST, with the defaults (10 failures per 60 s)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await testServer();
  });
  afterAll(() => server.stop());

  test('many wrong tokens: 403s, then 429 with Retry-After; right-token requests before that were never slowed', async () => {
    for (let i = 0; i < 50; i++) expect((await fetch(`${server.url}/api/v1/plugins`, { headers: AUTH })).status).toBe(200);
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 30; i++) {
      last = await fetch(`${server.url}/api/v1/plugins`, { headers: { authorization: `Bearer wrong-${i}` } });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(403));
    expect(statuses.slice(10)).toEqual(Array(20).fill(429));
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const { error } = await last!.json();
    expect(error).toMatchObject({ code: 'PLUGHOST_ERR_AUTH_THROTTLED', details: { retry_after_s: retryAfter } });
    expect(error.message).toMatch(/10 within 60 s, the authThrottle limit/);
    // The same address shares one count on every route that takes the token.
    expect((await fetch(`${server.url}/metrics`, { headers: AUTH })).status).toBe(429);
    expect((await fetch(`${server.url}/api/v1/events/ticket`, { method: 'POST', headers: AUTH })).status).toBe(429);
  });
});

test('after the window the right token works again', async () => {
  const server = await testServer({ routes: { authThrottle: { maxFailures: 3, windowMs: 400 } } });
  try {
    for (let i = 0; i < 3; i++) expect((await fetch(`${server.url}/api/v1/plugins`)).status).toBe(401);
    const throttled = await fetch(`${server.url}/api/v1/plugins`, { headers: AUTH });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 500));
    expect((await fetch(`${server.url}/api/v1/plugins`, { headers: AUTH })).status).toBe(200);
  } finally {
    await server.stop();
  }
});

describe('AuthThrottle', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  test('counts failures in a fixed window and names the seconds left', () => {
    const t = new AuthThrottle({ maxFailures: 2, windowMs: 10_000 }, clock);
    t.fail('1.2.3.4');
    expect(t.retryAfter('1.2.3.4')).toBe(0);
    t.fail('1.2.3.4');
    expect(t.retryAfter('1.2.3.4')).toBe(10);
    expect(t.retryAfter('1.2.3.5')).toBe(0);
    now += 7_500;
    expect(t.retryAfter('1.2.3.4')).toBe(3);
    now += 2_500;
    expect(t.retryAfter('1.2.3.4')).toBe(0);
    t.fail('1.2.3.4');
    expect(t.retryAfter('1.2.3.4')).toBe(0);
  });

  test('IPv6 addresses of one /64 share a count; IPv4-mapped addresses count as IPv4', () => {
    expect(clientKey('2001:db8:1:2::1')).toBe(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    const t = new AuthThrottle({ maxFailures: 2 }, clock);
    t.fail('2001:db8::1');
    t.fail('2001:db8::2');
    expect(t.retryAfter('2001:db8::3')).toBeGreaterThan(0);
  });

  test('memory is bounded by maxClients: expired entries go first, then the oldest', () => {
    const t = new AuthThrottle({ maxFailures: 1, windowMs: 1000, maxClients: 100 }, clock);
    for (let i = 0; i < 100; i++) t.fail(`10.0.0.${i}`);
    now += 500;
    for (let i = 0; i < 1000; i++) t.fail(`10.1.${i >> 8}.${i & 255}`);
    expect(t.size).toBe(100);
    expect(t.retryAfter('10.1.3.231')).toBe(1);
  });
});
