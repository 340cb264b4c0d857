/**
 * The admin console in Chromium against a real server: log in, upload hello
 * with progress, enable it, edit a setting and see its route answer with it,
 * a generated settings form for every type (secret not shown back, validation
 * error beside its field), a hostile bundle's refusal in words, live state
 * changes, logs, remove. Screenshots go to .cache/test-artifacts/web/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { entry, gz, plugin, tar } from '../fixtures/bundles/hostile';
import { AUTH, TOKEN, testServer, type TestServer } from '../server/helpers';
import { ARTIFACTS, launchChromium, packHello, slotBundleSource, webappBundle } from './helpers';

const HELLO = 'com.example.hello';
const BOARD = 'com.example.board';
const SCHEMA = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'web', 'all-settings.json'), 'utf8'));

let browser: Browser | null = null;
let page: Page;
let server: TestServer;

beforeAll(async () => {
  browser = await launchChromium();
  if (!browser) return;
  server = await testServer();
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

function browserTest(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if (!browser) return;
    await fn();
  });
}

const card = (id: string) => page.locator(`article[data-plugin-id="${id}"]`);
const stateOf = (id: string) => card(id).locator('[data-field="state"]').textContent();
const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const api = (p: string, method = 'GET') => fetch(`${server.url}/api/v1${p}`, { method, headers: AUTH });

async function uploadFile(file: string, force = false): Promise<string> {
  await page.setInputFiles('#bundle-file', file);
  if (force) await page.check('#upload-force');
  await page.click('#upload-form button[type=submit]');
  await page.waitForFunction(() => !(document.querySelector('#upload-form button') as HTMLButtonElement).disabled);
  return (await page.textContent('#upload-status')) ?? '';
}

browserTest('logs in with the token, refuses a wrong one, keeps it out of the URL', async () => {
  await page.goto(`${server.url}/admin`);
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button');
  await page.waitForSelector('#login-error:has-text("The token was refused: the admin token is not valid")');
  await shot('console-login-refused');
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  await page.waitForSelector('#app-view:not([hidden])');
  await page.waitForSelector('#live:has-text("live")');
  expect(await page.evaluate(() => sessionStorage.getItem('plughost.adminToken'))).toBe(TOKEN);
  expect(page.url()).toBe(`${server.url}/admin`);
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'no reload'));
});

browserTest('uploads hello with a progress bar, enables it, and a saved setting reaches its route', async () => {
  // A slow uplink (about 1.5 s for hello's bundle) so the bar is seen part-way.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 100 * 1024 });
  await page.evaluate(() => {
    const seen: number[] = [];
    (window as unknown as { progressSeen: number[] }).progressSeen = seen;
    const bar = document.querySelector('#upload-progress') as HTMLProgressElement;
    new MutationObserver(() => seen.push(bar.value)).observe(bar, { attributes: true });
    const tick = () => (seen.push(bar.value), bar.value < 100 && requestAnimationFrame(tick));
    requestAnimationFrame(tick);
  });
  const status = await uploadFile(packHello(server.work));
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
  expect(status).toBe('Installed Hello 0.1.0 (com.example.hello). Enable it below.');
  expect(await page.getAttribute('#upload-progress', 'hidden')).toBeNull();
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
  expect(seen.some((v) => v > 0 && v < 100)).toBe(true);
  expect(seen[seen.length - 1]).toBe(100);
  expect(await stateOf(HELLO)).toBe('not running');

  await card(HELLO).locator('[data-action="enable"]').click();
  await card(HELLO).locator('[data-field="state"]:has-text("running")').waitFor();
  expect(await card(HELLO).locator('[data-action="enable"]').isHidden()).toBe(true);

  await card(HELLO).locator('details.settings summary').click();
  const greeting = card(HELLO).locator('input[name="greeting"]');
  await expect(greeting.inputValue()).resolves.toBe('Hello');
  await greeting.fill('Howdy');
  await card(HELLO).locator('button:has-text("Save settings")').click();
  await card(HELLO).locator('.settings-form .status:has-text("Saved.")').waitFor();
  const answer = (await (await fetch(`${server.url}/plugins/${HELLO}/hello`)).json()) as { greeting: string };
  expect(answer.greeting).toBe('Howdy');

  await card(HELLO).locator('details.logs summary').click();
  await card(HELLO).locator('.log-lines:has-text("hello plugin activated")').waitFor();
  await shot('console-hello-running');
});

browserTest('a secret is never shown back, not even masked', async () => {
  const secret = card(HELLO).locator('input[name="api_key"]');
  expect(await secret.getAttribute('type')).toBe('password');
  await secret.fill('s3cr3t-value');
  await card(HELLO).locator('button:has-text("Save settings")').click();
  await card(HELLO).locator('.settings-form .status:has-text("Saved.")').waitFor();
  expect(await secret.inputValue()).toBe('');
  expect(await secret.getAttribute('placeholder')).toBe('stored; type to replace');
  // Saving again with the field blank keeps the stored secret.
  await card(HELLO).locator('button:has-text("Save settings")').click();
  await card(HELLO).locator('.settings-form .status:has-text("Saved.")').waitFor();
  const stored = await server.host.getConfig(HELLO, { reveal: true });
  expect(stored.api_key).toBe('s3cr3t-value');
  const html = await page.content();
  expect(html).not.toContain('s3cr3t-value');
  expect(html).not.toContain('********');
});

browserTest('disable from the page, then an enable elsewhere shows up live', async () => {
  await card(HELLO).locator('[data-action="disable"]').click();
  await card(HELLO).locator('[data-field="state"]:has-text("not running")').waitFor();
  expect((await api(`/plugins/${HELLO}/enable`, 'POST')).status).toBe(200);
  await card(HELLO).locator('[data-field="state"]:text-is("running")').waitFor();
  await card(HELLO).locator('[data-action="disable"]:visible').waitFor();
  expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('no reload');
});

browserTest('a hostile bundle is refused, and the server says why in words', async () => {
  const file = path.join(server.work, 'hostile.tar.gz');
  fs.writeFileSync(file, gz(tar(...plugin(), entry('../evil.sh', '#!/bin/sh\n'))));
  const status = await uploadFile(file);
  expect(status).toMatch(/^Upload refused \(HTTP 400\): bundle entry "\.\.\/evil\.sh" is refused: /);
  expect(await page.getAttribute('#upload-status', 'class')).toContain('error');
  await shot('console-hostile-refused');
});

browserTest('a settings form with every type, and a validation error beside its field', async () => {
  const bundle = await webappBundle(server.work, BOARD, '1.0.0', slotBundleSource('x', 'y'), { settings_schema: SCHEMA });
  await uploadFile(bundle);
  const board = card(BOARD);
  await board.locator('details.settings summary').click();
  const form = board.locator('.settings-form');
  expect(await form.locator('input[name="title"]').getAttribute('type')).toBe('text');
  expect(await form.locator('textarea[name="intro"]').inputValue()).toBe('Line one\nLine two');
  expect(await form.locator('input[name="limit"]').getAttribute('type')).toBe('number');
  expect(await form.locator('input[name="limit"]').inputValue()).toBe('10');
  expect(await form.locator('input[name="public"]').getAttribute('type')).toBe('checkbox');
  expect(await form.locator('select[name="color"]').inputValue()).toBe('blue');
  expect(await form.locator('input[type="radio"]').count()).toBe(3);
  expect(await form.locator('input[type="radio"][value="m"]').isChecked()).toBe(true);
  expect(await form.locator('input[name="token"]').getAttribute('type')).toBe('password');
  expect(await form.locator('textarea[name="tags"]').inputValue()).toBe('news\nsport');
  expect(await form.locator('input[type="checkbox"][name="days"]').count()).toBe(3);
  expect(await form.locator('input[name="days"][value="mon"]').isChecked()).toBe(true);
  expect(await form.locator('[data-key="days"] legend').textContent()).toBe('Days');

  await form.locator('input[name="title"]').fill('');
  await form.locator('input[name="limit"]').fill('25');
  await form.locator('button[type=submit]').click();
  const titleError = form.locator('[data-key="title"] .field-error');
  await titleError.waitFor();
  expect(await titleError.textContent()).toBe('required; expected a string');
  expect(await form.locator('input[name="title"]').getAttribute('aria-invalid')).toBe('true');
  expect(await form.locator('[data-key="limit"] .field-error').textContent()).toBe('');
  await shot('console-settings-error');

  await form.locator('input[name="title"]').fill('Notice board');
  await form.locator('input[name="public"]').check();
  await form.locator('select[name="color"]').selectOption('green');
  await form.locator('input[type="radio"][value="l"]').check();
  await form.locator('textarea[name="tags"]').fill('news\n\n  weather, local  \n');
  await form.locator('input[name="days"][value="mon"]').uncheck();
  await form.locator('input[name="days"][value="wed"]').check();
  await form.locator('input[name="days"][value="tue"]').check();
  await form.locator('button[type=submit]').click();
  await form.locator('.status:has-text("Saved.")').waitFor();
  expect(await titleError.textContent()).toBe('');
  expect(await server.host.getConfig(BOARD)).toEqual({ title: 'Notice board', intro: 'Line one\nLine two', limit: 25, public: true, color: 'green', size: 'l', tags: ['news', '  weather, local  '], days: ['tue', 'wed'] });
  expect(await form.locator('textarea[name="tags"]').inputValue()).toBe('news\n  weather, local  ');
});

browserTest('removing takes a second click, and the card goes', async () => {
  const remove = card(BOARD).locator('[data-action="remove"]');
  await remove.click();
  expect(await remove.textContent()).toBe('Click again to remove');
  await remove.click();
  await card(BOARD).waitFor({ state: 'detached' });
  expect((await api(`/plugins/${BOARD}`)).status).toBe(404);
  await shot('console-after-remove');
});

browserTest('logging out forgets the token', async () => {
  await page.click('#logout');
  await page.waitForSelector('#login-view:not([hidden])');
  expect(await page.evaluate(() => sessionStorage.getItem('plughost.adminToken'))).toBeNull();
});
