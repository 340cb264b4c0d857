/**
 * Notices within moments that a running plugin's gRPC connection is gone
 * (server closed, socket removed) while its process lives on, instead of at
 * the next health check: every call would fail until then. grpc-js moves the
 * channel out of READY when the connection drops (to IDLE, or to
 * TRANSIENT_FAILURE while reconnecting); each such move triggers one health
 * check at once, and only a failed check counts as a lost connection, so a
 * channel that merely went idle and reconnects is left alone.
 */
import * as grpc from '@grpc/grpc-js';
import type { ExitInfo } from '../protocol/client';
import { raceTimeout } from '../protocol/process';

/** After a failed check, how long an exit has to show up: then the exit, with its code, is the reason instead. */
const EXIT_SETTLE_MS = 300;

export interface TransportWatchOptions {
  channel: grpc.Channel;
  /** A health check; rejects when the plugin cannot be reached. */
  check: () => Promise<void>;
  /** The plugin process's exit. */
  exited: Promise<ExitInfo>;
  /** Called at most once, when the connection is lost and the process still runs. */
  onLost: (why: string) => void;
}

export class TransportWatch {
  private closed = false;
  private checking = false;

  constructor(private readonly options: TransportWatchOptions) {
    this.arm(options.channel.getConnectivityState(false));
  }

  /** Stops reacting; the channel's own close ends the pending watcher (it takes no timer). */
  close(): void {
    this.closed = true;
  }

  private arm(current: grpc.connectivityState): void {
    if (this.closed || current === grpc.connectivityState.SHUTDOWN) return;
    this.options.channel.watchConnectivityState(current, Infinity, () => {
      if (this.closed) return;
      const next = this.options.channel.getConnectivityState(false);
      if (next !== grpc.connectivityState.READY && next !== grpc.connectivityState.SHUTDOWN) void this.verify(next);
      this.arm(next);
    });
  }

  private async verify(state: grpc.connectivityState): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await this.options.check();
    } catch (err) {
      if (this.closed) return;
      if ((await raceTimeout(this.options.exited, EXIT_SETTLE_MS)) !== undefined || this.closed) return;
      this.closed = true;
      const why = err instanceof Error ? ((err as grpc.ServiceError).details ?? err.message) : String(err);
      this.options.onLost(`channel went ${grpc.connectivityState[state]}, then the health check failed: ${why}`);
    } finally {
      this.checking = false;
    }
  }
}
