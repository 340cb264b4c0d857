/**
 * The integrator's side of the contract, as this plugin sees it: the hooks the host fires and
 * their payloads. Change them to your host's; the settings type lives in settings.ts, written
 * from plugin.json by `plughost types`.
 */

/** The payload of the NoteWillBeSaved filter hook. */
export type Note = {
  id: string;
  text: string;
};

/** Hook name → payload type. */
export type Hooks = {
  NoteWillBeSaved: Note;
};
