/**
 * The notes service: an integrator's own Fastify app that embeds a PluginHost.
 * Saving a note runs the NoteWillBeSaved filter chain (each plugin may change
 * the note or refuse it), keeps the note in memory, then tells plugins through
 * the NoteSaved notify hook. Plugins may read notes back with the getNote API
 * method when their manifest lists it under `permissions`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino from 'pino';
// Outside this repository this is `import { PluginHost } from 'plughost'`.
import { PluginHost } from '../../../src/runtime';
import { plughostRoutes, plughostServerOptions } from '../../../src/server';
import type { Note, NotesApi, NotesHooks } from './types';

export interface NotesAppOptions {
  /** Where the host keeps installed bundles and its SQLite file. */
  dataDir: string;
  /** Shared by Fastify and the host; silent when omitted. */
  logger?: pino.Logger;
  /** For plughost's admin API and console under /plughost; default a random one, so they stay closed. */
  adminToken?: string;
}

export interface NotesApp {
  app: FastifyInstance;
  host: PluginHost<NotesHooks, NotesApi>;
  /** Stops taking requests, waits for NoteSaved deliveries in flight, then stops every plugin. */
  close(): Promise<void>;
}

/** A note's text limit; a filter plugin's changed text is held to it too. */
const MAX_TEXT = 10_000;

/**
 * Hooks run while an HTTP request waits, so a plugin gets one second, not the
 * runtime's default five. A plugin that fails or passes it is skipped (the
 * filter is fail-open); `hooks: { NoteWillBeSaved: { failClosed: true } }`
 * would refuse the note instead.
 */
const HOOK_TIMEOUT_MS = 1_000;

type ErrorBody = { error: { code: string; message: string; details?: Record<string, unknown> } };

function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: details ? { code, message, details } : { code, message } };
}

export async function createNotesApp(options: NotesAppOptions): Promise<NotesApp> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const notes = new Map<string, Note>();

  const host = await PluginHost.open<NotesHooks, NotesApi>({
    // Absolute: the runtime starts each plugin in its own folder, so a relative data dir would be resolved twice.
    dataDir: path.resolve(options.dataDir),
    logger: logger.child({ component: 'plughost' }),
    defaults: { hookTimeoutMs: HOOK_TIMEOUT_MS },
    api: {
      // Arguments come from a plugin process: check them rather than trust the type.
      getNote: (args) => {
        const id = (args as { id?: unknown } | null)?.id;
        return typeof id === 'string' ? (notes.get(id) ?? null) : null;
      },
    },
  });

  const app: FastifyInstance = Fastify({
    // Timeouts, a connection cap, room for 190-character plugin ids, and plughost's error body for HTTP errors.
    ...plughostServerOptions(),
    // Fastify's instance type is written against its base logger interface, which a pino logger implements.
    loggerInstance: logger as FastifyBaseLogger,
    // A body is taken as sent: `{ "text": 42 }` is a bad request, not the note "42".
    ajv: { customOptions: { coerceTypes: false } },
  });
  const deliveries = new Set<Promise<void>>();

  /** NoteSaved does not hold up the response; close() waits for the deliveries still running. */
  function deliverSaved(note: Note): void {
    const delivery: Promise<void> = host
      .notify('NoteSaved', note)
      .then(
        (outcomes) => {
          for (const o of outcomes) if (!o.ok) logger.warn({ plugin_id: o.pluginId, note_id: note.id, err: o.error }, 'NoteSaved failed');
        },
        (err: unknown) => logger.error({ note_id: note.id, err: String(err) }, 'NoteSaved was not delivered'),
      )
      .finally(() => deliveries.delete(delivery));
    deliveries.add(delivery);
  }

  app.setErrorHandler((err: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
    if (err.validation) return reply.code(400).send(errorBody('BAD_REQUEST', err.message));
    request.log.error({ err: err.message }, 'request failed');
    return reply.code(err.statusCode ?? 500).send(errorBody('INTERNAL', 'the notes service failed; see its log'));
  });

  app.post<{ Body: { text: string } }>(
    '/notes',
    {
      schema: {
        body: {
          type: 'object',
          required: ['text'],
          additionalProperties: false,
          properties: { text: { type: 'string', minLength: 1, maxLength: MAX_TEXT } },
        },
      },
    },
    async (request, reply) => {
      const draft: Note = { id: randomUUID(), text: request.body.text, tags: [], createdAt: new Date().toISOString() };
      const result = await host.filter('NoteWillBeSaved', draft, { requestId: request.id });
      if (result.rejected) {
        return reply.code(422).send(errorBody('NOTE_REJECTED', result.reason, { by: result.by }));
      }
      const note = acceptFiltered(draft, result.payload);
      notes.set(note.id, note);
      deliverSaved(note);
      return reply.code(201).send(note);
    },
  );

  app.get<{ Params: { id: string } }>('/notes/:id', async (request, reply) => {
    const note = notes.get(request.params.id);
    if (!note) return reply.code(404).send(errorBody('NOTE_NOT_FOUND', `no note with id ${JSON.stringify(request.params.id)}`));
    return note;
  });

  app.get('/notes', async () => ({ notes: [...notes.values()] }));

  // plughost's routes under /plughost: the plugins' client bundles and HTTP routes (the demo page needs both), the admin API and console.
  await app.register(plughostRoutes, { host, adminToken: options.adminToken ?? randomBytes(32).toString('base64url'), prefix: '/plughost' });
  const demoPage = fs.readFileSync(path.join(__dirname, '..', 'public', 'index.html'));
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(demoPage));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await app.close();
      await Promise.all(deliveries);
      await host.close();
    })();
    return closing;
  };

  return { app, host, close };
}

/**
 * What the filter chain returned is plugin output: keep its text and tags when
 * they have the right shape, and always keep the service's own id and time.
 */
function acceptFiltered(draft: Note, filtered: unknown): Note {
  const candidate = (typeof filtered === 'object' && filtered !== null ? filtered : {}) as Partial<Record<keyof Note, unknown>>;
  const text = typeof candidate.text === 'string' && candidate.text.length > 0 && candidate.text.length <= MAX_TEXT ? candidate.text : draft.text;
  const tags = Array.isArray(candidate.tags) && candidate.tags.every((t) => typeof t === 'string') ? (candidate.tags as string[]) : draft.tags;
  return { ...draft, text, tags };
}
