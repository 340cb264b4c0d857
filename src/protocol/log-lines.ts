/**
 * Turns a plugin's raw output into log records: hclog JSON lines become
 * structured records, plain lines keep an "[INFO]"-style level when they carry
 * one, and no line, however long, can make the reader hold more than a bound.
 */
import { DEFAULT_MAX_LINE_BYTES } from './constants';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Every level, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

/** True when `level` is `min` or more severe: what a "--level warn" filter keeps. */
export function levelAtLeast(level: LogLevel, min: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(min);
}

/** Where a line came from: the process's own pipes, or the StreamStdio service. */
/** `api` and `host` are added by the runtime: records sent through the API's Log call, and the host's own notes about the plugin. */
export type LogSource = 'stderr' | 'stdout' | 'stdio:stdout' | 'stdio:stderr' | 'api' | 'host';

export interface PluginLogRecord {
  level: LogLevel;
  message: string;
  /** Milliseconds since the epoch: the plugin's @timestamp when it sent one, else arrival time. */
  time: number;
  /** Other keys of an hclog JSON line; empty for plain lines. */
  fields: Record<string, unknown>;
  source: LogSource;
  /** True when the line was longer than the bound and was cut. */
  truncated?: boolean;
}

const LEVELS: Record<string, LogLevel> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
};

/**
 * `[LEVEL] text`, after at most one word (an hclog timestamp) or Go's standard
 * `log` prefix (`2006/01/02 15:04:05[.000000] `), which Go plugins write to stderr.
 */
const PLAIN_LEVEL = /^(?:\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?\s+|\S+\s+)?\[(TRACE|DEBUG|INFO|WARN|WARNING|ERR|ERROR)\]\s?\s*(.*)$/s;

/** Parses one line of plugin output. Plain lines without a level are "info". */
export function parseLogLine(line: string, source: LogSource, now = Date.now()): PluginLogRecord {
  if (line.startsWith('{') && line.includes('"@message"')) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const { '@level': level, '@message': message, '@timestamp': timestamp, ...rest } = parsed as Record<string, unknown>;
        const fields: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(rest)) fields[k.startsWith('@') ? k.slice(1) : k] = v;
        const time = typeof timestamp === 'string' ? Date.parse(timestamp) : NaN;
        return {
          level: LEVELS[String(level).toLowerCase()] ?? 'info',
          message: typeof message === 'string' ? message : JSON.stringify(message),
          time: Number.isFinite(time) ? time : now,
          fields,
          source,
        };
      }
    } catch {
      // Not JSON after all: fall through to a plain line.
    }
  }
  const m = PLAIN_LEVEL.exec(line);
  if (m) return { level: LEVELS[m[1].toLowerCase()], message: m[2], time: now, fields: {}, source };
  return { level: 'info', message: line, time: now, fields: {}, source };
}

/**
 * Splits a byte stream into lines. A line longer than `maxLineBytes` is emitted
 * cut at the bound (flagged), and the rest of it is skipped up to its newline,
 * so memory stays bounded whatever the plugin writes.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string, truncated: boolean) => void,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.skipping) this.append(chunk.subarray(start, end));
      if (nl === -1) return;
      if (this.skipping) this.skipping = false;
      else this.emit(false);
      start = nl + 1;
    }
  }

  /** Emits what is left when the stream ends without a final newline. */
  end(): void {
    if (this.size > 0 && !this.skipping) this.emit(false);
    this.parts = [];
    this.size = 0;
    this.skipping = false;
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxLineBytes - this.size;
    if (piece.length <= room) {
      this.parts.push(piece);
      this.size += piece.length;
      return;
    }
    this.parts.push(piece.subarray(0, room));
    this.size += room;
    this.emit(true);
    this.skipping = true;
  }

  private emit(truncated: boolean): void {
    let line = Buffer.concat(this.parts, this.size).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.parts = [];
    this.size = 0;
    this.onLine(line, truncated);
  }
}
