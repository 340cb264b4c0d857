/**
 * definePlugin: an author's definition becomes a plugin that serves itself
 * when a host launched the process (the magic cookie is in the environment),
 * and otherwise stays inert so tests and tools can import the module.
 */
import { DEFAULT_HANDSHAKE, type Handshake } from '../src/protocol/constants';
import { servePlugin, type ServedPlugin } from '../src/protocol/server';
import { hooksService, implementedOf } from './hooks-service';
import type { ApiMap, HookMap, PluginDefinition, SettingsMap } from './types';

export interface ServeOptions {
  /** The magic cookie; only for hosts that changed plughost's default. */
  handshake?: Handshake;
  /** Time allowed for a graceful stop after Shutdown before the server is forced down. Default 2 s. */
  shutdownGraceMs?: number;
}

export interface Plugin<Hooks extends HookMap = HookMap, Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap> {
  readonly definition: PluginDefinition<Hooks, Api, Config>;
  /** What the plugin answers to Implemented: lifecycle methods, hook names, event topics. */
  readonly implemented: { methods: string[]; hooks: string[]; eventTopics: string[] };
  /**
   * Serves the plugin in this process (handshake on stdout, then gRPC). Called
   * automatically on the next tick when a host launched the process; call it
   * yourself, before then, to pass options.
   */
  serve(options?: ServeOptions): Promise<ServedPlugin>;
}

/**
 * Defines a plugin. `Hooks` maps the integrator's hook names to payload types,
 * `Api` types `ctx.api.invoke`, and `Config` types the configuration.
 */
export function definePlugin<Hooks extends HookMap = HookMap, Api extends ApiMap = ApiMap, Config extends SettingsMap = SettingsMap>(
  definition: PluginDefinition<Hooks, Api, Config>,
): Plugin<Hooks, Api, Config> {
  const def = definition as unknown as Parameters<typeof hooksService>[0];
  const listed = implementedOf(def);
  let serving: Promise<ServedPlugin> | undefined;
  const plugin: Plugin<Hooks, Api, Config> = {
    definition,
    implemented: { methods: listed.methods ?? [], hooks: listed.hooks ?? [], eventTopics: listed.event_topics ?? [] },
    serve(options: ServeOptions = {}) {
      serving ??= servePlugin({
        handshake: options.handshake,
        shutdownGraceMs: options.shutdownGraceMs,
        services: (ctx) => [hooksService(def, ctx)],
      });
      return serving;
    },
  };
  const cookie = DEFAULT_HANDSHAKE;
  if (process.env[cookie.magicCookieKey] === cookie.magicCookieValue || isBundledEntry()) {
    // servePlugin itself refuses a launch without the cookie, with go-plugin's message and exit 1.
    setImmediate(() => {
      if (!serving) void plugin.serve();
    });
  }
  return plugin;
}

/**
 * True when the SDK runs inside the file node was started with, which is what
 * `plughost pack` makes of a TypeScript plugin: such a process is a plugin and
 * nothing else, so without the cookie it must refuse the way go-plugin does. An
 * SDK loaded as a library (tests, tools) stays inert instead.
 */
function isBundledEntry(): boolean {
  return require.main !== undefined && require.main.filename === __filename;
}
