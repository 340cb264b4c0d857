/**
 * Compile-time checks of the SDK's typing (ts-jest type-checks this file, so a
 * wrong `@ts-expect-error` or a missing one fails the suite), plus what
 * definePlugin does in a process no host started.
 */
import { definePlugin, reject, type HookOutcome, type PluginContext } from '../../sdk';

type Note = { id: string; text: string };
type Hooks = { NoteWillBeSaved: Note; NoteSaved: Note };
type Api = { getNote(args: { id: string }): Note; countNotes(args: Record<string, never>): number };
type Config = { greeting: string; api_key: string; verbose?: boolean };

const plugin = definePlugin<Hooks, Api, Config>({
  async onActivate(ctx) {
    const greeting: string = ctx.config.greeting;
    // @ts-expect-error settings not declared in Config do not exist
    void ctx.config.nope;
    const note: Note = await ctx.api.invoke('getNote', { id: '1' });
    const count: number = await ctx.api.invoke('countNotes', {});
    // @ts-expect-error invoke's arguments are typed by the Api generic
    await ctx.api.invoke('getNote', { id: 1 });
    // @ts-expect-error only the Api's methods can be invoked
    await ctx.api.invoke('dropTables', {});
    const visits = await ctx.api.kv.get<number>('visits');
    const ok: boolean = await ctx.api.kv.set('visits', (visits ?? 0) + 1, { expected: visits, ttlMs: 1000 });
    // @ts-expect-error an expected value must have the stored value's type
    await ctx.api.kv.set<number>('visits', 1, { expected: 'one' });
    const cfg: Config = await ctx.api.getConfiguration();
    const other: HookOutcome<Note> = await ctx.api.plugins.call('com.other', 'NoteWillBeSaved', note);
    ctx.log.info('typed', { greeting, count, ok, cfg, other });
  },
  hooks: {
    NoteWillBeSaved(note, ctx) {
      if (!note.text.trim()) return ctx.reject('empty');
      return { ...note, text: note.text.trim() };
    },
    NoteSaved(note) {
      // @ts-expect-error payloads are typed by the Hooks generic
      void note.title;
      if (note.id === 'x') return reject('no');
    },
    // @ts-expect-error only the Hooks generic's names are accepted
    NoteWillBeSaved2: undefined as unknown as (note: Note, ctx: PluginContext) => number,
  },
  serveHTTP(request, ctx) {
    const user: string = ctx.userId;
    return Response.json({ path: new URL(request.url).pathname, user });
  },
});

test('definePlugin derives Implemented and does not serve when no host started the process', () => {
  expect(plugin.implemented).toEqual({
    methods: ['OnActivate', 'OnConfigurationChange', 'ServeHTTP', 'ServeHTTPStream', 'RunHookStream', 'RunHookBatchStream'],
    hooks: ['NoteWillBeSaved', 'NoteSaved'],
    eventTopics: [],
  });
});
