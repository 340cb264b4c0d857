/**
 * Types of plughost/webapp (plughost.mjs beside this file), the browser module that loads the
 * client bundles of running plugins into a page. Written by hand: the module is plain JavaScript
 * served as is to browsers. It uses DOM types, so a project importing it needs "DOM" in `lib`.
 */

/** A client bundle the host lists for a running plugin. */
export interface WebappBundle {
  id: string;
  version: string;
  /** Carries a content hash, so browsers may cache it; it changes when the plugin is upgraded. */
  bundleUrl: string;
}

/** What `render` gets besides its element. */
export interface SlotInfo {
  pluginId: string;
  version: string;
}

/** Fills `el` (a fresh element inside one slot); the cleanup it may return runs at unload. */
export type SlotRenderer = (el: HTMLElement, info: SlotInfo) => void | (() => void);

/** What a bundle's default export (or `activate`) receives. */
export interface PluginRegistry {
  readonly pluginId: string;
  readonly version: string;
  /** Where the plugin's own HTTP routes are served. */
  readonly pluginUrl: string;
  /** Renders into every `data-plughost-slot="name"` element, now and as they appear (see `scan`). */
  registerSlot(name: string, render: SlotRenderer): void;
  /** Runs when the plugin is unloaded, after the slot cleanups. */
  onUnload(fn: () => void): void;
}

/** A bundle's default export (or `activate`); the cleanup it may return runs at unload. */
export type ActivatePlugin = (registry: PluginRegistry) => void | (() => void) | Promise<void | (() => void)>;

export interface StartPluginsOptions {
  /** The prefix plughost's routes are mounted under (default ''). */
  base?: string;
  /** Where the API lives (default base + '/api/v1'). */
  apiBase?: string;
  /** The element (or document) searched for slots (default document). */
  root?: ParentNode;
  /** A bundle failed to load, render or clean up (default console.error). */
  onError?: (pluginId: string, error: unknown) => void;
  /** After every change, with the bundles now loaded. */
  onChange?: (loaded: WebappBundle[]) => void;
}

export interface StartedPlugins {
  /** Settles after the first list of bundles is applied. */
  ready: Promise<void>;
  plugins(): WebappBundle[];
  /** Renders registered slots into slot elements added to the page since. */
  scan(): void;
  /** Closes the bundle stream and unloads every plugin. */
  stop(): void;
}

/** Follows the host's bundle stream, loading, swapping and unloading plugin bundles without a page reload. */
export function startPlugins(options?: StartPluginsOptions): StartedPlugins;
