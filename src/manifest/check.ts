import type { FieldProblem } from '../errors';

/** A plain object as parsed from JSON or YAML. */
export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Describes a parsed value the way an author would recognise it in an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function join(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/**
 * Collects every problem instead of stopping at the first, so an author fixes a manifest in
 * one round rather than one error at a time.
 */
export class Problems {
  readonly list: FieldProblem[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  expected(path: string, what: string, got: unknown): void {
    this.add(path, `expected ${what}, got ${describe(got)}`);
  }

  /** Unknown keys are reported so that typos ("executabel") do not pass silently. */
  onlyKeys(obj: Obj, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.add(join(path, key), `unknown field; expected one of ${allowed.join(', ')}`);
    }
  }

  string(obj: Obj, key: string, path: string, opts: { required?: boolean; pattern?: RegExp; min?: number; max?: number; what?: string } = {}): string | undefined {
    const at = join(path, key);
    const value = obj[key];
    if (value === undefined) {
      if (opts.required) this.add(at, `required; expected ${opts.what ?? 'a string'}`);
      return undefined;
    }
    if (typeof value !== 'string') return void this.expected(at, opts.what ?? 'a string', value);
    const tooShort = opts.min !== undefined && value.length < opts.min;
    const tooLong = opts.max !== undefined && value.length > opts.max;
    if (tooShort || tooLong || (opts.pattern && !opts.pattern.test(value))) {
      return void this.expected(at, opts.what ?? `a string matching ${opts.pattern}`, value);
    }
    return value;
  }

  stringList(obj: Obj, key: string, path: string, check?: (item: string, at: string) => void): void {
    const value = obj[key];
    if (value === undefined) return;
    if (!Array.isArray(value)) return this.expected(join(path, key), 'a list of strings', value);
    value.forEach((item, i) => {
      const at = join(join(path, key), i);
      if (typeof item !== 'string') this.expected(at, 'a string', item);
      else check?.(item, at);
    });
  }

  object(obj: Obj, key: string, path: string): Obj | undefined {
    const value = obj[key];
    if (value === undefined) return undefined;
    if (!isObject(value)) return void this.expected(join(path, key), 'an object', value);
    return value;
  }

  positiveInt(obj: Obj, key: string, path: string): void {
    const value = obj[key];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      this.expected(join(path, key), 'a positive whole number', value);
    }
  }

  boolean(obj: Obj, key: string, path: string): void {
    const value = obj[key];
    if (value !== undefined && typeof value !== 'boolean') this.expected(join(path, key), 'true or false', value);
  }
}

/**
 * Why a path inside a plugin folder is unsafe, or null when it is fine. Backslashes and drive
 * letters count as absolute or as separators so that a manifest means the same on Windows.
 */
export function relativePathProblem(p: string): string | null {
  if (p === '') return 'expected a relative path, got an empty string';
  if (p.includes('\0')) return 'a path may not contain a NUL byte';
  if (/^([/\\]|[a-zA-Z]:)/.test(p)) return `expected a relative path inside the plugin folder, got the absolute path ${JSON.stringify(p)}`;
  if (p.split(/[/\\]/).includes('..')) return `expected a path inside the plugin folder, got ${JSON.stringify(p)} which climbs out with ".."`;
  return null;
}

/**
 * Why a `pack.ignore` pattern is not one `plughost pack` understands, or null when it is fine.
 * Only `*`, `?` and `**` are special, so characters gitignore treats specially are refused
 * rather than quietly taken literally.
 */
export function ignorePatternProblem(pattern: string): string | null {
  const expected = 'expected a glob relative to the plugin folder such as "*.log", "tmp/" or "docs/**/*.psd"';
  if (pattern.trim() === '') return `${expected}, got an empty string`;
  if (pattern.startsWith('!')) return `${expected}; "!" (re-including) is not supported, got ${JSON.stringify(pattern)}`;
  if (/[\\[\]{}]/.test(pattern)) return `${expected}; only *, ? and ** are special and \\ [ ] { } are not allowed, got ${JSON.stringify(pattern)}`;
  const segments = pattern.replace(/^\//, '').replace(/\/$/, '').split('/');
  if (segments.includes('..') || segments.includes('.')) return `${expected}; "." and ".." segments are not allowed, got ${JSON.stringify(pattern)}`;
  if (segments.includes('')) return `${expected}; empty segments ("//") are not allowed, got ${JSON.stringify(pattern)}`;
  if (segments.some((s) => s.includes('**') && s !== '**')) return `${expected}; "**" must be a whole segment ("a/**/b"), got ${JSON.stringify(pattern)}`;
  return null;
}
