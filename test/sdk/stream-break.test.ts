/**
 * A real SDK plugin process when the streamed data path breaks under it: the
 * hook stream cancelled by the host with calls in flight, and API.CallStream
 * ended by the host with an error while the plugin's calls wait. The calls in
 * flight fail at once with the reason, and the next call on each side opens a
 * new stream (counted on the host's side) and succeeds.
 */
import { createTestHost, type TestHost } from '../../sdk/testing';
import { fixture } from '../helpers';

type Hooks = {
  Sleep: { ms: number };
  Echo: { i: number };
  Hang: { n: number };
  HangOutcome: Record<string, never>;
  Kv: { key: string; value: unknown };
};

let host: TestHost<Hooks>;
let hanging = 0;
beforeEach(async () => {
  hanging = 0;
  // The hang method never answers: only a break ends the calls of it.
  const hang = () => {
    hanging++;
    return new Promise(() => undefined);
  };
  host = await createTestHost<Hooks>(fixture('sdk/stream-break-plugin.js'), { api: { hang }, hookTimeoutMs: 60_000 });
});
afterEach(() => host.close());

const failure = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ({ answered: v }), (err: unknown) => err);

test('a hook stream cancelled by the host with calls in flight fails them at once with the reason; the next call opens a new stream and is answered', async () => {
  expect(await host.runHook('Echo', { i: 0 })).toEqual({ rejected: false, payload: { i: 0, echoed: true } });
  expect(host.streamsOpened.hooks).toBe(1);
  // Far past the test's own timeout: only the break can end these.
  const inFlight = Array.from({ length: 5 }, () => failure(host.runHook('Sleep', { ms: 600_000 })));
  // Each call is on the stream once the plugin answers one sent after them.
  expect(await host.runHook('Echo', { i: 1 })).toEqual({ rejected: false, payload: { i: 1, echoed: true } });
  host.breakStreams('the test cut the hook stream');
  for (const outcome of await Promise.all(inFlight)) {
    expect(outcome).toMatchObject({ code: 14, details: 'the test cut the hook stream' });
  }
  expect(host.streamsOpened.hooks).toBe(1);
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => host.runHook('Echo', { i })));
  expect(after).toEqual(Array.from({ length: 20 }, (_, i) => ({ rejected: false, payload: { i, echoed: true } })));
  expect(host.streamsOpened.hooks).toBe(2);
});

test("API.CallStream ended by the host while the plugin's calls wait fails them in the plugin at once, naming the break; the plugin's next KV call opens a new stream", async () => {
  expect(await host.runHook('Kv', { key: 'before', value: 1 })).toEqual({ rejected: false, payload: { value: 1 } });
  expect(host.streamsOpened.api).toBe(1);
  expect(await host.runHook('Hang', { n: 3 })).toEqual({ rejected: false, payload: { started: 3 } });
  for (let i = 0; i < 1000 && hanging < 3; i++) await new Promise((r) => setTimeout(r, 10));
  expect(hanging).toBe(3);
  host.breakStreams('the test cut the API stream');
  const outcome = await host.runHook('HangOutcome', {});
  expect(outcome).toEqual({
    rejected: false,
    payload: { outcomes: Array.from({ length: 3 }, () => ({ code: 'UNAVAILABLE', message: 'Invoke: the API stream to the host broke (UNAVAILABLE: the test cut the API stream)' })) },
  });
  expect(host.streamsOpened.api).toBe(1);
  expect(await host.runHook('Kv', { key: 'after', value: 2 })).toEqual({ rejected: false, payload: { value: 2 } });
  expect(host.kv.get('after')).toBe(2);
  expect(host.streamsOpened.api).toBe(2);
});
