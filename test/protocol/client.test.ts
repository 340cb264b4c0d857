import * as fs from 'node:fs';
import * as path from 'node:path';
import { PluginClient } from '../../src/protocol/client';
import { Errors, PlughostError } from '../../src/errors';
import { LogCollector, NODE, echoService, fixture, isAlive, tempDir, unary, waitGone } from '../helpers';

const Echo = echoService();

function start(extra: Partial<Parameters<typeof PluginClient.start>[0]> = {}, logs = new LogCollector()) {
  return PluginClient.start({ cmd: NODE, args: [fixture('echo-plugin.js')], startTimeoutMs: 15_000, onLog: logs.onLog, ...extra });
}

describe('PluginClient against a servePlugin plugin', () => {
  for (const variant of [
    { name: 'unix plaintext', opts: {} },
    { name: 'unix AutoMTLS', opts: { autoMTLS: true } },
    { name: 'tcp plaintext', opts: { network: 'tcp' as const } },
    { name: 'tcp AutoMTLS', opts: { network: 'tcp' as const, autoMTLS: true } },
  ]) {
    test(`${variant.name}: call, ping, broker both ways, kill`, async () => {
      const client = await start(variant.opts);
      try {
        expect(client.network).toBe(variant.opts.network ?? 'unix');
        expect(client.protocolVersion).toBe(1);
        await client.ping();
        const echo = client.client(Echo);
        expect((await unary(echo.Say.bind(echo), { text: 'hi' })).text).toBe('hi');

        // host → plugin: the host serves Echo on its broker, the plugin dials it.
        const id = client.broker.nextId();
        await client.broker.acceptAndServe(id, [
          { definition: Echo.service, implementation: { Say: (c: any, cb: any) => cb(null, { text: `host got ${c.request.text}` }) } },
        ]);
        expect((await unary(echo.CallBack.bind(echo), { id, text: 'ping' })).text).toBe('host said: host got ping');

        // plugin → host: the plugin serves on its broker, the host dials it.
        const offered = await unary(echo.Offer.bind(echo), {});
        const conn = await client.broker.dial(offered.id);
        const viaBroker = conn.client(Echo);
        expect((await unary(viaBroker.Say.bind(viaBroker), { text: 'x' })).text).toBe('plugin broker: x');
      } finally {
        const exit = await client.kill();
        expect(exit.code).toBe(0);
        expect(isAlive(client.pid)).toBe(false);
      }
    });
  }

  test('the socket folder is private (0700) and removed after kill', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const client = await start({ socketDirParent: dir });
      const socketDir = path.dirname(client.address);
      expect(fs.statSync(socketDir).mode & 0o777).toBe(0o700);
      await client.kill();
      expect(fs.existsSync(socketDir)).toBe(false);
    } finally {
      cleanup();
    }
  });

  test('stdio is forwarded over StreamStdio and structured logs are parsed', async () => {
    const logs = new LogCollector();
    const client = await start({}, logs);
    try {
      const echo = client.client(Echo);
      await unary(echo.Print.bind(echo), { text: 'hello world' });
      const out = await logs.waitFor((r) => r.source === 'stdio:stdout');
      expect(out.message).toBe('stdout: hello world');
      const err = await logs.waitFor((r) => r.source === 'stdio:stderr');
      expect(err.message).toBe('stderr: hello world');
      const structured = await logs.waitFor((r) => r.source === 'stderr' && r.message === 'hello world');
      expect(structured.level).toBe('info');
      expect(structured.fields).toMatchObject({ answer: 42, module: 'plugin' });
    } finally {
      await client.kill();
    }
  });

  test('a very long stderr line is cut, flagged, and the next line still arrives', async () => {
    const logs = new LogCollector();
    const client = await start({ env: { FIXTURE_MODE: 'long-line' } }, logs);
    try {
      const cut = await logs.waitFor((r) => r.truncated === true);
      expect(cut.message.length).toBe(64 * 1024);
      const next = await logs.waitFor((r) => r.message === 'after the long line');
      expect(next.level).toBe('warn');
    } finally {
      await client.kill();
    }
  });

  test('the cookie is passed and a launch by hand is refused with go-plugin\'s message', async () => {
    const { spawnSync } = await import('node:child_process');
    const res = spawnSync(NODE, [fixture('echo-plugin.js')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('This binary is a plugin. These are not meant to be executed directly.');
    expect(res.stdout).toBe('');
  });

  test('a cookie key the plugin does not know is reported as a refused cookie, naming the key the host set', async () => {
    const err = await start({ handshake: { magicCookieKey: 'OTHER_COOKIE', magicCookieValue: 'x' } }).catch((e) => e);
    expect(err).toBeInstanceOf(PlughostError);
    expect(err.code).toBe(Errors.HANDSHAKE_COOKIE_REFUSED.code);
    expect(err.message).toMatch(/^plugin refused the magic cookie: it exited \(exit code 1\)/);
    expect(err.message).toContain('the cookie the host set in OTHER_COOKIE did not match');
    expect(err.message).toContain('HandshakeConfig');
    expect(err.message).toContain('This binary is a plugin');
  });

  test('a cookie value the plugin does not expect is reported as a refused cookie', async () => {
    const err = await start({ handshake: { magicCookieKey: 'PLUGHOST_PLUGIN', magicCookieValue: 'not-plughost' } }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_COOKIE_REFUSED.code);
    expect(err.message).toContain('the cookie the host set in PLUGHOST_PLUGIN did not match');
  });

  test('stderr lines before the handshake keep their levels, fields and times', async () => {
    const logs = new LogCollector();
    const client = await start({ env: { FIXTURE_MODE: 'pre-handshake-logs' } }, logs);
    try {
      const json = await logs.waitFor((r) => r.message === 'pre json');
      expect(json).toMatchObject({ level: 'warn', source: 'stderr', fields: { disk: 'low' }, time: Date.parse('2026-01-02T03:04:05.678Z') });
      expect((await logs.waitFor((r) => r.message === 'pre plain')).level).toBe('error');
      expect((await logs.waitFor((r) => r.message === 'pre unlabelled')).level).toBe('info');
    } finally {
      await client.kill();
    }
  });

  test('negotiation picks the highest common version', async () => {
    const client = await start({ versions: [1, 2, 3], env: { FIXTURE_VERSIONS: '2,3,4' } });
    expect(client.protocolVersion).toBe(3);
    await client.kill();
  });

  test('no common version is refused, naming both lists', async () => {
    const err = await start({ versions: [2, 3], env: { FIXTURE_VERSIONS: '1' } }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_VERSION.code);
    expect(err.message).toMatch(/chose app protocol version 1, but this host supports only 2, 3/);
  });

  test('an early exit carries the exit code and the last stderr lines', async () => {
    const err = await start({ env: { FIXTURE_MODE: 'exit-early' } }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_EXITED.code);
    expect(err.message).toMatch(/^plugin exited before its handshake \(exit code 3\)/);
    expect(err.message).toContain('exit code 3');
    expect(err.message).toContain('fatal: cannot continue');
  });

  test('a plugin that sends nothing is reported as a timeout, and is killed', async () => {
    const logs = new LogCollector();
    const err = await start({ env: { FIXTURE_MODE: 'silent' }, startTimeoutMs: 4_000 }, logs).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_TIMEOUT.code);
    expect(err.message).toContain('within 4000 ms');
    expect(err.message).toContain('thinking...');
  });

  test('a plugin that closes stdout before the handshake is reported', async () => {
    const err = await start({ env: { FIXTURE_MODE: 'close-stdout' } }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_STDOUT_CLOSED.code);
  });

  test('garbage before the handshake is refused, naming the line', async () => {
    const err = await start({ env: { FIXTURE_MODE: 'garbage' } }).catch((e) => e);
    expect(err.code).toBe(Errors.HANDSHAKE_BAD_LINE.code);
    expect(err.message).toContain('"Starting up, please wait..."');
  });

  test('a checksum mismatch is refused before launch', async () => {
    const err = await start({ cmd: NODE, checksum: '0'.repeat(64) }).catch((e) => e);
    expect(err.code).toBe(Errors.CHECKSUM_MISMATCH.code);
    expect(err.message).toContain(NODE);
  });

  test('a matching checksum launches', async () => {
    const { sha256File } = await import('../../src/protocol/process');
    const client = await start({ checksum: await sha256File(NODE) });
    await client.kill();
  });

  test('a missing executable is a spawn error naming it', async () => {
    const err = await start({ cmd: '/nonexistent/plugin-binary' }).catch((e) => e);
    expect(err.code).toBe(Errors.SPAWN_FAILED.code);
    expect(err.message).toContain('/nonexistent/plugin-binary');
  });

  test('kill of a plugin that ignores SIGTERM and Shutdown, and has a grandchild, leaves nothing running', async () => {
    const logs = new LogCollector();
    const client = await start({ env: { FIXTURE_MODE: 'stubborn' }, killGraceMs: 500 }, logs);
    const line = await logs.waitFor((r) => r.message.startsWith('grandchild='));
    const grandchild = Number(line.message.split('=')[1]);
    expect(isAlive(grandchild)).toBe(true);
    const exit = await client.kill();
    expect(exit.signal).toBe('SIGKILL');
    expect(await waitGone(client.pid)).toBe(true);
    expect(await waitGone(grandchild)).toBe(true);
  });

  test('a socket folder whose path is too long is refused up front', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const deep = path.join(dir, 'd'.repeat(90));
      fs.mkdirSync(deep);
      const err = await start({ socketDirParent: deep }).catch((e) => e);
      expect(err.code).toBe(Errors.SOCKET_PATH_TOO_LONG.code);
    } finally {
      cleanup();
    }
  });

  test('reattach to a plugin started by hand', async () => {
    const { spawn } = await import('node:child_process');
    const { dir, cleanup } = tempDir();
    const child = spawn(NODE, [fixture('echo-plugin.js')], {
      env: { PATH: process.env.PATH, PLUGHOST_PLUGIN: 'plughost', PLUGIN_UNIX_SOCKET_DIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
      const [, version, network, address] = line.split('|');
      const config = JSON.parse(JSON.stringify({ protocol: 'grpc', protocolVersion: Number(version), network, address, pid: child.pid }));
      const client = await PluginClient.reattach(config, { onLog: () => undefined });
      const echo = client.client(Echo);
      expect((await unary(echo.Say.bind(echo), { text: 'again' })).text).toBe('again');
      expect(client.reattachConfig()).toEqual(config);
      await client.kill();
      expect(await waitGone(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      cleanup();
    }
  });

  test('reattach with a bad config names the field', async () => {
    const err = await PluginClient.reattach({ protocol: 'grpc', protocolVersion: 1, network: 'pipe', address: 'x', pid: 1 } as never).catch((e) => e);
    expect(err.code).toBe(Errors.REATTACH_CONFIG.code);
    expect(err.message).toContain('network');
  });

  test('the plugin\'s exit is observed without kill', async () => {
    const client = await start();
    process.kill(client.pid, 'SIGKILL');
    const exit = await client.exited;
    expect(exit.signal).toBe('SIGKILL');
    await client.kill();
  });
});
