/** The gRPC message size limit as an SDK plugin meets it: hook payloads one way, API calls the other. */
import { createTestHost, type TestHost } from '../../sdk/testing';
import { Errors } from '../../src/errors';
import { fixture } from '../helpers';

const MiB = 1024 * 1024;
type Hooks = {
  Upper: { text: string };
  Kv: { action: string; key?: string; value?: unknown; bytes?: number };
  Invoke: { method: string; args: unknown };
};

describe('with the default limit', () => {
  let host: TestHost<Hooks>;
  beforeAll(async () => {
    host = await createTestHost<Hooks>(fixture('sdk/kitchen-sink.js'), { api: { 'blob.echo': (args: unknown) => args } });
  });
  afterAll(() => host.close());

  test('a 5 MiB hook payload goes and comes back', async () => {
    const out = await host.runHook('Upper', { text: 'a'.repeat(5 * MiB) });
    expect(out.rejected).toBe(false);
    expect(out.rejected === false && out.payload.text).toBe('A'.repeat(5 * MiB));
  }, 60_000);

  test('a 5 MiB API request and reply (Invoke) cross the broker connection', async () => {
    // KV values have their own, smaller limit (1 MiB), so Invoke carries the large API messages here.
    const out = await host.runHook('Invoke', { method: 'blob.echo', args: { data: 'b'.repeat(5 * MiB) } });
    expect(out.rejected === false && (out.payload as { result: { data: string } }).result.data).toHaveLength(5 * MiB);
    expect(host.invocations.at(-1)?.method).toBe('blob.echo');
  }, 60_000);
});

describe('with maxMessageBytes 1 MiB', () => {
  let host: TestHost<Hooks>;
  beforeAll(async () => {
    host = await createTestHost<Hooks>(fixture('sdk/kitchen-sink.js'), { maxMessageBytes: MiB });
  });
  afterAll(() => host.close());

  test('a 2 MiB hook payload fails with an error naming the limit and the option', async () => {
    const err = await host.runHook('Upper', { text: 'a'.repeat(2 * MiB) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Errors.MESSAGE_TOO_LARGE.code });
    expect((err as Error).message).toMatch(/^hook call RunHook: a message (of \d+ bytes )?is over the gRPC message size limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
  });

  test('a 2 MiB API request from the plugin fails in the plugin with an error naming the limit and the option', async () => {
    const err = await host.runHook('Kv', { action: 'setFilled', key: 'big', bytes: 2 * MiB }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/KVSet: API call: a message (of \d+ bytes )?is over the gRPC message size limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
    expect((err as Error).message).toContain('PLUGHOST_MAX_MESSAGE_BYTES');
    expect(host.kv.get('big')).toBeUndefined();
    // The plugin and its connections are still fine.
    expect(await host.runHook('Upper', { text: 'ok' })).toEqual({ rejected: false, payload: { text: 'OK' } });
  });
});
