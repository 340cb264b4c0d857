/**
 * The REST contract as schemas: Fastify validates requests with them, serializes
 * answers with them, and @fastify/swagger builds the OpenAPI document from them,
 * so the document cannot drift from what the routes do. Response schemas are
 * also serializers (fast-json-stringify drops what they do not name), so every
 * object whose keys are open (configuration, manifest, error details, log
 * fields) says so with additionalProperties.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { ID_LENGTH, ID_PATTERN } from '../manifest';
import { LOG_LEVELS } from '../protocol/log-lines';

const Open = (description: string) => Type.Object({}, { additionalProperties: true, description });

/** One string of a fixed set, as a plain `enum` in the document. */
function StringEnum<T extends string>(values: readonly T[], description?: string) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], description });
}

export const PluginIdSchema = Type.String({ minLength: ID_LENGTH.min, maxLength: ID_LENGTH.max, pattern: ID_PATTERN.source });

/**
 * The id in a URL. Looser than the manifest's rule on purpose: an id that no
 * plugin could have is answered like any unknown id (404 PLUGIN_NOT_FOUND).
 */
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: ID_LENGTH.max, description: 'Plugin id' }) });

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable PLUGHOST_ERR_... code' }),
      message: Type.String(),
      details: Open('What the message is about, by name; keys depend on the code'),
    }),
  },
  { description: 'Every error answer' },
);

const PluginStateSchema = StringEnum(['not_running', 'starting', 'running', 'failed_to_start', 'failed_to_stay_running', 'stopping']);

export const PluginSchema = Type.Object({
  id: PluginIdSchema,
  name: Type.String(),
  version: Type.String(),
  description: Type.Optional(Type.String()),
  enabled: Type.Boolean(),
  state: PluginStateSchema,
  lastError: Type.Union([Type.String(), Type.Null()]),
  permissions: Type.Array(Type.String()),
  hooks: Type.Array(Type.String(), { description: 'Hooks the running plugin implements' }),
  hasServer: Type.Boolean(),
  hasWebapp: Type.Boolean(),
  bundleSha256: Type.String(),
  installedAt: Type.Integer({ description: 'Milliseconds since the epoch' }),
  updatedAt: Type.Integer({ description: 'Milliseconds since the epoch' }),
  restarts: Type.Integer(),
  pid: Type.Optional(Type.Integer({ description: 'The plugin process id while it runs' })),
  manifest: Open('The plugin manifest as installed'),
  generation: Type.Integer({ description: 'The desired generation: bumped by every install, upgrade, enable, disable and configuration change' }),
});

export const InstalledSchema = Type.Composite([
  PluginSchema,
  Type.Object({ warnings: Type.Optional(Type.Array(Type.String(), { description: 'What the install changed that the caller should know' })) }),
]);

export const PluginNodeStateSchema = Type.Object({
  nodeId: Type.String(),
  state: PluginStateSchema,
  lastError: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Integer({ description: 'When that node last reported, milliseconds since the epoch (the database clock)' }),
  generation: Type.Integer({ description: "The desired generation that node's state answers; behind the plugin's while it converges" }),
  live: Type.Boolean({ description: 'Whether its heartbeat is recent (within 3 heartbeat intervals of the answering node)' }),
}, { description: 'What one node observes of the plugin' });

/** One plugin with every node's view; `state` and `lastError` are the answering node's. */
export const PluginDetailSchema = Type.Composite([
  PluginSchema,
  Type.Object({
    nodes: Type.Array(PluginNodeStateSchema, { description: 'Every node that has run or seen the plugin, by node id' }),
    summary: Type.Object({
      nodes: Type.Integer({ description: 'Live nodes that report the plugin' }),
      running: Type.Integer(),
      converged: Type.Integer({ description: 'Live nodes whose state answers the current generation' }),
      state: Type.Union([PluginStateSchema, Type.Literal('mixed')], { description: "The state every live node reports, or 'mixed'" }),
    }, { description: 'The plugin across the live nodes' }),
  }),
]);

export const ClusterSchema = Type.Object({
  nodeId: Type.String({ description: 'The node that answered' }),
  nodes: Type.Array(Type.Object({
    nodeId: Type.String(),
    version: Type.String({ description: "The node's plughost version" }),
    startedAt: Type.Integer({ description: 'When the node started, milliseconds since the epoch (its own clock)' }),
    heartbeatAgeMs: Type.Integer({ description: 'Time since its last heartbeat, by the database clock' }),
  }), { description: 'Every node that has heartbeated into this database, by node id' }),
});

export const ConfigSchema = Open('Setting key to value; secrets masked');

export const LogRecordSchema = Type.Object({
  pluginId: Type.String(),
  level: StringEnum(LOG_LEVELS),
  message: Type.String(),
  time: Type.Number({ description: 'Milliseconds since the epoch' }),
  fields: Open('Other keys of an hclog JSON line'),
  source: StringEnum(['stderr', 'stdout', 'stdio:stdout', 'stdio:stderr', 'api', 'host']),
  truncated: Type.Optional(Type.Boolean()),
});

export const LogQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'At most this many records, the most recent' })),
  level: Type.Optional(StringEnum(LOG_LEVELS, 'Only records of this level and more severe')),
});

const HookName = Type.String({ minLength: 1, maxLength: 200, description: 'Hook name, as the plugin lists it in Implemented' });
export const HookParams = Type.Object({ hook: HookName });
export const PluginHookParams = Type.Object({ id: IdParams.properties.id, hook: HookName });

const AnyJson = (description: string) => Type.Unknown({ description });

/** What a hook call carries besides its payload; plugins see it as ctx.call (TypeScript SDK) or RunHook's context. */
export const HookContextSchema = Type.Object({
  userId: Type.Optional(Type.String({ maxLength: 256, description: 'The user the call is made for' })),
  requestId: Type.Optional(Type.String({ maxLength: 256, description: 'For tracing the call through logs' })),
  values: Type.Optional(Type.Object({}, { additionalProperties: Type.String(), maxProperties: 64, description: 'Free key to text pairs' })),
}, { additionalProperties: false });

export const HookCallSchema = Type.Object({
  payload: AnyJson('The hook payload, any JSON value'),
  context: Type.Optional(HookContextSchema),
}, { additionalProperties: false });

export const HookResultSchema = Type.Object({
  payload: AnyJson("The plugin's payload; the one sent when the plugin returned none"),
  rejected: Type.Boolean(),
  reason: Type.String({ description: 'Why it rejected; empty otherwise' }),
});

export const NotifyResultSchema = Type.Object({
  outcomes: Type.Array(Type.Object({
    pluginId: Type.String(),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String()),
    durationMs: Type.Number(),
  }), { description: 'One per running plugin that implements the hook; empty when none does' }),
});

export const FilterResultSchema = Type.Object({
  rejected: Type.Boolean(),
  payload: AnyJson('The payload after the last plugin that ran'),
  reason: Type.Optional(Type.String({ description: 'Why it was rejected' })),
  by: Type.Optional(Type.String({ description: 'The plugin that rejected it' })),
  steps: Type.Array(Type.Object({
    pluginId: Type.String(),
    outcome: StringEnum(['unchanged', 'changed', 'rejected', 'failed']),
    error: Type.Optional(Type.String()),
    durationMs: Type.Number(),
  }), { description: 'The chain in the order it ran (ascending plugin id)' }),
});

export const PublishSchema = Type.Object({
  topic: Type.String({ minLength: 1, maxLength: 200, description: 'Any topic, host.* included: the operator publishes as the host' }),
  payload: AnyJson('The event payload, any JSON value'),
}, { additionalProperties: false });

export const PublishedSchema = Type.Object({
  topic: Type.String(),
  nodeId: Type.String({ description: 'The node that published it' }),
});

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String({ description: "The host's version" }),
  plugins: Type.Object({}, { additionalProperties: Type.Integer(), description: 'How many plugins are in each state' }),
});

export const WebappBundleSchema = Type.Object({
  id: PluginIdSchema,
  version: Type.String(),
  bundleUrl: Type.String({ description: 'Absolute path of the bundle on this server, ending in <content hash>.js' }),
});

export const TicketSchema = Type.Object({
  ticket: Type.String({ description: 'Single use, for ?ticket= on the event stream' }),
  expiresAt: Type.Integer({ description: 'Milliseconds since the epoch' }),
});

/** Any 4xx or 5xx answer has the error shape. */
export const ERROR_RESPONSES = { '4xx': ErrorSchema, '5xx': ErrorSchema } as const;

/**
 * A success schema with the error shape beside it, for a route's `response`.
 * Only for routes under plughostRoutes' error handler: an error schema beside
 * another handler's error shape would turn its errors into 500s.
 */
export function responses<S extends Record<string, TSchema>>(success: S): S & typeof ERROR_RESPONSES {
  return { ...success, ...ERROR_RESPONSES };
}

/** A success that is not JSON (event streams, scripts, files, metrics); Fastify never serializes these bodies. */
export function nonJson(status: number, description: string, contentType: string): Record<number, TSchema> {
  return { [status]: Type.Unsafe<string>({ description, content: { [contentType]: { schema: { type: 'string' } } } }) };
}
