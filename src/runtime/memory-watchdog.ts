/**
 * The memory limit where no cgroup can be made for a plugin: every interval,
 * the resident memory of the plugin's process tree (the plugin and every
 * descendant by parent link, from /proc) is summed, and over the limit the
 * tree is killed. Coarser than a cgroup (a burst between two samples goes
 * unseen, and an orphan of a double fork is no longer in the tree), but it
 * counts what a cgroup counts: resident memory, not address space.
 */
import * as fs from 'node:fs';
import { strays } from '../protocol/process';

export interface WatchdogOptions {
  pid: number;
  limitBytes: number;
  intervalMs: number;
  /** Called once, with the total seen, when the tree is over the limit; the watchdog then stops. */
  onExceeded: (rssBytes: number) => void;
}

export class MemoryWatchdog {
  private timer: NodeJS.Timeout | undefined;
  /** The total that crossed the limit, once it did. */
  exceededAt: number | null = null;

  constructor(private readonly options: WatchdogOptions) {
    this.schedule();
  }

  /** Stops sampling; safe to call more than once. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.sample(), this.options.intervalMs);
    // Sampling alone never keeps the host alive.
    this.timer.unref();
  }

  private sample(): void {
    this.timer = undefined;
    const { pid, limitBytes, onExceeded } = this.options;
    const rss = treeRssBytes(pid);
    if (rss > limitBytes) {
      this.exceededAt = rss;
      onExceeded(rss);
      return;
    }
    this.schedule();
  }
}

/** Resident bytes of `pid` and its descendants; 0 off Linux or once they are gone. */
export function treeRssBytes(pid: number): number {
  let total = 0;
  for (const p of [pid, ...strays(pid, null)]) {
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
    } catch {
      continue;
    }
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    if (kb) total += Number(kb[1]) * 1024;
  }
  return total;
}
