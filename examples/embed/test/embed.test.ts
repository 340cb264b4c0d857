/**
 * The notes service end to end: both example plugins are packed with
 * `plughost pack`, installed and enabled through the embedded host, and notes
 * are POSTed over a real loopback port. Checks the filter (change and
 * refusal), the notify hook's effects (KV count, getNote read-back), and
 * PERMISSION_DENIED for the plugin without the permission.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createNotesApp, type NotesApp } from '../src/app';
import { TOPICS, type DeniedEvent, type Note, type NoteSeenEvent } from '../src/types';

const ROOT = path.join(__dirname, '..', '..', '..');
const HELPER = 'com.example.notes-helper';
const NOSY = 'com.example.notes-nosy';

interface HostEvent {
  topic: string;
  payload: unknown;
  source: string | null;
}

let work: string;
let notes: NotesApp;
let base: string;
let pids: number[] = [];
const events: HostEvent[] = [];

function pack(folder: string): string {
  const out = path.join(work, `${path.basename(folder)}.tar.gz`);
  execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', folder, '-o', out], { stdio: 'pipe' });
  return out;
}

/** The first host event on `topic` about `noteId`, waiting up to 5 s for it. */
function eventFor<T>(topic: string, noteId: string): Promise<T> {
  const match = (e: HostEvent): boolean => e.topic === topic && (e.payload as { noteId?: string }).noteId === noteId;
  const seen = events.find(match);
  if (seen) return Promise.resolve(seen.payload as T);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      notes.host.off('event', listener);
      reject(new Error(`no ${topic} event for note ${noteId} within 5 s`));
    }, 5_000);
    const listener = (e: HostEvent): void => {
      if (!match(e)) return;
      clearTimeout(timer);
      notes.host.off('event', listener);
      resolve(e.payload as T);
    };
    notes.host.on('event', listener);
  });
}

async function post(text: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-embed-'));
  const bundles = [pack(path.join(__dirname, '..', 'plugin')), pack(path.join(__dirname, '..', 'plugin-nosy'))];
  notes = await createNotesApp({ dataDir: path.join(work, 'data') });
  notes.host.on('event', (e: HostEvent) => events.push(e));
  for (const bundle of bundles) {
    const { id } = await notes.host.install(bundle);
    await notes.host.enable(id);
  }
  pids = (await notes.host.list()).map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  await notes.app.listen({ port: 0, host: '127.0.0.1' });
  const address = notes.app.server.address();
  if (!address || typeof address === 'string') throw new Error(`unexpected listen address ${String(address)}`);
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await notes?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('both plugins run with the hooks they implement', async () => {
  const list = await notes.host.list();
  expect(list.map((p) => [p.id, p.state, p.hooks.sort(), p.permissions])).toEqual([
    [HELPER, 'running', ['NoteSaved', 'NoteWillBeSaved'], ['getNote']],
    [NOSY, 'running', ['NoteSaved'], []],
  ]);
  expect(pids).toHaveLength(2);
});

test('the filter changes the note before it is saved', async () => {
  const { status, body } = await post('  Buy oat milk #groceries #Errands  ');
  expect(status).toBe(201);
  expect(body).toMatchObject({ text: 'Buy oat milk #groceries #Errands', tags: ['groceries', 'errands'] });
  const saved = (await (await fetch(`${base}/notes/${String(body.id)}`)).json()) as Note;
  expect(saved).toEqual(body);
  const all = (await (await fetch(`${base}/notes`)).json()) as { notes: Note[] };
  expect(all.notes.map((n) => n.id)).toEqual([body.id]);
});

test('a note the filter refuses is answered 422 with the reason and not saved', async () => {
  const { status, body } = await post('You won the LOTTERY!');
  expect(status).toBe(422);
  expect(body).toEqual({ error: { code: 'NOTE_REJECTED', message: 'notes may not mention "lottery"', details: { by: HELPER } } });
  const all = (await (await fetch(`${base}/notes`)).json()) as { notes: Note[] };
  expect(all.notes).toHaveLength(1);
});

test('NoteSaved counts notes in the plugin KV and reads each back through getNote', async () => {
  const first = await post('first');
  const second = await post('second #two');
  const seenFirst = await eventFor<NoteSeenEvent>(TOPICS.noteSeen, String(first.body.id));
  const seenSecond = await eventFor<NoteSeenEvent>(TOPICS.noteSeen, String(second.body.id));
  expect(seenFirst.readBack).toEqual(first.body);
  expect(seenSecond.readBack).toEqual(second.body);
  // Three notes were saved so far (the refused one never reached NoteSaved).
  expect([seenFirst.total, seenSecond.total].sort()).toEqual([2, 3]);
  expect(events.find((e) => e.topic === TOPICS.noteSeen)?.source).toBe(HELPER);
});

test('the plugin without the permission gets PERMISSION_DENIED from getNote', async () => {
  const { body } = await post('private thoughts');
  const denied = await eventFor<DeniedEvent>(TOPICS.denied, String(body.id));
  expect(denied.code).toBe('PERMISSION_DENIED');
  expect(denied.message).toContain(`plugin "${NOSY}" may not invoke "getNote"`);
  expect(notes.host.logs(NOSY).map((r) => r.message)).toContain('getNote refused');
  // The helper, which has the permission, read the same note back.
  expect((await eventFor<NoteSeenEvent>(TOPICS.noteSeen, String(body.id))).readBack).toEqual(body);
});

test('a new configuration changes what the filter refuses', async () => {
  await notes.host.setConfig(HELPER, { forbidden_words: 'homework' });
  expect((await post('You won the lottery')).status).toBe(201);
  expect(await post('homework due')).toMatchObject({ status: 422, body: { error: { message: 'notes may not mention "homework"' } } });
});

test('bad input and unknown notes are answered with JSON errors', async () => {
  expect(await post('')).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
  expect(await post(42)).toMatchObject({ status: 400 });
  const missing = await fetch(`${base}/notes/nope`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({ error: { code: 'NOTE_NOT_FOUND', message: 'no note with id "nope"' } });
});

test('close() leaves no plugin process running', async () => {
  await notes.close();
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
});
