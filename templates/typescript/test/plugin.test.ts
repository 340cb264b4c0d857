/**
 * The plugin as a real child process over real gRPC, against the SDK's in-memory host:
 * createTestHost bundles src/plugin.ts exactly as `plughost pack` does. Run by `npm test`
 * (compiled into .build/ first, then `node --test`).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { createTestHost, type TestHost } from '@plughost/sdk/testing';
import type { Settings } from '../src/settings';
import type { Hooks } from '../src/types';

// This file runs as .build/test/plugin.test.js: the entry is two folders up.
const ENTRY = path.join(__dirname, '..', '..', 'src', 'plugin.ts');

let host: TestHost<Hooks>;

before(async () => {
  host = await createTestHost<Hooks, {}, Settings>(ENTRY, { config: { greeting: 'Bonjour' } });
});

after(() => host.close());

test('GET /hello answers with the configured greeting and the user', async () => {
  const res = await host.fetch('/hello', { userId: 'u1' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { greeting: 'Bonjour', user: 'u1' });
});

test('other routes are 404', async () => {
  assert.equal((await host.fetch('/nope')).status, 404);
});

test('NoteWillBeSaved trims the text', async () => {
  assert.deepEqual(await host.runHook('NoteWillBeSaved', { id: 'n1', text: '  buy milk \n' }), {
    rejected: false,
    payload: { id: 'n1', text: 'buy milk' },
  });
});

test('NoteWillBeSaved rejects a blocked word: the default one, then a configured one', async () => {
  assert.deepEqual(await host.runHook('NoteWillBeSaved', { id: 'n2', text: 'SPAM for sale' }), {
    rejected: true,
    reason: 'a note may not contain "spam"',
  });
  await host.configure({ blocked_words: ['milk'] });
  assert.equal((await host.runHook('NoteWillBeSaved', { id: 'n3', text: 'buy milk' })).rejected, true);
  assert.equal((await host.runHook('NoteWillBeSaved', { id: 'n4', text: 'spam' })).rejected, false);
});

test('activation is logged through the API', () => {
  assert.deepEqual(host.logs[0], { level: 'info', message: 'activated', fields: { greeting: 'Bonjour' } });
});
