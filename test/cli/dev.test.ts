/**
 * `plughost dev` against a real `plughost serve`: the first deploy, a change
 * picked up and redeployed, a broken build said in words and recovered from,
 * the plugin under the Node inspector with the address to attach to, and a
 * server that does not allow the inspector refusing it by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, until, watchStdout } from '../helpers';
import { BIN, ROOT, cliRunner, serveOnce } from './helpers';

const TOKEN = 'dev-command-test-token-0123456789abcdef';
const ID = 'com.test.dev';
const SDK = path.join(ROOT, 'dist', 'sdk', 'index.js');

function writePlugin(dir: string, answer: string): void {
  fs.mkdirSync(path.join(dir, 'server'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ id: ID, name: 'Dev loop', version: '1.0.0', server: { runtime: 'node', entry: 'server/plugin.js' } }));
  fs.writeFileSync(path.join(dir, 'server', 'plugin.js'), `'use strict';
const { definePlugin } = require(${JSON.stringify(SDK)});
definePlugin({
  onActivate(ctx) { ctx.log.info('activated', { answer: ${JSON.stringify(answer)} }); },
  serveHTTP: () => Response.json({ answer: ${JSON.stringify(answer)} }),
});
`);
}

/** Starts `plughost dev` on `dir`; its stdout and stderr together. */
function startDev(url: string, dir: string, extra: string[] = []): { child: ChildProcess; text(): string; waitFor(re: RegExp, what: string): Promise<RegExpExecArray> } {
  const child = spawn(process.execPath, [BIN, 'dev', dir, ...extra], { env: { ...process.env, PLUGHOST_URL: url, PLUGHOST_TOKEN: TOKEN } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const stdout = watchStdout(child);
  const text = () => `${stdout.text}\n${stderr}`;
  const waitFor = async (re: RegExp, what: string) => {
    let found: RegExpExecArray | null = null;
    await until(() => (found = re.exec(text())) !== null, `${what}; dev printed:\n${text()}`, 60_000);
    return found!;
  };
  return { child, text, waitFor };
}

async function stopDev(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.kill('SIGINT');
  return exited;
}

const answerOf = async (url: string) => {
  const res = await fetch(`${url}/plugins/${ID}/`);
  return res.status === 200 ? ((await res.json()) as { answer: string }).answer : `HTTP ${res.status}`;
};

test('deploys, redeploys on a change, says a broken build in words and recovers, and runs the plugin under the inspector', async () => {
  const work = tempDir();
  try {
    const dir = path.join(work.dir, 'plugin');
    writePlugin(dir, 'first');
    await serveOnce(['--data-dir', path.join(work.dir, 'data'), '--port', '0', '--allow-inspect'], { PLUGHOST_ADMIN_TOKEN: TOKEN }, async (url) => {
      const dev = startDev(url, dir);
      try {
        await dev.waitFor(/running: com\.test\.dev 1\.0\.0/, 'the first deploy');
        expect(await answerOf(url)).toBe('first');
        await dev.waitFor(/activated answer=first/, "the plugin's own log line, streamed");

        writePlugin(dir, 'second');
        await dev.waitFor(/changed: .*\n(.|\n)*running: com\.test\.dev/, 'a redeploy after the change');
        await until(async () => (await answerOf(url)) === 'second', 'the new code answering');

        fs.writeFileSync(path.join(dir, 'plugin.json'), '{ "id": ');
        await dev.waitFor(/build failed: .*plugin\.json/, 'the broken manifest named');
        expect(await answerOf(url)).toBe('second');
        writePlugin(dir, 'third');
        await until(async () => (await answerOf(url)) === 'third', 'the fixed plugin answering');
        expect(await stopDev(dev.child)).toBe(0);

        const inspected = startDev(url, dir, ['--inspect', '0']);
        try {
          const [, ws] = await inspected.waitFor(/inspector: attach to (ws:\/\/127\.0\.0\.1:\d+\/\S+)/, 'the inspector address');
          const port = new URL(ws).port;
          const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
          expect(targets.map((t) => t.webSocketDebuggerUrl)).toContain(ws);
          expect(await answerOf(url)).toBe('third');
        } finally {
          expect(await stopDev(inspected.child)).toBe(0);
        }
        // Loopback only, even where the inspector is allowed.
        const bad = await cliRunner(() => ({ url, token: TOKEN })).cli(['plugin', 'enable', ID, '--inspect', '0.0.0.0:9229']);
        expect(bad.status).toBe(1);
        expect(bad.stderr).toContain('127.0.0.1:<port>');
      } finally {
        await stopDev(dev.child);
      }
    });
  } finally {
    work.cleanup();
  }
}, 240_000);

test('--once deploys and exits; a server without --allow-inspect refuses the inspector by name', async () => {
  const work = tempDir();
  try {
    const dir = path.join(work.dir, 'plugin');
    writePlugin(dir, 'once');
    await serveOnce(['--data-dir', path.join(work.dir, 'data'), '--port', '0'], { PLUGHOST_ADMIN_TOKEN: TOKEN }, async (url) => {
      const { cli } = cliRunner(() => ({ url, token: TOKEN }));
      const once = await cli(['dev', dir, '--once']);
      expect({ status: once.status, out: once.stdout }).toMatchObject({ status: 0, out: expect.stringContaining('running: com.test.dev 1.0.0') });
      expect(await answerOf(url)).toBe('once');

      const refused = await cli(['dev', dir, '--once', '--inspect', '9229']);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('--allow-inspect');
      const bad = await cli(['plugin', 'enable', ID, '--inspect', '9229']);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('does not allow it');
    });
  } finally {
    work.cleanup();
  }
}, 180_000);

test('a TypeScript plugin: a settings change deploys once (the Settings type pack rewrites does not deploy again); a stale copy of the type deploys and is refreshed', async () => {
  const work = tempDir();
  const settingsOf = (keys: string[]) => ({ settings: keys.map((key) => ({ key, type: 'text', default: key })) });
  const writeTs = (dir: string, keys: string[], answer: string) => {
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ id: ID, name: 'Dev loop', version: '1.0.0', server: { runtime: 'node', entry: 'src/plugin.ts' }, settings_schema: settingsOf(keys) }));
    fs.writeFileSync(path.join(dir, 'src', 'plugin.ts'), `import type { Settings } from './settings';
const { definePlugin } = require(${JSON.stringify(SDK)});
definePlugin({ serveHTTP: (_r: Request, ctx: { config: Settings }) => Response.json({ answer: ${JSON.stringify(answer)}, config: ctx.config }) });
`);
  };
  try {
    const dir = path.join(work.dir, 'plugin');
    writeTs(dir, ['a'], 'first');
    const { cli } = cliRunner(() => ({ url: '', token: TOKEN }));
    expect((await cli(['types', dir])).status).toBe(0);
    const settingsFile = path.join(dir, 'src', 'settings.ts');
    const stale = fs.readFileSync(settingsFile, 'utf8');
    await serveOnce(['--data-dir', path.join(work.dir, 'data'), '--port', '0'], { PLUGHOST_ADMIN_TOKEN: TOKEN }, async (url) => {
      const dev = startDev(url, dir);
      const changed = () => [...dev.text().matchAll(/changed: (\S+); rebuilding/g)].map((m) => m[1]);
      const deploys = () => dev.text().match(/running: com\.test\.dev 1\.0\.0/g)?.length ?? 0;
      try {
        await dev.waitFor(/running: com\.test\.dev 1\.0\.0/, 'the first deploy');

        // The manifest gains a setting: pack rewrites src/settings.ts during the deploy, which must not deploy again.
        fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ id: ID, name: 'Dev loop', version: '1.0.0', server: { runtime: 'node', entry: 'src/plugin.ts' }, settings_schema: settingsOf(['a', 'b']) }));
        await until(() => deploys() === 2, `the redeploy after the manifest change; dev printed:\n${dev.text()}`, 60_000);
        expect(fs.readFileSync(settingsFile, 'utf8')).toContain('  b: string;');

        // An old copy of the generated type (as a checkout would bring back): out of step with the manifest, so it deploys, and pack refreshes it.
        fs.writeFileSync(settingsFile, stale);
        await until(() => deploys() === 3, `the redeploy after the stale type; dev printed:\n${dev.text()}`, 60_000);
        expect(fs.readFileSync(settingsFile, 'utf8')).toContain('  b: string;');

        // A sentinel change: any deploy the rewrites had caused would have come before it.
        writeTs(dir, ['a', 'b'], 'sentinel');
        await until(async () => (await answerOf(url)) === 'sentinel', `the sentinel deploy; dev printed:\n${dev.text()}`, 60_000);
        await until(() => deploys() === 4, 'the sentinel deploy reported', 60_000);
        expect(changed()).toEqual(['plugin.json', path.join('src', 'settings.ts'), expect.stringMatching(/^(plugin\.json|src\/plugin\.ts)$/)]);
      } finally {
        expect(await stopDev(dev.child)).toBe(0);
      }
    });
  } finally {
    work.cleanup();
  }
}, 240_000);
