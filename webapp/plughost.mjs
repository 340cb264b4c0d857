/**
 * plughost/webapp: puts the client bundles of running plugins into a page.
 *
 * The page marks where plugins may contribute with `data-plughost-slot="name"`
 * and calls `startPlugins()`. Each bundle is an ES module whose default export
 * (or `activate`) receives a registry:
 *
 *   export default function activate(registry) {
 *     registry.registerSlot('greeting', (el) => { el.textContent = 'hi'; return () => {} });
 *   }
 *
 * The module follows the host's bundle stream, so a plugin that is disabled
 * is unloaded (its cleanups run, its elements go) and an upgraded one is
 * swapped for its new version, without a page reload.
 */

const SLOT_ATTRIBUTE = 'data-plughost-slot';
const PLUGIN_ATTRIBUTE = 'data-plughost-plugin';

/**
 * Starts loading plugins. Options:
 *  - base: the prefix plughost's routes are mounted under (default '')
 *  - apiBase: where the API lives (default base + '/api/v1')
 *  - root: the element (or document) searched for slots (default document)
 *  - onError(pluginId, error): a bundle failed to load, render or clean up (default console.error)
 *  - onChange(loaded): after every change, with [{ id, version, bundleUrl }]
 * Returns { ready, plugins(), scan(), stop() }; `ready` settles after the first list is applied.
 */
export function startPlugins(options = {}) {
  const base = (options.base ?? '').replace(/\/$/, '');
  const apiBase = options.apiBase ?? `${base}/api/v1`;
  const root = options.root ?? document;
  const onError = options.onError ?? ((id, err) => console.error(`plughost: plugin ${id}:`, err));
  const onChange = options.onChange ?? (() => {});
  /** id → { bundle, registry } */
  const loaded = new Map();
  let queue = Promise.resolve();
  let stopped = false;
  let markReady;
  const ready = new Promise((resolve) => (markReady = resolve));

  const source = new EventSource(`${apiBase}/plugins/webapp/events`);
  source.addEventListener('webapp', (event) => {
    const bundles = JSON.parse(event.data);
    queue = queue
      .then(() => apply(bundles))
      .catch((err) => onError('(all)', err))
      .then(markReady);
  });

  async function apply(bundles) {
    if (stopped) return;
    const wanted = new Map(bundles.map((b) => [b.id, b]));
    for (const [id, entry] of [...loaded]) {
      if (wanted.get(id)?.bundleUrl !== entry.bundle.bundleUrl) unload(id);
    }
    for (const bundle of bundles) {
      if (!loaded.has(bundle.id)) await load(bundle);
    }
    onChange(current());
  }

  async function load(bundle) {
    const registry = createRegistry(bundle, root, base, onError);
    loaded.set(bundle.id, { bundle, registry });
    try {
      const module = await import(new URL(bundle.bundleUrl, location.href).href);
      const activate = module.default ?? module.activate;
      if (typeof activate !== 'function') throw new Error('the bundle exports no default or activate function');
      const cleanup = await activate(registry.api);
      if (typeof cleanup === 'function') registry.api.onUnload(cleanup);
    } catch (err) {
      onError(bundle.id, err);
    }
  }

  function unload(id) {
    loaded.get(id)?.registry.dispose();
    loaded.delete(id);
  }

  function current() {
    return [...loaded.values()].map((e) => ({ ...e.bundle }));
  }

  return {
    ready,
    plugins: current,
    /** Renders registered slots into slot elements added to the page since. */
    scan: () => {
      for (const { registry } of loaded.values()) registry.scan();
    },
    stop: () => {
      stopped = true;
      source.close();
      for (const id of [...loaded.keys()]) unload(id);
    },
  };
}

/** The registry one bundle sees, and what it takes to remove every trace of it. */
function createRegistry(bundle, root, base, onError) {
  const slots = [];
  const unloadFns = [];
  const mounts = [];
  let disposed = false;

  const safely = (fn) => {
    try {
      fn();
    } catch (err) {
      onError(bundle.id, err);
    }
  };

  function mount(slot, host) {
    const el = document.createElement('div');
    el.setAttribute(PLUGIN_ATTRIBUTE, bundle.id);
    host.append(el);
    const record = { slot, host, el, cleanup: null };
    mounts.push(record);
    safely(() => {
      const cleanup = slot.render(el, { pluginId: bundle.id, version: bundle.version });
      if (typeof cleanup === 'function') record.cleanup = cleanup;
    });
  }

  function scan() {
    for (const slot of slots) {
      for (const host of root.querySelectorAll(`[${SLOT_ATTRIBUTE}="${CSS.escape(slot.name)}"]`)) {
        if (!mounts.some((m) => m.slot === slot && m.host === host)) mount(slot, host);
      }
    }
  }

  const api = {
    pluginId: bundle.id,
    version: bundle.version,
    /** Where the plugin's own HTTP routes are served. */
    pluginUrl: `${base}/plugins/${encodeURIComponent(bundle.id)}`,
    /** `render(el, info)` fills `el` (inside every slot of that name) and may return a cleanup. */
    registerSlot(name, render) {
      if (disposed) return;
      if (typeof name !== 'string' || typeof render !== 'function') throw new TypeError('registerSlot(name, render): a slot name and a function');
      slots.push({ name, render });
      scan();
    },
    /** Runs when the plugin is unloaded, after the slot cleanups. */
    onUnload(fn) {
      if (typeof fn === 'function') unloadFns.push(fn);
    },
  };

  return {
    api,
    scan: () => !disposed && scan(),
    dispose() {
      disposed = true;
      for (const m of mounts.splice(0)) {
        if (m.cleanup) safely(m.cleanup);
        m.el.remove();
      }
      for (const fn of unloadFns.splice(0)) safely(fn);
    },
  };
}
