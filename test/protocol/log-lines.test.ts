import { LineSplitter, parseLogLine } from '../../src/protocol/log-lines';
import { createPluginLogger, hclogTimestamp } from '../../src/protocol/plugin-log';

describe('parseLogLine', () => {
  test('hclog JSON becomes a structured record', () => {
    const r = parseLogLine('{"@level":"warn","@message":"disk low","@timestamp":"2026-01-02T03:04:05.678Z","@module":"plugin.x","free_mb":12}', 'stderr');
    expect(r).toEqual({ level: 'warn', message: 'disk low', time: Date.parse('2026-01-02T03:04:05.678Z'), fields: { module: 'plugin.x', free_mb: 12 }, source: 'stderr' });
  });

  test.each([
    ['milliseconds, Z', '2026-01-02T03:04:05.678Z'],
    ['microseconds, Z (hclog and go-plugin)', '2026-01-02T03:04:05.678901Z'],
    ['microseconds, numeric offset (hclog in a local zone)', '2026-01-02T05:04:05.678901+02:00'],
    ['nanoseconds, negative offset', '2026-01-01T22:04:05.678901234-05:00'],
  ])('@timestamp with %s keeps the plugin\'s time', (_form, stamp) => {
    const r = parseLogLine(`{"@level":"info","@message":"m","@timestamp":"${stamp}"}`, 'stderr', 5);
    expect(r.time).toBe(Date.parse('2026-01-02T03:04:05.678Z'));
  });

  test.each([
    ['[DEBUG] starting', 'debug', 'starting'],
    ['2026-01-01T00:00:00.000Z [ERROR] plugin: boom', 'error', 'plugin: boom'],
    ['[WARN]  two spaces', 'warn', 'two spaces'],
    // Go's standard log package, which Go plugins write to stderr before and after the handshake.
    ['2026/12/02 17:16:32 [WARN] disk almost full', 'warn', 'disk almost full'],
    ['2026/12/02 17:16:32.123456 [ERROR] cannot open', 'error', 'cannot open'],
    ['plain words', 'info', 'plain words'],
    ['{"not":"hclog"}', 'info', '{"not":"hclog"}'],
    ['{"@message": broken json', 'info', '{"@message": broken json'],
  ])('%s', (line, level, message) => {
    const r = parseLogLine(line, 'stderr', 5);
    expect(r.level).toBe(level);
    expect(r.message).toBe(message);
  });
});

describe('LineSplitter', () => {
  test('splits across chunks, handles CRLF and a final line without newline', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push(Buffer.from('ab'));
    s.push(Buffer.from('c\r\nde\n\nf'));
    s.end();
    expect(lines).toEqual(['abc', 'de', '', 'f']);
  });

  test('bounds a long line and resumes after its newline', () => {
    const out: Array<[string, boolean]> = [];
    const s = new LineSplitter((l, t) => out.push([l, t]), 8);
    s.push(Buffer.from('0123456789abcdef'));
    s.push(Buffer.from('ghij\nok\n'));
    expect(out).toEqual([['01234567', true], ['ok', false]]);
  });
});

describe('the plugin-side logger', () => {
  test("writes @timestamp in hclog's layout, which go-plugin parses: six fractional digits and Z", () => {
    expect(hclogTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)))).toBe('2026-01-02T03:04:05.678000Z');
    const lines: string[] = [];
    createPluginLogger((l) => lines.push(l)).warn('disk low', { free_mb: 12 });
    const record = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(record['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(parseLogLine(lines[0], 'stderr')).toMatchObject({ level: 'warn', message: 'disk low', fields: { free_mb: 12 }, time: Date.parse(record['@timestamp'] as string) });
  });
});
