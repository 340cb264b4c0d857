/**
 * Plugins do not outlive the program that launched them. Every plugin process
 * PluginClient starts is registered here until it is gone; when this process
 * exits (normally, by process.exit, or after an uncaught exception) the
 * `exit` hook SIGKILLs each registered plugin's process group and removes its
 * socket folder, synchronously, as `exit` listeners must. A plugin's process
 * group is its own (it is launched detached), so without this a host that
 * exits without kill() leaves its plugins re-parented to pid 1.
 *
 * SIGINT and SIGTERM end a Node process without running `exit` listeners, so
 * while plugins are registered this module also listens for them. When it is
 * the only listener, it cleans up and re-raises the signal, so the process
 * still dies of it as it would have. When the program has listeners of its
 * own (an embedding server's graceful shutdown, `plughost serve`), it does
 * nothing: the program decides when to exit, and the `exit` hook then kills
 * whatever its shutdown left running. The listeners are removed again when
 * the last plugin is gone, so a program with no plugins keeps Node's defaults.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { killPluginTree } from './process';

/** One launched plugin process and what it leaves on disk. */
export interface LivePlugin {
  child: ChildProcess;
  /** Its INSTANCE_ENV value, which finds descendants that left the group (Linux). */
  marker: string | null;
  /** Its private socket folder, removed with it. */
  socketDir: string | null;
}

export interface TrackedPlugin {
  /** Kills what is left of the plugin's process tree, removes its socket folder, and stops tracking it. Idempotent. */
  release(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type CleanupSignal = (typeof SIGNALS)[number];

const live = new Set<LivePlugin>();

/** Registers a launched plugin until `release()`. */
export function trackPlugin(plugin: LivePlugin): TrackedPlugin {
  if (live.size === 0) installListeners();
  live.add(plugin);
  return {
    release: () => {
      if (!live.delete(plugin)) return;
      cleanUp(plugin);
      if (live.size === 0) removeListeners();
    },
  };
}

/** How many plugins are registered; for tests. */
export function livePluginCount(): number {
  return live.size;
}

function cleanUp(plugin: LivePlugin): void {
  try {
    killPluginTree(plugin.child, plugin.marker);
  } catch {
    // EPERM: not ours to kill; nothing more can be done here.
  }
  if (plugin.socketDir) fs.rmSync(plugin.socketDir, { recursive: true, force: true });
}

function killAll(): void {
  for (const plugin of [...live]) {
    live.delete(plugin);
    cleanUp(plugin);
  }
  removeListeners();
}

function onSignal(signal: CleanupSignal): void {
  // Ours is one of the listeners; any other means the program handles the signal itself.
  if (process.listenerCount(signal) > 1) return;
  killAll();
  // With no listener left, Node's default action applies: the process ends by this signal.
  process.kill(process.pid, signal);
}

const signalListeners: Record<CleanupSignal, () => void> = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };

function installListeners(): void {
  process.on('exit', killAll);
  // First in line, so that "once" listeners of the program have not yet removed themselves when we count them.
  for (const signal of SIGNALS) process.prependListener(signal, signalListeners[signal]);
}

function removeListeners(): void {
  process.off('exit', killAll);
  for (const signal of SIGNALS) process.off(signal, signalListeners[signal]);
}
