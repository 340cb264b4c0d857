/**
 * `plughost serve` handles SIGTERM and SIGINT itself (stop every plugin, then exit 0). The
 * protocol layer's exit cleanup listens for the same signals while plugins run: it must leave
 * this graceful shutdown alone.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { tempDir, waitGone, watchStdout } from '../helpers';
import { fixtureBundle } from '../runtime/fixtures';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'plughost.js');
const TOKEN = 'serve-shutdown-test-token-0123456789abcdef';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: serve stops its running plugin gracefully and exits 0`, async () => {
    const work = tempDir();
    const server = spawn(process.execPath, [BIN, 'serve', '--data-dir', path.join(work.dir, 'data'), '--port', '0'], {
      cwd: work.dir,
      env: { ...process.env, PLUGHOST_ADMIN_TOKEN: TOKEN },
    });
    try {
      const output = watchStdout(server);
      const ended = once(server, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const url = (await output.waitFor(/listening on (\S+)/, 'serve did not start'))[1];
      const bundle = await fixtureBundle(work.dir, { id: 'com.test.graceful' });
      await new Promise<void>((resolve, reject) =>
        execFile(process.execPath, [BIN, 'plugin', 'add', bundle, '--enable'], { env: { ...process.env, PLUGHOST_URL: url, PLUGHOST_TOKEN: TOKEN } }, (err, _out, errText) =>
          err ? reject(new Error(errText)) : resolve(),
        ),
      );
      const info = (await (await fetch(`${url}/api/v1/plugins/com.test.graceful`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { state: string; pid: number };
      expect(info.state).toBe('running');

      server.kill(signal);
      expect(await ended).toEqual([0, null]);
      expect(output.text).toContain('stopping plugins...');
      expect(await waitGone(info.pid, 10_000)).toBe(true);
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      work.cleanup();
    }
  }, 120_000);
}
