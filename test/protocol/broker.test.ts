import { PluginClient } from '../../src/protocol/client';
import { Errors } from '../../src/errors';
import { NODE, echoService, fixture, unary } from '../helpers';

test('dial of an id never announced times out with a clear error; dial after the plugin exits fails at once', async () => {
  const client = await PluginClient.start({ cmd: NODE, args: [fixture('echo-plugin.js')], onLog: () => undefined });
  try {
    const err = await client.broker.dial(99, 300).catch((e) => e);
    expect(err.code).toBe(Errors.BROKER_DIAL_TIMEOUT.code);
    expect(err.message).toContain('service id 99 within 300 ms');
    const echo = client.client(echoService());
    const offered = await unary(echo.Offer.bind(echo), {});
    expect(offered.id).toBe(1);
    const second = await unary(echo.Offer.bind(echo), {});
    expect(second.id).toBe(2);
  } finally {
    await client.kill();
  }
  const after = await client.broker.dial(1).catch((e) => e);
  expect(after.code).toBe(Errors.BROKER_CLOSED.code);
});
