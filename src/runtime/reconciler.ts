/**
 * Cluster convergence for a host on a shared store (PostgreSQL). The store's
 * feed lists, in commit order, every change of a plugin's desired record, every
 * published event and every state change of any host. The reconciler reads the
 * feed after the last row it saw:
 *   - when the LISTEN session wakes it (each committed row),
 *   - every `intervalMs` (a wake-up sent while the session was down is lost),
 *   - and it rereads everything (every plugin in the store and on this host)
 *     after the session reconnects, every `fullEvery`-th poll, after a failed
 *     pass, and when the feed has a gap (rows pruned while this host was away).
 * A change row only names the plugin: the target converges it against the
 * store's record as it is then, so a burst of changes costs one convergence.
 * One pass runs at a time; wake-ups during a pass ask for one more.
 */
import type { Logger } from 'pino';
import type { ClusterFeed, FeedRow, StopWatching } from '../store/store';
import { errorMessage } from './supervisor';

/** Rows read per query. */
const PAGE = 500;

export interface ReconcileTarget {
  readonly nodeId: string;
  readonly logger: Logger;
  /** Every plugin id in the store and on this host. */
  allIds(): Promise<string[]>;
  /** Converges one plugin toward the store's record (queued per plugin; its errors are its own). */
  converge(id: string): void;
  /** A row written by another host: an event to deliver, a state change to relay. */
  remote(row: FeedRow): void;
  /** After the session came back: rewrite what this host reported while the store was away. */
  resync(): Promise<void>;
  /** After a full pass: housekeeping that needs no hurry (e.g. bundles whose grace period ended). */
  afterFull(): void;
}

export interface ReconcilerOptions {
  /** Poll interval in ms. */
  intervalMs: number;
  /** Every how many polls a full reconcile runs. */
  fullEvery?: number;
}

export class Reconciler {
  private lastSeq: number;
  private running: Promise<void> | undefined;
  private again = false;
  private full = false;
  private polls = 0;
  private failing = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: StopWatching | undefined;

  constructor(
    private readonly feed: ClusterFeed,
    private readonly target: ReconcileTarget,
    private readonly options: ReconcilerOptions,
    /** The feed's head when the host read the store at open: rows after it are new to this host. */
    startSeq: number,
  ) {
    this.lastSeq = startSeq;
  }

  start(): void {
    this.unwatch = this.feed.watch(
      () => this.kick(false),
      () => {
        this.target.logger.info({ node_id: this.target.nodeId }, 'cluster feed reconnected: reconciling every plugin');
        void this.target.resync().catch((err) => this.target.logger.warn({ err: errorMessage(err) }, 'could not rewrite this node\'s state after reconnecting'));
        this.kick(true);
      },
    );
    this.schedulePoll();
  }

  /** Runs a pass soon; `full` rereads every plugin. */
  kick(full: boolean): void {
    if (this.stopped) return;
    if (full) this.full = true;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Makes the next poll a full pass (after a convergence failed: retried then, not at once, so a lasting failure never spins). */
  retryAtNextPoll(): void {
    this.full = true;
  }

  /** Stops listening and polling; resolves after the pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.unwatch?.();
    await this.running;
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polls++;
      this.kick(this.options.fullEvery !== undefined && this.polls % this.options.fullEvery === 0);
      this.schedulePoll();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      const full = this.full;
      this.full = false;
      try {
        await this.pass(full);
        if (this.failing) this.target.logger.info({ node_id: this.target.nodeId }, 'cluster feed readable again');
        this.failing = false;
      } catch (err) {
        // The store is away: plugins keep running as they are; the next poll rereads everything.
        if (!this.failing) this.target.logger.warn({ node_id: this.target.nodeId, err: errorMessage(err) }, 'cannot read the cluster feed; plugins keep their last known state');
        this.failing = true;
        this.full = true;
      }
    } while (this.again && !this.stopped);
  }

  private async pass(fullAsked: boolean): Promise<void> {
    let full = fullAsked;
    const changed = new Set<string>();
    for (;;) {
      const rows = await this.feed.read(this.lastSeq, PAGE);
      if (this.stopped) return;
      // Sequence numbers have no gaps: a jump means rows were pruned before this host read them.
      if (rows.length > 0 && rows[0].seq > this.lastSeq + 1) full = true;
      for (const row of rows) {
        if (row.kind === 'change') changed.add(row.pluginId);
        else if (row.origin !== this.target.nodeId) this.target.remote(row);
        this.lastSeq = row.seq;
      }
      if (rows.length < PAGE) break;
    }
    const ids = full ? await this.target.allIds() : [...changed];
    if (this.stopped) return;
    for (const id of ids) this.target.converge(id);
    if (full) this.target.afterFull();
  }
}
