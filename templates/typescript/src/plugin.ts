/**
 * The plugin: GET /hello answers with the configured greeting, and the NoteWillBeSaved filter
 * tidies a note or rejects one that holds a blocked word. `plughost pack` bundles this file
 * (and everything it imports) into one script the host runs with its own node.
 */
import { definePlugin } from '@plughost/sdk';
import type { Settings } from './settings';
import type { Hooks } from './types';

export default definePlugin<Hooks, {}, Settings>({
  onActivate(ctx) {
    ctx.log.info('activated', { greeting: ctx.config.greeting });
  },

  hooks: {
    NoteWillBeSaved(note, ctx) {
      const text = note.text.trim();
      const blocked = ctx.config.blocked_words.find((word) => text.toLowerCase().includes(word.toLowerCase()));
      if (blocked) return ctx.reject(`a note may not contain ${JSON.stringify(blocked)}`);
      return { ...note, text };
    },
  },

  async serveHTTP(request, ctx) {
    const { pathname } = new URL(request.url);
    if (request.method === 'GET' && pathname === '/hello') {
      return Response.json({ greeting: ctx.config.greeting, user: ctx.userId || null });
    }
    return Response.json({ error: `no route ${request.method} ${pathname}` }, { status: 404 });
  },
});
