/**
 * A plugin whose manifest does not list `getNote` under `permissions`: the
 * host refuses its Invoke with PERMISSION_DENIED, which it logs and publishes.
 */
import { definePlugin, PluginApiError } from 'plughost/sdk';
import { TOPICS, type DeniedEvent, type NotesApi, type NotesHooks } from '../../src/types';

export default definePlugin<Pick<NotesHooks, 'NoteSaved'>, NotesApi>({
  hooks: {
    async NoteSaved(note, ctx) {
      try {
        await ctx.api.invoke('getNote', { id: note.id });
      } catch (err) {
        if (!(err instanceof PluginApiError)) throw err;
        ctx.log.warn('getNote refused', { code: err.code, note_id: note.id });
        const denied: DeniedEvent = { noteId: note.id, code: err.code, message: err.message };
        await ctx.api.events.publish(TOPICS.denied, denied);
      }
    },
  },
});
