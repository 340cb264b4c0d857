/** The CLI's pure parts: typing key=value by the settings schema, tables, progress, log lines, JSON arguments, event streams. */
import { PassThrough } from 'node:stream';
import { parseAssignments } from '../../src/cli/commands/plugin/config';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatLog } from '../../src/cli/commands/plugin/logs';
import { hookCallBody } from '../../src/cli/hook-input';
import { findJsonError, readJsonArgument } from '../../src/cli/json-input';
import { SseParser } from '../../src/cli/sse';
import { UsageError } from '../../src/cli/io';
import { createProgress } from '../../src/cli/progress';
import { renderTable } from '../../src/cli/table';
import type { Setting } from '../../src/manifest';
import type { PluginLogEntry } from '../../src/runtime';

const SETTINGS: Setting[] = [
  { key: 'count', type: 'number' },
  { key: 'loud', type: 'bool' },
  { key: 'name', type: 'text' },
];

describe('plugin CLI parts', () => {
  it('types values by the settings schema', () => {
    expect(parseAssignments(['count=42', 'loud=yes', 'name=a=b', 'other=7'], SETTINGS)).toEqual({ count: 42, loud: true, name: 'a=b', other: '7' });
    expect(parseAssignments(['loud=false', 'count=-1.5'], SETTINGS)).toEqual({ loud: false, count: -1.5 });
    expect(() => parseAssignments(['count=many'], SETTINGS)).toThrow(new UsageError('count=many: setting count is a number; expected e.g. count=42'));
    expect(() => parseAssignments(['loud=maybe'], SETTINGS)).toThrow('expected true or false');
    expect(() => parseAssignments(['=x'], SETTINGS)).toThrow('expected key=value');
  });

  it('renders aligned tables', () => {
    expect(renderTable([{ header: 'ID', value: (r: { id: string; n: number | null }) => r.id }, { header: 'N', value: (r) => r.n }], [{ id: 'a.long.id', n: 1 }, { id: 'b', n: null }]))
      .toBe('ID         N\na.long.id  1\nb          -');
  });

  it('draws a bar on a terminal and one line elsewhere', () => {
    const capture = (interactive: boolean) => {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (c: Buffer) => { text += c.toString(); });
      const p = createProgress({ label: 'up', total: 2048, stream: stream as unknown as NodeJS.WriteStream, interactive });
      p.update(1024);
      p.update(2048);
      p.done();
      return text;
    };
    expect(capture(true)).toMatch(/^\rup \[#{15}-{15}\]  50% 1\.0 KiB\/2\.0 KiB .*\rup \[#{30}\] 100% 2\.0 KiB\/2\.0 KiB .*\n$/s);
    expect(capture(false)).toMatch(/^up: sent 2\.0 KiB in [\d.]+ s \([^)]+\/s\)\n$/);
  });

  it('prints a log record with its level, [host] for the host\'s lines, and its fields as key=value', () => {
    const rec = (source: PluginLogEntry['source'], fields: Record<string, unknown>): PluginLogEntry => ({ pluginId: 'p', level: 'warn', message: 'm', time: 0, fields, source });
    expect(formatLog(rec('api', { user: 'ann', n: 2, o: { a: 1 } }))).toBe('1970-01-01T00:00:00.000Z WARN  m user=ann n=2 o={"a":1}');
    expect(formatLog(rec('host', { exit_code: 0 }))).toBe('1970-01-01T00:00:00.000Z WARN  [host] m exit_code=0');
  });

  it('reads --payload as JSON text, @file or stdin, and points at the first mistake with line and column', () => {
    expect(readJsonArgument('--payload', '{"a":[1,2]}')).toEqual({ a: [1, 2] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pht-json-'));
    try {
      fs.writeFileSync(path.join(dir, 'ok.json'), '\uFEFF{"b": true}\n');
      expect(readJsonArgument('--payload', `@${path.join(dir, 'ok.json')}`)).toEqual({ b: true });
      fs.writeFileSync(path.join(dir, 'bad.json'), '{\n  "b": tru\n}');
      expect(() => readJsonArgument('--payload', `@${path.join(dir, 'bad.json')}`)).toThrow(
        `--payload (${path.join(dir, 'bad.json')}): not valid JSON at line 2 column 11 (offset 12): expected true, found "\\n"`);
      expect(() => readJsonArgument('--payload', `@${path.join(dir, 'none.json')}`)).toThrow(`--payload (${path.join(dir, 'none.json')}): cannot read it: ENOENT`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(() => readJsonArgument('--payload', '{"a":}')).toThrow(UsageError);
    const cases: Array<[string, number, string]> = [
      ['{"a":}', 5, 'expected a value (object, list, string, number, true, false or null), found "}"'],
      ['{"a":1', 6, 'expected "," or "}", the text ended'],
      ['', 0, 'expected a value'],
      ['[1,2,,]', 5, 'expected a value'],
      ["{'a':1}", 1, 'expected a property name in double quotes, found "\'"'],
      ['{"a" 1}', 5, 'expected ":" after the property name, found "1"'],
      ['[01]', 2, 'expected "," or "]", found "1"'],
      ['[1.]', 3, 'expected a digit after the decimal point, found "]"'],
      ['"a\tb"', 2, 'a string may not hold a raw control character'],
      ['"\\x"', 2, 'expected an escape'],
      ['"abc', 4, 'a string is not closed'],
      ['{} x', 3, 'expected the end of the text after the value, found "x"'],
    ];
    for (const [text, offset, problem] of cases) {
      const found = findJsonError(text);
      expect([text, found.offset, found.problem]).toEqual([text, offset, expect.stringContaining(problem)]);
    }
  });

  it('builds a hook call body: the payload, and a context only from the flags given', () => {
    expect(hookCallBody({})).toEqual({ payload: null });
    expect(hookCallBody({ payload: '[1]', 'user-id': 'u1', 'request-id': 'r1', value: ['a=1', 'b=x=y'] }))
      .toEqual({ payload: [1], context: { userId: 'u1', requestId: 'r1', values: { a: '1', b: 'x=y' } } });
    expect(() => hookCallBody({ value: ['novalue'] })).toThrow('--value "novalue": expected key=value');
  });

  it('parses an event stream fed in pieces: named events, JSON data, comments and retry passed over', () => {
    const events: Array<[string, unknown]> = [];
    const parser = new SseParser((event, data) => events.push([event, data]));
    for (const piece of ['retry: 2000\n\n: heartbeat\n\nevent: lo', 'g\ndata: {"a":', '1}\n\r\n', 'data: plain\ndata: two\n\n']) parser.push(piece);
    expect(events).toEqual([['log', { a: 1 }], ['message', 'plain\ntwo']]);
  });
});
