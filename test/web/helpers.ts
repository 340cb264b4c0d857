/**
 * For the web tests: bundles of webapp-only plugins, a reader of server-sent
 * events, and Chromium (skipped with a reason when /usr/bin/chromium is
 * missing, unless PLUGHOST_REQUIRE_INTEROP=1 makes that a failure).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { packBundle } from '../../src/bundle';
import type { PluginHost } from '../../src/runtime';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.join(__dirname, '..', '..');
/** Screenshots land here (git-ignored with the rest of .cache/). */
export const ARTIFACTS = path.join(__dirname, '..', '..', '.cache', 'test-artifacts', 'web');

/** Packs examples/hello with the built CLI, as its author would. */
export function packHello(workDir: string): string {
  const out = path.join(workDir, 'hello.tar.gz');
  execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', path.join(ROOT, 'examples', 'hello'), '-o', out], { stdio: 'pipe' });
  return out;
}

/** A client bundle that fills slot `slot` with `text`, and counts its cleanups on window. */
export function slotBundleSource(slot: string, text: string): string {
  return `export default function activate(registry) {
  registry.registerSlot(${JSON.stringify(slot)}, (el) => {
    const p = document.createElement('p');
    p.className = 'from-plugin';
    p.textContent = ${JSON.stringify(text)} + ' ' + registry.version;
    el.append(p);
    return () => { window.cleanups = (window.cleanups || 0) + 1; };
  });
}
`;
}

/** Packs a plugin with only a webapp part (no server), with optional extra manifest fields. */
export async function webappBundle(
  workDir: string,
  id: string,
  version: string,
  source: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const dir = path.join(workDir, `web-${id}-${version}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(path.join(dir, 'webapp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ id, name: id, version, webapp: { bundle_path: 'webapp/main.js' }, ...extra }));
  fs.writeFileSync(path.join(dir, 'webapp', 'main.js'), source);
  const out = `${dir}.tar.gz`;
  await packBundle(dir, out);
  return out;
}

/**
 * Installs `count` webapp-only plugins (no process) straight into the host, named
 * `<prefix>-000`…; `extra(i)` adds manifest fields, `enable(i)` says which to enable
 * (an enable that fails, as one with a required setting unset does, is left failed).
 */
export async function manyPlugins(
  host: PluginHost,
  workDir: string,
  count: number,
  options: { prefix?: string; from?: number; extra?: (i: number) => Record<string, unknown>; enable?: (i: number) => boolean } = {},
): Promise<string[]> {
  const ids: string[] = [];
  const from = options.from ?? 0;
  for (let i = from; i < from + count; i++) {
    const id = `com.fleet.${options.prefix ?? 'p'}-${String(i).padStart(3, '0')}`;
    const file = await webappBundle(workDir, id, `1.${i % 5}.0`, 'export default function activate() {}\n', { name: `Fleet ${String(i).padStart(3, '0')}`, ...options.extra?.(i) });
    await host.install(file);
    if (options.enable?.(i)) await host.enable(id).catch(() => undefined);
    ids.push(id);
  }
  return ids;
}

/** Runs axe-core in the page (evaluated, not a script tag: the console's CSP allows no inline script) and answers its violations. */
export async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string | null; help: string; targets: string[] }>> {
  if (!(await page.evaluate(() => 'axe' in window))) {
    await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  }
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const result = await axe.run(document);
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads a text/event-stream body; `next(name)` waits for the next event of that name. */
export class SseReader {
  readonly events: SseEvent[] = [];
  private buffer = '';
  private waiters: Array<() => void> = [];
  private readonly done: Promise<void>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
    this.done = this.pump();
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    const reader = this.reader;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
          this.take(this.buffer.slice(0, cut));
          this.buffer = this.buffer.slice(cut + 2);
        }
      }
    } catch {
      // Cancelled by close().
    }
    this.wake();
  }

  private take(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
      else if (line.startsWith(':')) event = 'comment';
    }
    if (event === 'comment' || data.length) this.events.push({ event, data: data.length ? JSON.parse(data.join('\n')) : null });
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first event named `name` after the first `skip` of them. */
  async next(name: string, skip = 0, timeoutMs = 10_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.filter((e) => e.event === name)[skip];
      if (found) return found.data;
      if (Date.now() > deadline) throw new Error(`no "${name}" event #${skip + 1} within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  count(name: string): number {
    return this.events.filter((e) => e.event === name).length;
  }

  async close(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
    await this.done;
  }
}

/** Opens an event stream with fetch and returns its reader. */
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; reader: SseReader | null }> {
  const res = await fetch(url, { headers });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return { status: res.status, type: res.headers.get('content-type'), reader: null };
  }
  return { status: res.status, type: res.headers.get('content-type'), reader: new SseReader(res.body) };
}

/**
 * Chromium from Debian, or null (and a warning naming what to install) when it
 * is missing; with PLUGHOST_REQUIRE_INTEROP=1 a missing browser throws.
 */
export async function launchChromium(): Promise<Browser | null> {
  if (!fs.existsSync(CHROMIUM)) {
    const message = `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests`;
    if (process.env.PLUGHOST_REQUIRE_INTEROP === '1') throw new Error(`PLUGHOST_REQUIRE_INTEROP=1: ${message}`);
    console.warn(`skipping browser tests: ${message}`);
    return null;
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Polls `check` until it returns true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
