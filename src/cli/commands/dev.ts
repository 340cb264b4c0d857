/**
 * `plughost dev [dir]`: the author's loop against a running server. Packs the
 * plugin (TypeScript entries bundled), installs it with force, enables it and
 * streams its logs; then watches the folder and does it again on every change.
 * A failed build, install or start is said in words and the loop waits for
 * the next change. `--inspect ADDR` starts the plugin under the Node inspector
 * (the server must run with --allow-inspect) and prints where to attach.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ALWAYS_IGNORED } from '../../bundle/pack-ignore';
import { loadManifest } from '../../manifest';
import type { InstallResult, PluginInfo, PluginLogEntry } from '../../runtime';
import { ApiError, type AdminClient } from '../client';
import { EXIT, err, out } from '../io';
import * as pack from './pack';
import { settingsTypesInStep } from './types';
import { invocation, noMore } from './plugin/context';
import { formatLog } from './plugin/logs';
import { describeState } from './plugin/manage';

export const usage = 'plughost dev [dir] [--inspect ADDR] [--once] [--url URL] [--token TOKEN]  pack, install, enable and follow a plugin on a running server, again on every change';

/** Changes closer together than this make one rebuild. */
const SETTLE_MS = 200;
/** Paths under the plugin folder that never trigger a rebuild (besides pack's own always-ignored list). */
const NOT_SOURCES = /(^|[\\/])(node_modules|dist|\.git|coverage)([\\/]|$)|\.tar\.gz$|\.sig$/;
const INSPECTOR_LINE = /Debugger listening on (ws:\/\/\S+)/;

export async function run(args: string[]): Promise<number> {
  const { client, values, positionals } = invocation(args, {
    inspect: { type: 'string' },
    once: { type: 'boolean', default: false },
  });
  noMore(positionals, 1);
  const dir = path.resolve(positionals[0] ?? '.');
  const { manifest } = loadManifest(dir);
  const id = manifest.id;
  const bundle = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-dev-')), `${id}.tar.gz`);
  const loop = new DevLoop(client, dir, id, bundle, values.inspect);
  try {
    const ok = await loop.deploy();
    if (values.once) return ok ? EXIT.ok : EXIT.failed;
    return await loop.watch();
  } finally {
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
  }
}

class DevLoop {
  private readonly stop = new AbortController();

  constructor(
    private readonly client: AdminClient,
    private readonly dir: string,
    private readonly id: string,
    private readonly bundle: string,
    private readonly inspect: string | undefined,
  ) {}

  /** Pack → install with force → enable; true when the plugin runs. Says what failed otherwise. */
  async deploy(): Promise<boolean> {
    try {
      await pack.run([this.dir, '-o', this.bundle]);
    } catch (e) {
      err(`build failed: ${(e as Error).message}`);
      return false;
    }
    let installed: InstallResult;
    try {
      installed = await this.client.upload<InstallResult>({ bundle: this.bundle, query: { force: 'true' } });
      for (const warning of installed.warnings ?? []) err(`install: ${warning}`);
      const info = await this.client.request<PluginInfo>('POST', `/plugins/${encodeURIComponent(this.id)}/enable`, undefined,
        this.inspect === undefined ? undefined : { inspect: this.inspect });
      out(`${info.state === 'running' ? 'running' : 'not running'}: ${info.id} ${info.version} (${describeState(info)})`);
      return info.state === 'running';
    } catch (e) {
      err(e instanceof ApiError ? `${e.message}${problems(e)}` : `could not reach the server: ${(e as Error).message}`);
      return false;
    }
  }

  /** Follows the logs and redeploys on every change until Ctrl-C. */
  async watch(): Promise<number> {
    const onSignal = () => this.stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const watcher = fs.watch(this.dir, { recursive: true });
    watcher.on('error', (e) => err(`watching ${this.dir} failed: ${e.message}`));
    let timer: NodeJS.Timeout | undefined;
    let deploying: Promise<unknown> = Promise.resolve();
    watcher.on('change', (_kind, name) => {
      const file = String(name ?? '');
      if (NOT_SOURCES.test(file) || ALWAYS_IGNORED.some((p) => !p.includes('*') && file.split(/[\\/]/).includes(p.replace(/\/$/, '')))) return;
      // The Settings type as pack has just written it from the manifest: the manifest's change is being deployed
      // already. A generated file out of step with the manifest (an old copy checked out) still deploys, so pack refreshes it.
      if (file.endsWith('.ts') && settingsTypesInStep(this.dir, path.join(this.dir, file))) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        out(`changed: ${file}; rebuilding`);
        deploying = deploying.then(() => this.deploy());
      }, SETTLE_MS);
    });
    out(`watching ${this.dir}; Ctrl-C stops`);
    try {
      await this.followLogs();
      return EXIT.ok;
    } finally {
      clearTimeout(timer);
      watcher.close();
      await deploying;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  /** The plugin's log stream, reopened when it ends (a reinstall, a server restart), until stopped. */
  private async followLogs(): Promise<void> {
    while (!this.stop.signal.aborted) {
      const how = await this.client.follow(`/plugins/${encodeURIComponent(this.id)}/logs/stream`, { limit: '20' }, (event, data) => {
        if (event !== 'log') return;
        const entry = data as PluginLogEntry;
        out(formatLog(entry));
        const inspector = INSPECTOR_LINE.exec(entry.message);
        if (inspector) out(`inspector: attach to ${inspector[1]} (chrome://inspect, or a VS Code "attach" configuration)`);
      }, this.stop.signal).catch((e: Error) => {
        if (!this.stop.signal.aborted) err(`log stream: ${e.message}`);
        return 'ended' as const;
      });
      if (how === 'stopped') return;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/** A refused install's problems, one per line. */
function problems(e: ApiError): string {
  const list = (e.details as { problems?: unknown } | undefined)?.problems;
  return Array.isArray(list) && list.length ? `\n${list.map((p) => `  - ${typeof p === 'string' ? p : JSON.stringify(p)}`).join('\n')}` : '';
}
