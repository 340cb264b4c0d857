/** /metrics names every plugin: behind the admin token on the main port, or alone on a listener of its own. */
import { AUTH, testServer } from './helpers';

test('on the main port /metrics needs the admin token', async () => {
  const server = await testServer();
  try {
    const anonymous = await fetch(`${server.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).error.code).toBe('PLUGHOST_ERR_AUTH_MISSING');
    const res = await fetch(`${server.url}/metrics`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toMatch(/^# HELP /m);
  } finally {
    await server.stop();
  }
});

test('with a metrics listener, /metrics is served there without a token and not on the main port', async () => {
  const server = await testServer({ metrics: { port: 0 } });
  try {
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.metricsUrl).not.toBe(server.url);
    const res = await fetch(`${server.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^# HELP /m);
    const elsewhere = await fetch(`${server.metricsUrl}/api/v1/plugins`, { headers: AUTH });
    expect(elsewhere.status).toBe(404);
    expect((await elsewhere.json()).error.code).toBe('PLUGHOST_ERR_NOT_FOUND');
    for (const headers of [{}, AUTH]) expect((await fetch(`${server.url}/metrics`, { headers })).status).toBe(404);
  } finally {
    await server.stop();
  }
  await expect(fetch(`${server.metricsUrl}/metrics`)).rejects.toThrow();
});
