/**
 * JSON given on the command line: `--payload '{"a":1}'`, `--payload @file.json`
 * or `--payload -` (stdin). Text that is not JSON is a usage error naming the
 * flag and where the text goes wrong (line, column and offset), which Node's
 * own JSON.parse message leaves out for most mistakes.
 */
import * as fs from 'node:fs';
import { UsageError } from './io';

/** The JSON value of `flag`'s argument `given`, read from a file or stdin when it asks for that. */
export function readJsonArgument(flag: string, given: string): unknown {
  let text = given;
  let source = '';
  if (given === '-' || given.startsWith('@')) {
    const file = given === '-' ? 0 : given.slice(1);
    source = given === '-' ? ' (stdin)' : ` (${given.slice(1)})`;
    try {
      text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    } catch (err) {
      throw new UsageError(`${flag}${source}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch {
    const { offset, problem } = findJsonError(text);
    const { line, column } = lineColumn(text, offset);
    throw new UsageError(`${flag}${source}: not valid JSON at line ${line} column ${column} (offset ${offset}): ${problem}`);
  }
}

/** Where JSON text first breaks the grammar, and what was expected there. For text JSON.parse refused. */
export function findJsonError(text: string): { offset: number; problem: string } {
  let i = 0;
  const fail = (problem: string): never => {
    throw Object.assign(new Error(problem), { offset: i });
  };
  const found = () => (i < text.length ? `found ${JSON.stringify(text[i])}` : 'the text ended');
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail(`expected ${word}, ${found()}`);
      i++;
    }
  };
  const digits = (what: string) => {
    if (!/[0-9]/.test(text[i] ?? '')) fail(`expected a digit ${what}, ${found()}`);
    while (/[0-9]/.test(text[i] ?? '')) i++;
  };
  const string = () => {
    i++;
    for (;;) {
      if (i >= text.length) fail('a string is not closed: expected "');
      const ch = text[i];
      if (ch === '"') return void i++;
      if (ch < ' ') fail(`a string may not hold a raw control character (${JSON.stringify(ch)}); escape it`);
      if (ch === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('expected four hex digits after \\u');
          i += 5;
        } else if ('"\\/bfnrt'.includes(text[i] ?? 'x')) i++;
        else fail(`expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), ${found()}`);
      } else i++;
    }
  };
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{') return container('}', true);
    if (ch === '[') return container(']', false);
    if (ch === '"') return string();
    if (ch === 't') return literal('true');
    if (ch === 'f') return literal('false');
    if (ch === 'n') return literal('null');
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) {
      if (ch === '-') i++;
      if (text[i] === '0') i++;
      else digits('in the number');
      if (text[i] === '.') {
        i++;
        digits('after the decimal point');
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits('in the exponent');
      }
      return;
    }
    fail(`expected a value (object, list, string, number, true, false or null), ${found()}`);
  };
  const container = (close: string, keyed: boolean): void => {
    i++;
    space();
    if (text[i] === close) return void i++;
    for (;;) {
      if (keyed) {
        space();
        if (text[i] !== '"') fail(`expected a property name in double quotes, ${found()}`);
        string();
        space();
        if (text[i] !== ':') fail(`expected ":" after the property name, ${found()}`);
        i++;
      }
      value();
      space();
      if (text[i] === close) return void i++;
      if (text[i] !== ',') fail(`expected "," or "${close}", ${found()}`);
      i++;
    }
  };
  try {
    value();
    space();
    if (i < text.length) fail(`expected the end of the text after the value, ${found()}`);
  } catch (err) {
    const { offset, message } = err as Error & { offset: number };
    return { offset, problem: message };
  }
  // JSON.parse refused what this grammar accepts: nothing to point at but the start.
  return { offset: 0, problem: 'not JSON' };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}
