import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { extractBundle, missingFiles } from '../../bundle';
import { Errors, FieldProblem, isError } from '../../errors';
import { Manifest, loadManifest } from '../../manifest';
import { EXIT, UsageError, err, out } from '../io';

export const usage = 'plughost manifest check <dir|bundle>  print every problem with a plugin folder or bundle';

interface Checked {
  manifest?: Manifest;
  problems: FieldProblem[];
}

/** Field problems come back as a list to print; anything else (a hostile bundle, say) throws. */
function asProblems(e: unknown): FieldProblem[] {
  if (isError(e, Errors.MANIFEST_INVALID)) return e.details.problems as FieldProblem[];
  throw e;
}

function checkFolder(dir: string): Checked {
  try {
    const { manifest } = loadManifest(dir);
    return { manifest, problems: missingFiles(manifest, dir) };
  } catch (e) {
    return { problems: asProblems(e) };
  }
}

/** A bundle is checked by extracting it, exactly as an install would, into a throwaway folder. */
async function checkBundle(bundle: string): Promise<Checked> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-check-'));
  try {
    const { manifest } = await extractBundle(bundle, path.join(tmp, 'plugin'));
    return { manifest, problems: [] };
  } catch (e) {
    return { problems: asProblems(e) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [sub, target, ...rest] = positionals;
  if (sub !== 'check' || !target || rest.length) throw new UsageError('expected: plughost manifest check <dir|bundle>');
  const { manifest, problems } = fs.statSync(target).isDirectory() ? checkFolder(target) : await checkBundle(target);
  if (problems.length) {
    err(`${target}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
    for (const p of problems) err(`  - ${p.path || '(root)'}: ${p.message}`);
    return EXIT.failed;
  }
  out(`${target}: ok (${manifest?.id} ${manifest?.version})`);
  return EXIT.ok;
}
