/**
 * Per-plugin operation order: enable, disable and the rest run one after
 * another for the same plugin, and an install or remove that finds another one
 * in progress fails at once with 409 instead of waiting behind it.
 */
import { Errors } from '../errors';

export class PluginLocks {
  private readonly busy = new Map<string, string>();
  private readonly queues = new Map<string, Promise<unknown>>();

  /** Runs `fn` with the plugin's lock, or fails at once with 409 when another install/remove holds it. */
  async exclusive<T>(id: string, what: string, fn: () => Promise<T>): Promise<T> {
    const holder = this.busy.get(id);
    if (holder) throw Errors.PLUGIN_BUSY(id, holder);
    this.busy.set(id, what);
    try {
      return await this.queued(id, fn);
    } finally {
      this.busy.delete(id);
    }
  }

  /** Serializes operations on one plugin (enable after install, disable during enable...). */
  queued<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return run;
  }
}
