/**
 * The server's followers of PluginHost events (the live feed, the log streams
 * and the web pages' bundle list, one per open console or page) share one
 * listener on the host per event. Open streams are many by design, so one
 * listener each would set off Node's MaxListeners warning at the eleventh
 * console, a warning that should keep meaning a leak. The host's listener is
 * added with the first follower of an event and removed with the last, so a
 * host with no follower emits no log records for nobody (PluginHost checks
 * listenerCount('log')).
 */
import type { PluginHost } from '../runtime';
import type { PluginInfo, PluginLogEntry, StateChange } from '../runtime/types';

/** The host events servers follow, with what each carries. */
export interface FollowedEvents {
  log: [PluginLogEntry];
  state: [StateChange];
  installed: [PluginInfo];
  removed: [string];
  config: [string];
}

type Listener = (...args: unknown[]) => void;

interface Fanout {
  followers: Set<Listener>;
  dispatch: Listener;
}

const byHost = new WeakMap<PluginHost, Map<keyof FollowedEvents, Fanout>>();

/** Calls `fn` with each `event` of `host` until the function returned is called (once is enough; more is harmless). */
export function follow<E extends keyof FollowedEvents>(host: PluginHost, event: E, fn: (...args: FollowedEvents[E]) => void): () => void {
  let events = byHost.get(host);
  if (!events) byHost.set(host, (events = new Map()));
  let fanout = events.get(event);
  if (!fanout) {
    const followers = new Set<Listener>();
    fanout = {
      followers,
      // Over a copy, as EventEmitter does: a follower added while an event is being delivered starts with the next one.
      dispatch: (...args) => {
        for (const f of [...followers]) f(...args);
      },
    };
    events.set(event, fanout);
    host.on(event, fanout.dispatch);
  }
  const mine = fanout;
  // A wrapper per subscription: the same function following twice is called twice, and stops once per stop, as with on/off.
  const entry: Listener = (...args) => (fn as Listener)(...args);
  mine.followers.add(entry);
  return () => {
    if (!mine.followers.delete(entry) || mine.followers.size) return;
    host.off(event, mine.dispatch);
    if (events!.get(event) === mine) events!.delete(event);
  };
}
