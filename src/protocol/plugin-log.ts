/**
 * A plugin's own structured logger: hclog-style JSON lines on the real stderr,
 * which the host parses into records with level, message, time and fields.
 */
import type { LogLevel } from './log-lines';

export interface PluginLogger {
  trace(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Writes through `write`, which must reach the process's real stderr (not the captured one). */
export function createPluginLogger(write: (line: string) => void, module = 'plugin'): PluginLogger {
  const log = (level: LogLevel) => (message: string, fields: Record<string, unknown> = {}) => {
    const record = { '@level': level, '@message': message, '@timestamp': hclogTimestamp(new Date()), '@module': module, ...fields };
    write(`${safeStringify(record)}\n`);
  };
  return { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/**
 * hclog's time format, which go-plugin's host parses with the Go layout
 * "2006-01-02T15:04:05.000000Z07:00": exactly six fractional digits. A record
 * whose time does not parse is logged raw at DEBUG, whatever its level, so the
 * millisecond ISO form is padded to microseconds.
 */
export function hclogTimestamp(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v));
  } catch {
    return JSON.stringify({ '@level': 'error', '@message': 'unserializable log record' });
  }
}
