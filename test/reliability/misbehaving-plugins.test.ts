/**
 * Plugins that crash, hang, flood, fork and exhaust memory, against a real
 * server. For each: the host stays responsive (/healthz and a bystander
 * plugin's hook answer), and the plugin ends in the right state with a clear
 * reason.
 */
import { Errors } from '../../src/errors';
import { AUTH, testServer, upload, type TestServer } from '../server/helpers';
import { exited, misbehavingBundle, rssMiB, until, type MisbehavingOptions } from './helpers';

let server: TestServer;
const BYSTANDER = 'com.test.bystander';

beforeAll(async () => {
  server = await testServer({
    hostOptions: { defaults: { restartBackoffMs: 50, restartBackoffMaxMs: 100, maxFailures: 2, killGraceMs: 500, healthIntervalMs: 60_000 } },
  });
  await add(BYSTANDER);
});
afterAll(() => server.stop());

async function add(id: string, o: MisbehavingOptions = {}, enable = true): Promise<Response | null> {
  expect((await upload(server.url, await misbehavingBundle(server.work, id, o))).status).toBe(201);
  return enable ? fetch(`${server.url}/api/v1/plugins/${id}/enable`, { method: 'POST', headers: AUTH }) : null;
}

/** The host answers /healthz and the bystander's hook, and the bystander was never restarted. */
async function hostResponsive(): Promise<void> {
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  expect((await server.host.callHook(BYSTANDER, 'Echo', { n: 1 })).payload).toMatchObject({ echo: { n: 1 } });
  expect(await server.host.get(BYSTANDER)).toMatchObject({ state: 'running', restarts: 0 });
}

const info = (id: string) => server.host.get(id);

describe('crashes', () => {
  test('at start: failed_to_start with the exit code and its last stderr line', async () => {
    const res = (await add('com.test.crash-start', { env: { CRASH_AT_START: '1' } }))!;
    expect(res.status).toBe(502);
    expect((await res.json()).error.code).toBe(Errors.ACTIVATION_FAILED.code);
    const i = await info('com.test.crash-start');
    expect(i.state).toBe('failed_to_start');
    expect(i.lastError).toMatch(/exited before its handshake \(exit code 3\)/);
    expect(i.lastError).toContain('misbehaving: refusing to start');
    await hostResponsive();
  });

  test('mid-hook: the call fails at once, the plugin is restarted and answers again', async () => {
    const id = 'com.test.crash-hook';
    expect((await add(id))!.status).toBe(200);
    const before = (await info(id)).pid!;
    await expect(server.host.callHook(id, 'Crash', {})).rejects.toMatchObject({ code: Errors.HOOK_FAILED.code });
    await until(async () => (await info(id)).state === 'running' && (await info(id)).pid !== before, 'the restart');
    expect((await info(id)).restarts).toBe(1);
    expect((await server.host.callHook(id, 'Echo', 'again')).payload).toMatchObject({ echo: 'again' });
    await hostResponsive();
  });

  test('mid-HTTP-stream: that response ends early, other requests are served, the plugin comes back', async () => {
    const id = 'com.test.crash-http';
    expect((await add(id))!.status).toBe(200);
    const res = await fetch(`${server.url}/plugins/${id}/crash`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await hostResponsive();
    await until(async () => (await info(id)).state === 'running' && (await info(id)).restarts === 1, 'the restart');
    expect(await (await fetch(`${server.url}/plugins/${id}/ok`)).text()).toBe('ok /ok');
  });
});

describe('hangs', () => {
  test('in OnActivate: the start timeout fails the start and the process is killed', async () => {
    const id = 'com.test.hang-activate';
    const res = (await add(id, { env: { HANG_ACTIVATE: '1' }, limits: { start_timeout_ms: 3000 } }))!;
    expect(res.status).toBe(502);
    const i = await info(id);
    expect(i).toMatchObject({ state: 'failed_to_start', pid: undefined });
    expect(i.lastError).toMatch(/failed to activate during OnActivate: .*deadline/i);
    await hostResponsive();
  });

  test('in a hook: the call ends at its deadline, the plugin keeps serving other calls', async () => {
    const id = 'com.test.hang-hook';
    expect((await add(id, { limits: { hook_timeout_ms: 500 } }))!.status).toBe(200);
    const hung = server.host.callHook(id, 'Hang', {});
    await hostResponsive();
    await expect(hung).rejects.toThrow(/Hang.*deadline/i);
    expect((await server.host.callHook(id, 'Echo', 1)).payload).toMatchObject({ echo: 1 });
    expect(await info(id)).toMatchObject({ state: 'running', restarts: 0 });
  });

  test('in Shutdown (OnDeactivate, Shutdown and SIGTERM all ignored): disable still ends it by SIGKILL', async () => {
    const id = 'com.test.hang-shutdown';
    expect((await add(id, { env: { HANG_SHUTDOWN: '1' }, limits: { hook_timeout_ms: 500 } }))!.status).toBe(200);
    const pid = (await info(id)).pid!;
    const disabling = fetch(`${server.url}/api/v1/plugins/${id}/disable`, { method: 'POST', headers: AUTH });
    await hostResponsive();
    expect((await disabling).status).toBe(200);
    expect(await info(id)).toMatchObject({ state: 'not_running', enabled: false });
    expect(exited(pid)).toBe(true);
    expect(server.host.logs(id).some((l) => /OnDeactivate failed/.test(l.message))).toBe(true);
  });
});

describe('handshake misbehaviour', () => {
  test('garbage before the handshake: failed_to_start naming the line it got', async () => {
    const res = (await add('com.test.garbage', { env: { GARBAGE_FIRST: '1' } }))!;
    expect(res.status).toBe(502);
    expect((await info('com.test.garbage')).lastError).toContain('Welcome to my plugin! v1.0 (not a handshake)');
    await hostResponsive();
  });

  test('stdout closed before the handshake: failed_to_start saying so', async () => {
    const res = (await add('com.test.closed-stdout', { env: { CLOSE_STDOUT: '1' }, limits: { start_timeout_ms: 5000 } }))!;
    expect(res.status).toBe(502);
    expect((await info('com.test.closed-stdout')).lastError).toMatch(/closed its stdout without printing a handshake line/);
    await hostResponsive();
  });
});

describe('output floods', () => {
  test.each([
    ['stdout', 1],
    ['stderr', 2],
  ])('100 MiB on %s: host memory stays bounded, the excess is dropped and counted in logs and metrics', async (name, fd) => {
    const id = `com.test.flood-${name}`;
    expect((await add(id, { limits: { hook_timeout_ms: 60_000 } }))!.status).toBe(200);
    const before = rssMiB();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 50);
    try {
      const res = await server.host.callHook(id, 'Flood', { fd, mb: 100, lineBytes: 1024 });
      expect(res.payload).toEqual({ bytes: 100 * 1024 * 1024 });
      await hostResponsive();
    } finally {
      clearInterval(sampler);
    }
    // Kept whole, 100 MiB of lines would be far more than this as JS strings and records.
    expect(peak - before).toBeLessThan(96);
    await until(() => server.host.logs(id).some((l) => l.source === 'host' && /log lines \(\d+ bytes\) dropped/.test(l.message)), 'the dropped-lines record');
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: AUTH })).text();
    const counted = new RegExp(`plughost_plugin_log_lines_dropped_total\\{plugin="${id.replace(/\./g, '\\.')}"\\} (\\d+)`).exec(metrics);
    expect(Number(counted?.[1])).toBeGreaterThan(50_000);
    expect((await fetch(`${server.url}/api/v1/plugins/${id}/logs`, { headers: AUTH })).status).toBe(200);
    expect(await info(id)).toMatchObject({ state: 'running', restarts: 0 });
  });
});

describe('children that try to outlive the plugin', () => {
  async function forked(id: string): Promise<number[]> {
    const pids = (await server.host.callHook(id, 'Fork', {})).payload as Record<string, number>;
    const all = [pids.same, pids.setsid, pids.orphan];
    expect(all.every((p) => Number.isInteger(p) && p > 0 && !exited(p))).toBe(true);
    return all;
  }

  test('same group, setsid, and a double-fork orphan: none survives a disable', async () => {
    const id = 'com.test.fork-disable';
    expect((await add(id))!.status).toBe(200);
    const children = await forked(id);
    expect((await fetch(`${server.url}/api/v1/plugins/${id}/disable`, { method: 'POST', headers: AUTH })).status).toBe(200);
    await until(() => children.every(exited), `children ${children} to be gone`, 5000);
    await hostResponsive();
  });

  test('none survives a crash of the plugin either', async () => {
    const id = 'com.test.fork-crash';
    expect((await add(id))!.status).toBe(200);
    const children = await forked(id);
    await expect(server.host.callHook(id, 'Crash', {})).rejects.toThrow();
    await until(() => children.every(exited), `children ${children} to be gone`, 5000);
    await until(async () => (await info(id)).state === 'running', 'the restart');
    await hostResponsive();
  });
});

describe('memory exhaustion', () => {
  test('node runtime, heap: V8 or the cgroup stops it, and the plugin is parked saying so', async () => {
    const id = 'com.test.oom-node';
    expect((await add(id, { limits: { memory_mb: 64 } }))!.status).toBe(200);
    for (let round = 0; round < 2; round++) {
      await until(async () => (await info(id)).state === 'running', 'running');
      await server.host.callHook(id, 'Alloc', { kind: 'heap' }).catch(() => undefined);
      await until(async () => (await info(id)).state !== 'running', 'the crash');
    }
    await until(async () => (await info(id)).state === 'failed_to_stay_running', 'parking');
    expect((await info(id)).lastError).toMatch(/(exceeded its memory limit of 64 MiB|ran out of JavaScript heap).*parked/);
    await hostResponsive();
  });

  test('executable, buffers: the limit holds, and the plugin is parked saying so', async () => {
    const id = 'com.test.oom-exe';
    expect((await add(id, { executable: true, limits: { memory_mb: 96 } }))!.status).toBe(200);
    expect((await info(id)).pid).toBeGreaterThan(0);
    for (let round = 0; round < 2; round++) {
      await until(async () => (await info(id)).state === 'running', 'running');
      await server.host.callHook(id, 'Alloc', { kind: 'buffer', mb: 256 }).catch(() => undefined);
      await until(async () => (await info(id)).state !== 'running', 'the crash');
    }
    await until(async () => (await info(id)).state === 'failed_to_stay_running', 'parking');
    expect((await info(id)).lastError).toMatch(/exceeded its memory limit of 96 MiB \(the manifest's limits\.memory_mb.*parked/);
    await hostResponsive();
  });
});
