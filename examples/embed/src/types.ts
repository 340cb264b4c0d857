/**
 * The notes service's contract with its plugins: the hooks it runs and the
 * API methods it offers. Plugins import these types too (they are erased when
 * a plugin is bundled), so both sides agree on the payloads.
 */

/** A note as the service stores it and as both hooks carry it. */
export interface Note {
  id: string;
  text: string;
  tags: string[];
  createdAt: string;
}

/** Hook name → payload. NoteWillBeSaved is run as a filter chain, NoteSaved as a notify. */
export type NotesHooks = {
  NoteWillBeSaved: Note;
  NoteSaved: Note;
};

/**
 * API methods plugins may call through `ctx.api.invoke`, each only when the
 * plugin's manifest lists the method's name under `permissions`.
 */
export type NotesApi = {
  /** The saved note, or null when there is none with that id. */
  getNote(args: { id: string }): Note | null;
};

/** Topics the example plugins publish on; the service and its tests listen to them. */
export const TOPICS = {
  noteSeen: 'notes-helper.note_seen',
  denied: 'notes-nosy.denied',
} as const;

/** What the helper plugin publishes after each saved note. */
export interface NoteSeenEvent {
  noteId: string;
  /** Notes this plugin has seen saved, counted in its KV. */
  total: number;
  /** The note as the plugin read it back through `getNote`. */
  readBack: Note | null;
}

/** What the plugin without the permission publishes when `getNote` is refused. */
export interface DeniedEvent {
  noteId: string;
  code: string;
  message: string;
}
