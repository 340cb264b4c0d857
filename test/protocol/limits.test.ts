import * as grpc from '@grpc/grpc-js';
import { PluginClient } from '../../src/protocol/client';
import { Errors, PlughostError } from '../../src/errors';
import { DEFAULT_MAX_MESSAGE_BYTES, maxMessageBytesFromEnv, messageTooLarge } from '../../src/protocol/limits';
import { LogCollector, NODE, echoService, fixture, unary } from '../helpers';

const Echo = echoService();
const MiB = 1024 * 1024;

function start(maxMessageBytes?: number) {
  return PluginClient.start({ cmd: NODE, args: [fixture('echo-plugin.js')], startTimeoutMs: 15_000, onLog: new LogCollector().onLog, maxMessageBytes });
}

/** Serves Echo.Say on the host's broker, answering `reply(text)`; returns the id the plugin dials. */
async function hostEcho(client: PluginClient, reply: (text: string) => string): Promise<number> {
  const id = client.broker.nextId();
  const Say = (c: grpc.ServerUnaryCall<{ text: string }, unknown>, cb: grpc.sendUnaryData<{ text: string }>) => cb(null, { text: reply(c.request.text) });
  await client.broker.acceptAndServe(id, [{ definition: Echo.service, implementation: { Say } }]);
  return id;
}

test('with the default limit, 5 MiB messages cross the plugin connection and the broker, both ways', async () => {
  const client = await start();
  try {
    const big = 'a'.repeat(5 * MiB);
    const echo = client.client(Echo);
    expect((await unary(echo.Say.bind(echo), { text: big })).text).toHaveLength(5 * MiB);
    // The plugin dials the host's broker server: 5 MiB plugin → host, then 5 MiB host → plugin → host.
    const id = await hostEcho(client, (text) => text);
    expect((await unary(echo.CallBack.bind(echo), { id, text: big })).text).toHaveLength(5 * MiB + 'host said: '.length);
  } finally {
    await client.kill();
  }
}, 60_000);

test('a configured limit applies on both sides, and the error names the limit and the option', async () => {
  const client = await start(MiB);
  try {
    const echo = client.client(Echo);
    const err = await unary(echo.Say.bind(echo), { text: 'b'.repeat(2 * MiB) }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const mapped = messageTooLarge(err, 'Echo.Say', MiB);
    expect(mapped).toBeInstanceOf(PlughostError);
    expect(mapped!.code).toBe(Errors.MESSAGE_TOO_LARGE.code);
    expect(mapped!.message).toMatch(/^Echo\.Say: .*limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
    expect(mapped!.message).toContain('PLUGHOST_MAX_MESSAGE_BYTES');

    // The plugin's own server was told the limit: a client with no limit of its own is refused by the plugin.
    const unlimited = new Echo(`unix:${client.address}`, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
    });
    try {
      const refused = await unary(unlimited.Say.bind(unlimited), { text: 'c'.repeat(2 * MiB) }).catch((e: grpc.ServiceError) => e);
      expect((refused as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((refused as grpc.ServiceError).details).toMatch(/vs\.? 1048576\)/);
      // Seen from a side configured for more, the error says the limit hit is the other side's own.
      expect(messageTooLarge(refused, 'Echo.Say', 64 * MiB)?.message).toMatch(
        /limit of 1048576 bytes \(1 MiB\); that is the other side's own limit, not the configured 67108864 bytes: make the plugin apply PLUGHOST_MAX_MESSAGE_BYTES/,
      );
    } finally {
      unlimited.close();
    }

    // The broker too: the host's broker server answers 2 MiB to a small call the plugin makes through it.
    const id = await hostEcho(client, () => 'd'.repeat(2 * MiB));
    const viaBroker = await unary(echo.CallBack.bind(echo), { id, text: 'small' }).catch((e: grpc.ServiceError) => e);
    expect((viaBroker as grpc.ServiceError).details).toMatch(/larger than.*1048576/);
    // Under the limit still works.
    expect((await unary(echo.Say.bind(echo), { text: 'e'.repeat(MiB / 2) })).text).toHaveLength(MiB / 2);
  } finally {
    await client.kill();
  }
}, 60_000);

test('the limit must be a whole number of bytes up to 2^31-1, from the option or the environment', async () => {
  await expect(start(0)).rejects.toMatchObject({ code: Errors.BAD_MESSAGE_LIMIT.code, message: expect.stringContaining('maxMessageBytes is "0"') });
  expect(maxMessageBytesFromEnv({})).toBe(DEFAULT_MAX_MESSAGE_BYTES);
  expect(maxMessageBytesFromEnv({ PLUGHOST_MAX_MESSAGE_BYTES: '1048576' })).toBe(MiB);
  expect(() => maxMessageBytesFromEnv({ PLUGHOST_MAX_MESSAGE_BYTES: '64MiB' })).toThrow(/PLUGHOST_MAX_MESSAGE_BYTES is "64MiB"/);
  expect(() => maxMessageBytesFromEnv({ PLUGHOST_MAX_MESSAGE_BYTES: String(2 ** 31) })).toThrow(/from 1 to 2147483647/);
});
