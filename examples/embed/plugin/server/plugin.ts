/**
 * The notes helper: NoteWillBeSaved refuses notes with a forbidden word and
 * turns #hashtags into tags; NoteSaved counts notes in KV, reads the saved
 * note back through the host's getNote (its manifest asks for that
 * permission) and publishes what it saw.
 */
import { definePlugin, type KVStore } from 'plughost/sdk';
import { TOPICS, type NoteSeenEvent, type NotesApi, type NotesHooks } from '../../src/types';

type Settings = { forbidden_words: string };

/** Adds one to a KV counter; compare-and-set keeps concurrent saves from losing a count. */
async function increment(kv: KVStore, key: string): Promise<number> {
  for (;;) {
    const current = await kv.get<number>(key);
    const next = (current ?? 0) + 1;
    if (await kv.set(key, next, current === undefined ? { expectAbsent: true } : { expected: current })) return next;
  }
}

function forbiddenWords(config: Settings): string[] {
  return config.forbidden_words
    .split(',')
    .map((w) => w.trim().toLowerCase())
    .filter(Boolean);
}

export default definePlugin<NotesHooks, NotesApi, Settings>({
  hooks: {
    NoteWillBeSaved(note, ctx) {
      const words = note.text.toLowerCase().split(/[^\p{L}\p{N}]+/u);
      const found = forbiddenWords(ctx.config).find((w) => words.includes(w));
      if (found) return ctx.reject(`notes may not mention "${found}"`);
      const hashtags = [...note.text.matchAll(/#([\p{L}\p{N}_-]+)/gu)].map((m) => m[1].toLowerCase());
      return { ...note, text: note.text.trim(), tags: [...new Set([...note.tags, ...hashtags])] };
    },

    async NoteSaved(note, ctx) {
      const total = await increment(ctx.api.kv, 'notes_saved');
      const readBack = await ctx.api.invoke('getNote', { id: note.id });
      const seen: NoteSeenEvent = { noteId: note.id, total, readBack };
      await ctx.api.events.publish(TOPICS.noteSeen, seen);
    },
  },
});
