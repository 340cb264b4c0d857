/** The conformance report as text for people; `--json` prints the report object itself. */
import type { CheckResult, ConformanceReport } from './types';

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

/** One check as it finishes: a status line, then what was expected and what came, then notes. */
export function formatCheck(c: CheckResult): string {
  const lines = [`  ${MARK[c.status]}  ${c.title}: ${c.detail}`];
  if (c.expected !== undefined) lines.push(`        expected: ${c.expected}`);
  if (c.got !== undefined) lines.push(`        got:      ${c.got}`);
  for (const note of c.notes ?? []) lines.push(`        note:     ${note}`);
  return lines.join('\n');
}

export function formatHeader(r: Pick<ConformanceReport, 'target' | 'pluginId' | 'version' | 'command'>): string {
  const what = r.version ? `${r.pluginId} ${r.version}` : 'a bare executable';
  return `plughost conformance: ${r.target} (${what})\n  run as: ${r.command.map(quoteArg).join(' ')}`;
}

export function formatSummary(r: ConformanceReport): string {
  const count = (s: CheckResult['status']) => r.checks.filter((c) => c.status === s).length;
  const verdict = r.ok ? 'conforms' : 'does NOT conform';
  return `${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped in ${r.durationMs} ms: the plugin ${verdict}`;
}

/** The whole report as text (header, every check, summary). */
export function formatReport(r: ConformanceReport): string {
  return [formatHeader(r), ...r.checks.map(formatCheck), formatSummary(r)].join('\n');
}

function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
