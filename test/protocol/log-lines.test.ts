import { LineSplitter, parseLogLine } from '../../src/protocol/log-lines';

describe('parseLogLine', () => {
  test('hclog JSON becomes a structured record', () => {
    const r = parseLogLine('{"@level":"warn","@message":"disk low","@timestamp":"2026-01-02T03:04:05.678Z","@module":"plugin.x","free_mb":12}', 'stderr');
    expect(r).toEqual({ level: 'warn', message: 'disk low', time: Date.parse('2026-01-02T03:04:05.678Z'), fields: { module: 'plugin.x', free_mb: 12 }, source: 'stderr' });
  });

  test.each([
    ['[DEBUG] starting', 'debug', 'starting'],
    ['2026-01-01T00:00:00.000Z [ERROR] plugin: boom', 'error', 'plugin: boom'],
    ['[WARN]  two spaces', 'warn', 'two spaces'],
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
