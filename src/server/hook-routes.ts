/**
 * Firing the integrator's hooks and publishing events from outside the host
 * (admin token, under the admin API's prefix): one plugin's hook, notify and
 * filter across every plugin, and an event on any topic. What an integrator's
 * code does with `callHook`, `notify`, `filter` and `publish`, an operator or a
 * plugin author can do with curl or `plughost plugin hook`, without writing a server.
 *
 * The operator publishes as the host, so `host.*` topics are allowed here: they
 * are reserved so that plugins cannot forge the host's events, and the admin
 * token already stands for the host (it installs and configures any plugin).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Errors, isError } from '../errors';
import type { PluginHost } from '../runtime';
import {
  FilterResultSchema,
  HookCallSchema,
  HookParams,
  HookResultSchema,
  NotifyResultSchema,
  PluginHookParams,
  PublishedSchema,
  PublishSchema,
  responses,
} from './schemas';

export async function hookRoutes(untyped: FastifyInstance, options: { host: PluginHost }): Promise<void> {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  const { host } = options;

  app.post('/plugins/:id/hooks/:hook', {
    schema: {
      summary: "Call one plugin's hook: 404 unknown plugin or hook, 409 not running, 504 past the hook deadline",
      params: PluginHookParams,
      body: HookCallSchema,
      response: responses({ 200: HookResultSchema }),
    },
  }, async (request) => {
    const { id, hook } = request.params;
    const info = await host.get(id);
    if (info.state !== 'running') throw Errors.HOOK_PLUGIN_NOT_RUNNING(id, hook, info.state);
    // The list of a running plugin: what it answered to Implemented at this start.
    if (!info.hooks.includes(hook)) throw Errors.HOOK_NOT_IMPLEMENTED(id, hook);
    try {
      return await host.callHook(id, hook, request.body.payload, request.body.context);
    } catch (err) {
      // Stopped between the check and the call: the same answer as before it.
      if (isError(err, Errors.PLUGIN_NOT_RUNNING)) throw Errors.HOOK_PLUGIN_NOT_RUNNING(id, hook, String(err.details.state));
      throw err;
    }
  });

  app.post('/hooks/:hook/notify', {
    schema: {
      summary: 'Notify: every running plugin that implements the hook, in parallel; one outcome per plugin',
      params: HookParams,
      body: HookCallSchema,
      response: responses({ 200: NotifyResultSchema }),
    },
  }, async (request) => ({ outcomes: await host.notify(request.params.hook, request.body.payload, request.body.context) }));

  app.post('/hooks/:hook/filter', {
    schema: {
      summary: 'Filter: the chain of running plugins that implement the hook, in ascending id order, with each step',
      params: HookParams,
      body: HookCallSchema,
      response: responses({ 200: FilterResultSchema }),
    },
  }, async (request) => host.filter(request.params.hook, request.body.payload, request.body.context));

  app.post('/events', {
    schema: {
      summary: 'Publish an event as the host (any topic, host.* included); answered once every node can see it',
      body: PublishSchema,
      response: responses({ 202: PublishedSchema }),
    },
  }, async (request, reply) => {
    const { topic, payload } = request.body;
    await host.publish(topic, payload);
    return reply.status(202).send({ topic, nodeId: host.nodeId });
  });
}
