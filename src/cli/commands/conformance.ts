import { parseArgs } from 'node:util';
import { formatCheck, formatHeader, formatSummary, runConformance, type CheckResult } from '../../conformance';
import { planLaunch } from '../../conformance/target';
import { EXIT, UsageError, out } from '../io';

export const usage =
  'plughost conformance <executable|bundle|dir> [--json] [--automtls] [--grace-ms N] [--timeout-ms N] [--start-timeout-ms N] [-- args]   check a plugin against the protocol';

function ms(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} expects a number of milliseconds, got ${JSON.stringify(value)}`);
  return Number(value);
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      automtls: { type: 'boolean' },
      'grace-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'start-timeout-ms': { type: 'string' },
    },
  });
  if (!positionals.length) throw new UsageError('expected the plugin to check: an executable, a bundle (.tar.gz) or a plugin folder');
  const [target, ...pluginArgs] = positionals;
  const options = {
    target,
    args: pluginArgs,
    autoMTLS: values.automtls ?? false,
    graceMs: ms(values['grace-ms'], 'grace-ms'),
    callTimeoutMs: ms(values['timeout-ms'], 'timeout-ms'),
    startTimeoutMs: ms(values['start-timeout-ms'], 'start-timeout-ms'),
  };
  if (!values.json) {
    // Resolve the target once up front so the header shows before the (slow) checks run.
    const plan = await planLaunch(target, pluginArgs);
    plan.cleanup();
    out(formatHeader({ target, pluginId: plan.manifest.id, version: plan.hasManifest ? plan.manifest.version : undefined, command: [plan.cmd, ...plan.args] }));
  }
  const report = await runConformance({ ...options, onCheck: values.json ? undefined : (c: CheckResult) => out(formatCheck(c)) });
  out(values.json ? JSON.stringify(report, null, 2) : formatSummary(report));
  return report.ok ? EXIT.ok : EXIT.failed;
}
