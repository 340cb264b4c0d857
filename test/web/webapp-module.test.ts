/**
 * plughost/webapp in Chromium, on the embed example's demo page: the hello
 * plugin's greeting fills its slot; a webapp-only plugin appears, is swapped
 * for its upgrade and goes away when disabled, all without a page reload; the
 * bundles arrive with immutable cache headers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createNotesApp, type NotesApp } from '../../examples/embed/src/app';
import { tempDir } from '../helpers';
import { ARTIFACTS, eventually, launchChromium, packHello, slotBundleSource, webappBundle } from './helpers';

const HELLO = 'com.example.hello';
const WEB = 'com.example.slotted';

let browser: Browser | null = null;
let page: Page;
let notes: NotesApp;
let base = '';
const work = tempDir();
const bundleResponses: Array<{ url: string; status: number; cacheControl: string | undefined; type: string | undefined }> = [];

beforeAll(async () => {
  browser = await launchChromium();
  if (!browser) return;
  notes = await createNotesApp({ dataDir: path.join(work.dir, 'data') });
  await notes.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(notes.app.server.address() as { port: number }).port}`;
  const hello = await notes.host.install(packHello(work.dir));
  await notes.host.enable(hello.id);
  page = await browser.newPage();
  page.on('response', (res) => {
    if (res.url().includes('/webapp/') && res.url().endsWith('.js') && !res.url().endsWith('plughost.js')) {
      bundleResponses.push({ url: res.url(), status: res.status(), cacheControl: res.headers()['cache-control'], type: res.headers()['content-type'] });
    }
  });
  await page.goto(`${base}/`);
  // Set once: if anything reloads the page, it is gone.
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'no reload'));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await notes?.close();
  work.cleanup();
});

const slotTexts = () => page.$$eval('[data-plughost-slot="greeting"] p', (ps) => ps.map((p) => p.textContent ?? ''));
const notReloaded = () => page.evaluate(() => (window as unknown as { marker?: string }).marker);
const cleanups = () => page.evaluate(() => (window as unknown as { cleanups?: number }).cleanups ?? 0);

function browserTest(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if (!browser) return;
    await fn();
  });
}

browserTest('the demo page shows the hello greeting in its slot, read from the plugin route', async () => {
  await page.waitForSelector('.hello-greeting');
  await page.waitForFunction(() => /^Hello from the hello plugin \(visit \d+\)$/.test(document.querySelector('.hello-greeting')?.textContent ?? ''));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-page.png') });
});

browserTest('the console and the API are found under the embed app\'s prefix', async () => {
  const html = await (await fetch(`${base}/plughost/admin`)).text();
  expect(html).toContain('<meta name="plughost-api-base" content="/plughost/api/v1">');
  expect(html).toContain('src="/plughost/admin/console.js"');
  expect((await fetch(`${base}/plughost/api/v1/plugins`)).status).toBe(401);
});

browserTest('bundle URLs are served as JavaScript with immutable caching', async () => {
  expect(bundleResponses.length).toBeGreaterThan(0);
  expect(bundleResponses[0]).toMatchObject({
    status: 200,
    cacheControl: 'public, max-age=31536000, immutable',
    type: 'text/javascript; charset=utf-8',
    url: expect.stringMatching(/\/plughost\/plugins\/com\.example\.hello\/webapp\/[0-9a-f]{20}\.js$/),
  });
});

browserTest('a plugin enabled later appears, an upgrade replaces it, disabling removes it: no reload', async () => {
  const v1 = await notes.host.install(await webappBundle(work.dir, WEB, '1.0.0', slotBundleSource('greeting', 'slotted')));
  await notes.host.enable(v1.id);
  await page.waitForFunction(() => [...document.querySelectorAll('.from-plugin')].some((p) => p.textContent === 'slotted 1.0.0'));

  await notes.host.install(await webappBundle(work.dir, WEB, '2.0.0', slotBundleSource('greeting', 'slotted')), { force: true });
  await page.waitForFunction(() => [...document.querySelectorAll('.from-plugin')].map((p) => p.textContent).join() === 'slotted 2.0.0');
  expect(await cleanups()).toBe(1);
  expect(await page.$$(`[data-plughost-plugin="${WEB}"]`)).toHaveLength(1);

  await notes.host.disable(WEB);
  await page.waitForFunction(() => document.querySelectorAll('.from-plugin').length === 0);
  expect(await cleanups()).toBe(2);
  expect(await page.$$(`[data-plughost-plugin="${WEB}"]`)).toHaveLength(0);
  expect(await notReloaded()).toBe('no reload');
});

browserTest('the greeting disappears when hello is disabled and returns with the new setting when enabled', async () => {
  await notes.host.disable(HELLO);
  await page.waitForFunction(() => !document.querySelector('.hello-greeting'));
  expect(await slotTexts()).toEqual([]);
  await notes.host.setConfig(HELLO, { greeting: 'Bonjour' });
  await notes.host.enable(HELLO);
  await page.waitForFunction(() => /^Bonjour from the hello plugin/.test(document.querySelector('.hello-greeting')?.textContent ?? ''));
  expect(await notReloaded()).toBe('no reload');
});

browserTest('a bundle that throws is reported and leaves the others working', async () => {
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const broken = await notes.host.install(await webappBundle(work.dir, 'com.example.broken', '1.0.0', 'export default function () { throw new Error("boom"); }'));
  await notes.host.enable(broken.id);
  await page.waitForFunction(() => (window as unknown as { plughost: { plugins(): Array<{ id: string }> } }).plughost.plugins().some((p) => p.id === 'com.example.broken'));
  await eventually(() => errors.join('\n').includes('com.example.broken'), 5_000, 'the error reported');
  expect(await page.$('.hello-greeting')).not.toBeNull();
});
