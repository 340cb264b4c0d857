/**
 * The hello plugin: GET /hello answers with the configured greeting and a
 * visit count, NoteWillBeSaved tidies a note (or refuses an empty one), and
 * NoteSaved counts notes and publishes an event.
 */
import { definePlugin, type KVStore } from 'plughost/sdk';
import { NOTE_COUNTED_TOPIC, type Hooks, type Settings } from './types';

/** Adds one to a counter. Compare-and-set makes concurrent requests count every visit. */
async function increment(kv: KVStore, key: string): Promise<number> {
  for (;;) {
    const current = await kv.get<number>(key);
    const next = (current ?? 0) + 1;
    const written = await kv.set(key, next, current === undefined ? { expectAbsent: true } : { expected: current });
    if (written) return next;
  }
}

export default definePlugin<Hooks, {}, Settings>({
  onActivate(ctx) {
    ctx.log.info('hello plugin activated', { greeting: ctx.config.greeting });
  },

  hooks: {
    NoteWillBeSaved(note, ctx) {
      const text = note.text.trim().replace(/\s+/g, ' ');
      if (!text) return ctx.reject('a note needs some text');
      const tags = note.tags?.includes('hello') ? note.tags : [...(note.tags ?? []), 'hello'];
      return { ...note, text, tags };
    },
    async NoteSaved(note, ctx) {
      const total = await increment(ctx.api.kv, 'notes_saved');
      await ctx.api.events.publish(NOTE_COUNTED_TOPIC, { noteId: note.id, total });
    },
  },

  async serveHTTP(request, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/hello' && request.method === 'GET') {
      const visits = await increment(ctx.api.kv, 'visits');
      return Response.json({ greeting: ctx.config.greeting, visits });
    }
    return Response.json({ error: `no route ${request.method} ${pathname}` }, { status: 404 });
  },
});
