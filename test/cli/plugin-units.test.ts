/** The CLI's pure parts: typing key=value by the settings schema, tables, progress, following logs. */
import { PassThrough } from 'node:stream';
import { parseAssignments } from '../../src/cli/commands/plugin/config';
import { newSince } from '../../src/cli/commands/plugin/logs';
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

  it('finds the records after the last one seen', () => {
    const rec = (message: string, time: number): PluginLogEntry => ({ pluginId: 'p', level: 'info', message, time, fields: {}, source: 'api' });
    const [a, b, c] = [rec('a', 1), rec('b', 2), rec('c', 3)];
    expect(newSince([a, b], [a, b, c])).toEqual([c]);
    expect(newSince([a, b], [b])).toEqual([]);
    expect(newSince([a], [b, c])).toEqual([b, c]);
    expect(newSince([], [a])).toEqual([a]);
  });
});
