/** The hooks and settings this plugin is written against; shared by the plugin and its tests. */

/** The notes service's note, as its NoteWillBeSaved and NoteSaved hooks carry it. */
export interface Note {
  id: string;
  text: string;
  tags?: string[];
}

/** The integrator's hooks: name → payload. */
export type Hooks = {
  NoteWillBeSaved: Note;
  NoteSaved: Note;
};

/** The settings_schema of plugin.json, as TypeScript. */
export type Settings = {
  greeting: string;
  api_key?: string;
};

/** Published on every saved note. */
export const NOTE_COUNTED_TOPIC = 'hello.note_counted';
