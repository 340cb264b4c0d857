/**
 * Upload progress on stderr. On a terminal it redraws one bar in place; anywhere else
 * (a pipe, a CI log) it stays quiet until the end and prints one line, so logs are not
 * filled with carriage returns.
 */
export interface Progress {
  update(sent: number): void;
  done(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream?: NodeJS.WriteStream;
  /** Default: whether `stream` is a TTY. */
  interactive?: boolean;
}

const BAR_WIDTH = 30;
const REDRAW_MS = 100;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const interactive = options.interactive ?? stream.isTTY === true;
  const started = Date.now();
  let sent = 0;
  let drawn = 0;
  const line = (): string => {
    const fraction = options.total > 0 ? Math.min(1, sent / options.total) : 1;
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${formatBytes(Math.round(sent / seconds))}/s`;
    if (!interactive) return `${options.label}: sent ${formatBytes(sent)} in ${seconds.toFixed(1)} s (${rate})`;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
    return `${options.label} [${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${formatBytes(sent)}/${formatBytes(options.total)} ${rate}`;
  };
  return {
    update(n: number) {
      sent = n;
      if (!interactive || Date.now() - drawn < REDRAW_MS) return;
      drawn = Date.now();
      stream.write(`\r${line()}\x1b[K`);
    },
    done() {
      stream.write(interactive ? `\r${line()}\x1b[K\n` : `${line()}\n`);
    },
  };
}
