/** The OpenAPI 3.1 description of the admin API, served at /api/v1/openapi.json. */

const error = { $ref: '#/components/schemas/Error' };
const plugin = { $ref: '#/components/schemas/Plugin' };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const errors = {
  '400': { description: 'Bad input', content: { 'application/json': { schema: error } } },
  '401': { description: 'Missing admin token', content: { 'application/json': { schema: error } } },
  '403': { description: 'Wrong admin token', content: { 'application/json': { schema: error } } },
  '404': { description: 'Unknown plugin', content: { 'application/json': { schema: error } } },
  '429': { description: 'Too many failed authentications from this address; see Retry-After', content: { 'application/json': { schema: error } } },
};
const json = (schema: object) => ({ content: { 'application/json': { schema } } });

export function openApiDocument(version: string, prefix: string): Record<string, unknown> {
  const p = (s: string) => `${prefix}${s}`;
  return {
    openapi: '3.1.0',
    info: { title: 'plughost admin API', version },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } } },
        },
        Plugin: {
          type: 'object',
          properties: {
            id: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' }, enabled: { type: 'boolean' },
            state: { enum: ['not_running', 'starting', 'running', 'failed_to_start', 'failed_to_stay_running', 'stopping'] },
            lastError: { type: ['string', 'null'] }, permissions: { type: 'array', items: { type: 'string' } },
            hooks: { type: 'array', items: { type: 'string' } }, restarts: { type: 'integer' }, manifest: { type: 'object' },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      [p('/plugins')]: {
        get: { summary: 'List plugins', responses: { '200': { description: 'Plugins', ...json({ type: 'array', items: plugin }) }, ...errors } },
        post: {
          summary: 'Install a bundle (multipart field "plugin", optional "signature"; or a raw application/gzip body)',
          parameters: [{ name: 'force', in: 'query', schema: { type: 'boolean' }, description: 'Replace an installed plugin with the same id' }],
          requestBody: {
            content: {
              'multipart/form-data': { schema: { type: 'object', properties: { plugin: { type: 'string', format: 'binary' }, signature: { type: 'string', format: 'binary' } } } },
              'application/gzip': { schema: { type: 'string', format: 'binary' } },
            },
          },
          responses: { '201': { description: 'Installed', ...json(plugin) }, '409': { description: 'Already installed or busy' }, '413': { description: 'Too large' }, ...errors },
        },
      },
      [p('/plugins/install-from-url')]: {
        post: {
          summary: 'Install a bundle from an http(s) URL',
          requestBody: json({ type: 'object', required: ['url'], properties: { url: { type: 'string' }, signature_url: { type: 'string' }, force: { type: 'boolean' } } }),
          responses: { '201': { description: 'Installed', ...json(plugin) }, '502': { description: 'Download failed' }, ...errors },
        },
      },
      [p('/plugins/{id}')]: {
        get: { summary: 'One plugin', parameters: [idParam], responses: { '200': { description: 'The plugin', ...json(plugin) }, ...errors } },
        delete: { summary: 'Remove a plugin and its data', parameters: [idParam], responses: { '204': { description: 'Removed' }, ...errors } },
      },
      [p('/plugins/{id}/enable')]: { post: { summary: 'Enable (start) a plugin', parameters: [idParam], responses: { '200': { description: 'Running', ...json(plugin) }, '502': { description: 'Activation failed' }, ...errors } } },
      [p('/plugins/{id}/disable')]: { post: { summary: 'Disable (stop) a plugin', parameters: [idParam], responses: { '200': { description: 'Stopped', ...json(plugin) }, ...errors } } },
      [p('/plugins/{id}/config')]: {
        get: { summary: 'Configuration, secrets masked', parameters: [idParam], responses: { '200': { description: 'Configuration', ...json({ type: 'object' }) }, ...errors } },
        put: { summary: 'Replace the configuration (validated against the settings schema)', parameters: [idParam], requestBody: json({ type: 'object' }), responses: { '200': { description: 'Saved, secrets masked', ...json({ type: 'object' }) }, ...errors } },
      },
      [p('/plugins/webapp')]: {
        get: {
          summary: "Client bundles of running plugins: id, version and a content-hashed URL (public unless the integrator's webappAccess refuses)",
          security: [],
          responses: { '200': { description: 'Bundles', ...json({ type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, version: { type: 'string' }, url: { type: 'string' } } } }) } },
        },
      },
      [p('/events/ticket')]: {
        post: { summary: 'A single-use ticket, valid 30 s, for opening the event stream from a browser', responses: { '200': { description: 'Ticket', ...json({ type: 'object', properties: { ticket: { type: 'string' }, expiresAt: { type: 'integer' } } }) }, ...errors } },
      },
      [p('/events')]: {
        get: {
          summary: 'Server-sent events: installed, enabled, disabled, removed, state, config (Bearer token, or ?ticket=)',
          parameters: [{ name: 'ticket', in: 'query', schema: { type: 'string' } }],
          responses: { '200': { description: 'text/event-stream' }, ...errors },
        },
      },
      [p('/plugins/{id}/logs')]: {
        get: { summary: 'Recent log records', parameters: [idParam, { name: 'limit', in: 'query', schema: { type: 'integer' } }], responses: { '200': { description: 'Records, oldest first', ...json({ type: 'array' }) }, ...errors } },
      },
    },
  };
}
