/**
 * How hook calls reach plugins: SDK plugins list RunHookBatchStream (and
 * RunHookStream) and get every call over one batched stream per process, an
 * SDK from before batching over RunHookStream; raw-contract plugins (and every plugin
 * under hookTransport 'unary') get unary RunHook. Real plugin processes, real
 * gRPC; the count of streams the host opened is the observable.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { Errors } from '../../src/errors';
import type { RuntimeDefaults } from '../../src/runtime/types';
import { tempDir, trackTimers, until } from '../helpers';
import { fixtureBundle, type FixtureOptions } from './fixtures';

const timers = trackTimers();
const STREAM_PLUGIN = 'runtime/stream-plugin.js';
const MiB = 1024 * 1024;

type Enable = (o: FixtureOptions) => Promise<void>;

/** Opens a host, runs `body` with it and a way to install and enable a fixture, then closes everything and checks that no timer of ours is left. */
async function withHost(defaults: Partial<RuntimeDefaults>, body: (h: PluginHost, enable: Enable) => Promise<void>): Promise<void> {
  const work = tempDir();
  const h = await PluginHost.open({
    dataDir: path.join(work.dir, 'data'),
    logger: pino({ level: 'silent' }),
    defaults: { restartBackoffMs: 50, restartBackoffMaxMs: 200, healthIntervalMs: 60_000, ...defaults },
  });
  try {
    await body(h, async (o) => {
      await h.install(await fixtureBundle(work.dir, { settings: false, ...o }));
      await h.enable(o.id);
    });
  } finally {
    await h.close();
    work.cleanup();
  }
  expect(timers.pendingFrom('/src/')).toEqual([]);
}

/** RunHookStream streams the host opened to `id`, from /metrics. */
async function streamsOpened(h: PluginHost, id: string): Promise<number> {
  const { values } = await h.metrics.hookStreamsOpened.get();
  return values.find((v) => v.labels.plugin === id)?.value ?? 0;
}

/** `promise`'s value, or 'still pending' when it has not settled within `boundMs`. */
async function within<T>(promise: Promise<T>, boundMs: number): Promise<T | 'still pending'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still pending'>((resolve) => {
    timer = setTimeout(() => resolve('still pending'), boundMs);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'answered', (err: unknown) => err);

test('an SDK plugin gets its hook calls over one stream: 200 in flight, answered out of order, each with its own payload', () =>
  withHost({}, async (h, enable) => {
    await enable({ id: 'com.test.stream', program: STREAM_PLUGIN });
    const ids = Array.from({ length: 200 }, (_, i) => i);
    // Different delays make the plugin answer in another order than asked.
    const answers = await Promise.all(ids.map((i) => h.callHook('com.test.stream', 'Echo', { i, delayMs: (i * 7) % 13 })));
    expect(answers.map((a) => a.payload)).toEqual(ids.map((i) => ({ i, delayMs: (i * 7) % 13, by: 'com.test.stream' })));
    // notify and filter take the same way.
    expect(await h.notify('Echo', { i: -1 })).toMatchObject([{ pluginId: 'com.test.stream', ok: true }]);
    expect(await h.filter('Echo', { i: -2 })).toMatchObject({ rejected: false, payload: { i: -2, by: 'com.test.stream' } });
    expect(await streamsOpened(h, 'com.test.stream')).toBe(1);
    // The hook histogram counts stream calls as it counts unary ones.
    expect(await h.metrics.registry.metrics()).toMatch(/plughost_hook_duration_seconds_count\{plugin="com.test.stream",hook="Echo",outcome="ok"\} 202/);
  }));

test('a raw-contract plugin that does not list RunHookStream gets unary RunHook beside an SDK plugin on the stream', () =>
  withHost({}, async (h, enable) => {
    await enable({ id: 'com.test.raw' });
    await enable({ id: 'com.test.sdk', program: STREAM_PLUGIN });
    const appended = await Promise.all(Array.from({ length: 20 }, (_, i) => h.callHook('com.test.raw', 'Append', { text: `t${i}` })));
    expect(appended.map((a) => a.payload)).toEqual(Array.from({ length: 20 }, (_, i) => ({ text: `t${i}[com.test.raw]` })));
    expect((await h.callHook('com.test.sdk', 'Echo', { i: 1 })).payload).toEqual({ i: 1, by: 'com.test.sdk' });
    expect(await streamsOpened(h, 'com.test.raw')).toBe(0);
    expect(await streamsOpened(h, 'com.test.sdk')).toBe(1);
  }));

test('a plugin that lists RunHookStream but not RunHookBatchStream gets one call per message on RunHookStream', () =>
  withHost({}, async (h, enable) => {
    await enable({ id: 'com.test.single', program: 'runtime/single-stream-plugin.js' });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => h.callHook('com.test.single', 'Echo', { i })));
    expect(answers.map((a) => a.payload)).toEqual(Array.from({ length: 50 }, (_, i) => ({ i, by: 'com.test.single' })));
    expect(await streamsOpened(h, 'com.test.single')).toBe(1);
  }));

test("hookTransport 'unary' sends an SDK plugin's calls as unary RunHook", () =>
  withHost({ hookTransport: 'unary' }, async (h, enable) => {
    await enable({ id: 'com.test.unary', program: STREAM_PLUGIN });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h.callHook('com.test.unary', 'Echo', { i })));
    expect(answers.map((a) => a.payload)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, by: 'com.test.unary' })));
    expect(await streamsOpened(h, 'com.test.unary')).toBe(0);
  }));

test('hookBatching false sends an SDK plugin its calls over RunHookStream, one per message; by default they go over RunHookBatchStream', async () => {
  for (const hookBatching of [false, true]) {
    await withHost({ hookBatching }, async (h, enable) => {
      const id = 'com.test.methods';
      await enable({ id, program: 'runtime/stream-method-plugin.js' });
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => h.callHook(id, 'Echo', { i })));
      expect(answers.map((a) => a.payload)).toEqual(Array.from({ length: 50 }, (_, i) => ({ i, by: id })));
      expect((await h.callHook(id, 'Streams', {})).payload).toMatchObject(hookBatching ? { RunHookStream: 0, RunHookBatchStream: 1 } : { RunHookStream: 1, RunHookBatchStream: 0 });
    });
  }
});

test('a hookBatching or hookHttp2 that is not a boolean is refused when the host opens, naming the option', async () => {
  const work = tempDir();
  try {
    for (const name of ['hookBatching', 'hookHttp2']) {
      for (const bad of ['false', 0, null]) {
        await expect(
          PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }), defaults: { [name]: bad as unknown as boolean } }),
        ).rejects.toMatchObject({ code: Errors.HOST_BAD_OPTION.code, message: expect.stringContaining(`defaults.${name}`) });
      }
    }
  } finally {
    work.cleanup();
  }
});

test('hookHttp2 sends the batched stream over a direct HTTP/2 connection (no grpc-js user-agent), with AutoMTLS too; by default it goes over the grpc-js channel', async () => {
  for (const defaults of [{ hookHttp2: true }, { hookHttp2: true, autoMTLS: true }, {}]) {
    await withHost(defaults, async (h, enable) => {
      const id = 'com.test.direct';
      await enable({ id, program: 'runtime/stream-method-plugin.js' });
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => h.callHook(id, 'Echo', { i })));
      expect(answers.map((a) => a.payload)).toEqual(Array.from({ length: 50 }, (_, i) => ({ i, by: id })));
      // Larger than the HTTP/2 frames and first window it arrives in: read whole across many chunks.
      const big = 'x'.repeat(3 * MiB);
      expect((await h.callHook(id, 'Echo', { big })).payload).toEqual({ big, by: id });
      const direct = defaults.hookHttp2 === true;
      expect((await h.callHook(id, 'Streams', {})).payload).toEqual({ RunHookStream: 0, RunHookBatchStream: 1, agents: [direct ? 'none' : 'grpc-node-js'] });
      expect(h.logs(id).filter((l) => l.level === 'warn')).toEqual([]);
    });
  }
});

test('with hookHttp2, a call past its deadline fails alone beside answered calls, and a plugin that crashes mid-call fails every call in flight at once', () =>
  withHost({ hookHttp2: true }, async (h, enable) => {
    const id = 'com.test.direct-slow';
    await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 3000 } });
    const slow = failure(h.callHook(id, 'Sleep', { ms: 60_000 }));
    const fast = await Promise.all(Array.from({ length: 20 }, (_, i) => h.callHook(id, 'Echo', { i })));
    expect(fast.map((a) => a.payload)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, by: id })));
    expect(await slow).toMatchObject({ code: Errors.HOOK_TIMEOUT.code, message: Errors.HOOK_TIMEOUT(id, 'Sleep', 3000).message });
    const crashing = 'com.test.direct-crash';
    await enable({ id: crashing, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 20_000 } });
    const inFlight = Array.from({ length: 5 }, () => failure(h.callHook(crashing, 'Sleep', { ms: 60_000 })));
    const crash = failure(h.callHook(crashing, 'Crash', {}));
    // The deadline is 20 s: a call that waited for it would still be pending at half of it.
    const outcomes = await within(Promise.all([crash, ...inFlight]), 10_000);
    expect(outcomes).not.toBe('still pending');
    for (const outcome of outcomes as unknown[]) expect(outcome).toMatchObject({ code: Errors.HOOK_FAILED.code });
  }));

test('a call past its deadline fails with the deadline error while the calls beside it on the same stream are answered', () =>
  withHost({}, async (h, enable) => {
    const id = 'com.test.slow';
    await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 3000 } });
    const slow = failure(h.callHook(id, 'Sleep', { ms: 60_000 }));
    const fast = await Promise.all(Array.from({ length: 20 }, (_, i) => h.callHook(id, 'Echo', { i })));
    expect(fast.map((a) => a.payload)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, by: id })));
    // The same error, code and message, as a unary call past its deadline.
    expect(await slow).toMatchObject({ code: Errors.HOOK_TIMEOUT.code, status: 504, message: Errors.HOOK_TIMEOUT(id, 'Sleep', 3000).message });
    // The stream outlives the call that timed out.
    expect((await h.callHook(id, 'Echo', { i: 'after' })).payload).toEqual({ i: 'after', by: id });
    expect(await streamsOpened(h, id)).toBe(1);
    expect(await h.metrics.registry.metrics()).toMatch(/plughost_hook_duration_seconds_count\{plugin="com.test.slow",hook="Sleep",outcome="timeout"\} 1/);
  }));

test('a plugin that crashes mid-call fails every call in flight at once, not at their deadlines; after the restart a new stream carries calls', () =>
  withHost({}, async (h, enable) => {
    const id = 'com.test.crash';
    await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 20_000 } });
    const before = await h.get(id);
    const inFlight = Array.from({ length: 10 }, () => failure(h.callHook(id, 'Sleep', { ms: 60_000 })));
    const crash = failure(h.callHook(id, 'Crash', {}));
    // The deadline is 20 s: a call that waited for it would still be pending at half of it.
    const outcomes = await within(Promise.all([crash, ...inFlight]), 10_000);
    expect(outcomes).not.toBe('still pending');
    for (const outcome of outcomes as unknown[]) {
      expect(outcome).toMatchObject({ code: Errors.HOOK_FAILED.code });
      expect((outcome as Error).message).toMatch(/^hook (Sleep|Crash) of plugin "com\.test\.crash" failed: .*(exited unexpectedly|hook stream to the plugin broke)/);
    }
    await until(async () => {
      const now = await h.get(id);
      return now.state === 'running' && now.pid !== before.pid;
    }, 'the restart');
    expect((await h.callHook(id, 'Echo', { i: 'again' })).payload).toEqual({ i: 'again', by: id });
    expect(await streamsOpened(h, id)).toBe(2);
  }));

test('disable fails the calls in flight at once and closes the stream without a warning', () =>
  withHost({}, async (h, enable) => {
    const id = 'com.test.stop';
    await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 20_000 } });
    expect((await h.callHook(id, 'Echo', { i: 0 })).payload).toEqual({ i: 0, by: id });
    const inFlight = Array.from({ length: 5 }, () => failure(h.callHook(id, 'Sleep', { ms: 60_000 })));
    await h.disable(id);
    const outcomes = await within(Promise.all(inFlight), 10_000);
    expect(outcomes).toEqual(Array.from({ length: 5 }, () => expect.objectContaining({ code: Errors.HOOK_FAILED.code, message: `hook Sleep of plugin "${id}" failed: the plugin was stopped` })));
    expect(h.logs(id).filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    await expect(h.callHook(id, 'Echo', { i: 1 })).rejects.toMatchObject({ code: Errors.PLUGIN_NOT_RUNNING.code });
  }));

test('over the message limit, a request goes alone as unary and a response fails alone: both as MESSAGE_TOO_LARGE, the stream unharmed', () =>
  withHost({ maxMessageBytes: MiB }, async (h, enable) => {
    const id = 'com.test.big';
    await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 30_000 } });
    const beside = h.callHook(id, 'Echo', { i: 'beside', delayMs: 100 });
    const request = await failure(h.callHook(id, 'Echo', { data: 'a'.repeat(2 * MiB) }));
    expect(request).toMatchObject({ code: Errors.MESSAGE_TOO_LARGE.code, status: 413 });
    expect((request as Error).message).toMatch(/^hook Echo of plugin "com\.test\.big": .*limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
    const response = await failure(h.callHook(id, 'Inflate', { bytes: 2 * MiB }));
    expect(response).toMatchObject({ code: Errors.MESSAGE_TOO_LARGE.code, status: 413 });
    expect((response as Error).message).toMatch(/^hook Inflate of plugin "com\.test\.big": .*limit of 1048576 bytes \(1 MiB\); raise it with maxMessageBytes/);
    expect((await beside).payload).toEqual({ i: 'beside', delayMs: 100, by: id });
    expect((await h.callHook(id, 'Inflate', { bytes: 10 })).payload).toEqual({ data: 'x'.repeat(10) });
    expect(await streamsOpened(h, id)).toBe(1);
  }));

test.each([false, true])(
  'hookHttp2 %s: a plugin that stops reading (SIGSTOP) with 32 MiB of calls sent to it fails each call at its deadline while another plugin answers; once it reads again its late answers are dropped and the same stream carries new calls',
  (hookHttp2) =>
    withHost({ hookHttp2 }, async (h, enable) => {
      const id = 'com.test.deaf';
      const other = 'com.test.other';
      await enable({ id, program: STREAM_PLUGIN, limits: { hook_timeout_ms: 3000 } });
      await enable({ id: other, program: STREAM_PLUGIN });
      expect((await h.callHook(id, 'Echo', { i: 0 })).payload).toEqual({ i: 0, by: id });
      const { pid } = await h.get(id);
      process.kill(pid!, 'SIGSTOP');
      try {
        // More than any flow-control window between the two: the host's writes back up.
        const big = 'b'.repeat(512 * 1024);
        const calls = Array.from({ length: 64 }, (_, i) => failure(h.callHook(id, 'Sleep', { ms: 0, i, big })));
        const beside = await Promise.all(Array.from({ length: 20 }, (_, i) => h.callHook(other, 'Echo', { i })));
        expect(beside.map((a) => a.payload)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, by: other })));
        const outcomes = await within(Promise.all(calls), 30_000);
        expect(outcomes).toEqual(Array.from({ length: 64 }, () => expect.objectContaining({ code: Errors.HOOK_TIMEOUT.code })));
      } finally {
        process.kill(pid!, 'SIGCONT');
      }
      // It reads the backlog and answers calls nobody waits for now; then a new call gets its own answer.
      await until(() => h.callHook(id, 'Echo', { i: 'after' }).then((a) => (a.payload as { i: string }).i === 'after', () => false), 'an answer after SIGCONT', 40_000);
      expect((await h.callHook(id, 'Echo', { i: 'again' })).payload).toEqual({ i: 'again', by: id });
      expect(await streamsOpened(h, id)).toBe(1);
      expect((await h.get(id)).pid).toBe(pid);
      expect(h.logs(id).filter((l) => l.level === 'error')).toEqual([]);
    }),
  90_000,
);
