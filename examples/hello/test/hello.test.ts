/**
 * The hello plugin under the SDK harness: its TypeScript entry is bundled as
 * `plughost pack` bundles it and run as a real process. Outside this
 * repository the import is `plughost/sdk/testing`.
 */
import * as path from 'node:path';
import { createTestHost, type TestHost } from '../../../sdk/testing';
import { NOTE_COUNTED_TOPIC, type Hooks, type Settings } from '../server/types';

const ENTRY = path.join(__dirname, '..', 'server', 'plugin.ts');

let host: TestHost<Hooks>;
beforeAll(async () => {
  host = await createTestHost<Hooks, {}, Settings>(ENTRY, { config: { greeting: 'Bonjour', api_key: 's3cret' } });
});
afterAll(() => host.close());

test('the manifest is read from plugin.json and its defaults apply', () => {
  expect(host.pluginId).toBe('com.example.hello');
  expect(host.config).toEqual({ greeting: 'Bonjour', api_key: 's3cret' });
  expect(host.implemented.hooks.sort()).toEqual(['NoteSaved', 'NoteWillBeSaved']);
  expect(host.logs).toContainEqual({ level: 'info', message: 'hello plugin activated', fields: { greeting: 'Bonjour' } });
});

test('GET /hello answers with the greeting and counts visits in KV', async () => {
  const first = await host.fetch('/hello');
  expect(first.status).toBe(200);
  expect(await first.json()).toEqual({ greeting: 'Bonjour', visits: 1 });
  const second = await host.fetch('/hello');
  expect(await second.json()).toEqual({ greeting: 'Bonjour', visits: 2 });
  expect(host.kv.get('visits')).toBe(2);
});

test('concurrent visits are all counted (compare-and-set)', async () => {
  const before = host.kv.get<number>('visits') ?? 0;
  await Promise.all(Array.from({ length: 10 }, () => host.fetch('/hello').then((r) => r.json())));
  expect(host.kv.get('visits')).toBe(before + 10);
});

test('a new greeting is used at once', async () => {
  await host.configure({ greeting: 'Hi' });
  expect(await (await host.fetch('/hello')).json()).toMatchObject({ greeting: 'Hi' });
});

test('other routes are 404', async () => {
  expect((await host.fetch('/nope')).status).toBe(404);
  expect((await host.fetch('/hello', { method: 'POST', body: '{}' })).status).toBe(404);
});

test('NoteWillBeSaved tidies the text and tags the note', async () => {
  expect(await host.runHook('NoteWillBeSaved', { id: 'n1', text: '  buy   milk \n' })).toEqual({
    rejected: false,
    payload: { id: 'n1', text: 'buy milk', tags: ['hello'] },
  });
});

test('NoteWillBeSaved rejects an empty note', async () => {
  expect(await host.runHook('NoteWillBeSaved', { id: 'n2', text: '  \t ' })).toEqual({ rejected: true, reason: 'a note needs some text' });
});

test('NoteSaved counts notes and publishes an event for each', async () => {
  await host.notify('NoteSaved', { id: 'a', text: 'x' });
  await host.notify('NoteSaved', { id: 'b', text: 'y' }, { via: 'stream' });
  expect(host.kv.get('notes_saved')).toBe(2);
  expect(host.published).toEqual([
    { topic: NOTE_COUNTED_TOPIC, payload: { noteId: 'a', total: 1 } },
    { topic: NOTE_COUNTED_TOPIC, payload: { noteId: 'b', total: 2 } },
  ]);
});
