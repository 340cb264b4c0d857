/**
 * sdk/testing's in-memory host takes the data path a real host takes by
 * default: hook calls over the batched hook stream and the plugin's API calls
 * over API.CallStream; hookTransport/apiTransport 'unary' force the unary
 * calls. The same plugin answers the same either way.
 */
import { createTestHost, type TestHost } from '../../sdk/testing';
import { fixture } from '../helpers';

type Hooks = {
  Upper: { text: string };
  Kv: { action: string; key?: string; value?: unknown; bytes?: number };
  Info: null;
  Invoke: { method: string; args: unknown };
};

const MiB = 1024 * 1024;

/** A round of hook calls of every kind that reaches the API; answers what came back. */
async function round(host: TestHost<Hooks>): Promise<unknown[]> {
  return Promise.all([
    host.runHook('Upper', { text: 'shout' }),
    host.runHook('Upper', { text: '' }),
    host.runHook('Kv', { action: 'set', key: 'k', value: { n: 1 } }).then(() => host.runHook('Kv', { action: 'get', key: 'k' })),
    host.runHook('Info', null),
    host.runHook('Invoke', { method: 'double', args: { n: 21 } }),
    host.runHook('Invoke', { method: 'notAllowed', args: {} }),
    ...Array.from({ length: 30 }, (_, i) => host.runHook('Upper', { text: `t${i}` })),
  ]);
}

const options = (transport: 'stream' | 'unary' | undefined) => ({
  hostVersion: '1.2.3',
  maxMessageBytes: MiB,
  manifest: { id: 'test.plugin', name: 'test', version: '0.0.0', server: { runtime: 'node' as const, entry: 'kitchen-sink.js' }, permissions: ['double'] },
  api: { double: ({ n }: { n: number }) => ({ n: n * 2 }) },
  ...(transport ? { hookTransport: transport, apiTransport: transport } : {}),
});

test('by default hook calls go over one hook stream and API calls over one CallStream; unary forced answers the same over no stream', async () => {
  const answers: Record<string, unknown[]> = {};
  for (const transport of [undefined, 'unary'] as const) {
    const host = await createTestHost<Hooks>(fixture('sdk/kitchen-sink.js'), options(transport));
    try {
      answers[transport ?? 'default'] = await round(host);
      expect(host.streamsOpened).toEqual(transport === 'unary' ? { hooks: 0, api: 0 } : { hooks: 1, api: 1 });
      // A call may still be forced the other way, whatever the default.
      expect(await host.runHook('Upper', { text: 'x' }, { via: transport === 'unary' ? 'stream' : 'unary' })).toEqual({ rejected: false, payload: { text: 'X' } });
      expect(host.streamsOpened.hooks).toBe(1);
      // A request over the limit fails alone, with the same words either way, and the plugin goes on.
      const big = await host.runHook('Kv', { action: 'setFilled', key: 'big', bytes: 2 * MiB }).catch((e: Error) => e);
      expect((big as Error).message).toMatch(/KVSet: API call: a message (of \d+ bytes )?is over the gRPC message size limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
      expect(await host.runHook('Upper', { text: 'still' })).toEqual({ rejected: false, payload: { text: 'STILL' } });
    } finally {
      await host.close();
    }
  }
  expect(answers.default).toEqual(answers.unary);
  expect(answers.default.slice(0, 6)).toEqual([
    { rejected: false, payload: { text: 'SHOUT' } },
    { rejected: true, reason: 'text is empty' },
    { rejected: false, payload: { value: { n: 1 } } },
    { rejected: false, payload: { config: {}, manifest: 'test.plugin', version: '1.2.3' } },
    { rejected: false, payload: { result: { n: 42 } } },
    { rejected: false, payload: { error: expect.stringMatching(/^Invoke: .*notAllowed/), code: 'PERMISSION_DENIED' } },
  ]);
});
