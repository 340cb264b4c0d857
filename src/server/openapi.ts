/**
 * The OpenAPI 3.1 document of plughost's routes, at `<apiPrefix>/openapi.json`
 * with no token (it describes, it does not reveal). @fastify/swagger collects
 * it from the route schemas as routes are declared, so it must be registered
 * before them; routes that are not plughost's contract (a plugin's own HTTP
 * routes, the console's pages) carry `hide: true`.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';

/** The decorator's own name, so an integrator's @fastify/swagger in the same app keeps `swagger`. */
const DECORATOR = 'plughostOpenApi';

export async function openApi(app: FastifyInstance, options: { version: string; apiPrefix: string }): Promise<void> {
  await app.register(swagger, {
    mode: 'dynamic',
    decorator: DECORATOR,
    openapi: {
      openapi: '3.1.0',
      info: { title: 'plughost', version: options.version, description: 'Admin API, web side and plugin routes of a plughost server' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token' } } },
      security: [{ bearer: [] }],
    },
  });
  app.get(`${options.apiPrefix}/openapi.json`, {
    schema: { summary: 'This document', security: [], response: { 200: Type.Object({}, { additionalProperties: true }) } },
  }, async () => app.getDecorator<() => unknown>(DECORATOR)());
}
