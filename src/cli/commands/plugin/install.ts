/** `plughost plugin add` (upload a bundle from disk) and `plughost plugin install-url`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InstallResult, PluginInfo } from '../../../runtime';
import type { AdminClient } from '../../client';
import { createProgress } from '../../progress';
import { EXIT, UsageError, err } from '../../io';
import { invocation, noMore, positional, print } from './context';
import { describeState } from './manage';

export async function add(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, {
    signature: { type: 'string' },
    force: { type: 'boolean', default: false },
    enable: { type: 'boolean', default: false },
  });
  const bundle = path.resolve(positional(positionals, 0, 'bundle file (.tar.gz)'));
  noMore(positionals, 1);
  if (!fs.existsSync(bundle) || !fs.statSync(bundle).isFile()) throw new UsageError(`${bundle} is not a file; expected a bundle made by plughost pack`);
  const defaultSig = `${bundle}.sig`;
  const signature = values.signature ? path.resolve(values.signature) : fs.existsSync(defaultSig) ? defaultSig : undefined;
  const progress = createProgress({ label: `uploading ${path.basename(bundle)}`, total: fs.statSync(bundle).size });
  let installed: InstallResult;
  try {
    installed = await client.upload<InstallResult>({
      bundle,
      signature,
      query: values.force ? { force: 'true' } : undefined,
      onProgress: (sent) => progress.update(sent),
    });
  } finally {
    progress.done();
  }
  const info = await enableIfAsked(client, installed, values.enable);
  print(json, info, () => [
    `installed ${info.id} ${info.version}${signature ? ` (signature ${path.basename(signature)})` : ''}`,
    ...(values.enable ? [`enabled ${info.id}: ${describeState(info)}`] : []),
  ].join('\n'));
  return EXIT.ok;
}

export async function installUrl(args: string[]): Promise<number> {
  const { client, json, values, positionals } = invocation(args, {
    'signature-url': { type: 'string' },
    force: { type: 'boolean', default: false },
    enable: { type: 'boolean', default: false },
  });
  const url = positional(positionals, 0, 'bundle URL');
  noMore(positionals, 1);
  const body = { url, ...(values['signature-url'] ? { signature_url: values['signature-url'] } : {}), ...(values.force ? { force: true } : {}) };
  const installed = await client.request<InstallResult>('POST', '/plugins/install-from-url', body);
  const info = await enableIfAsked(client, installed, values.enable);
  print(json, info, () => [`installed ${info.id} ${info.version} from ${url}`, ...(values.enable ? [`enabled ${info.id}: ${describeState(info)}`] : [])].join('\n'));
  return EXIT.ok;
}

/**
 * Enables the plugin when --enable was given, keeping the install's warnings in the answer
 * (--json) and printing them on stderr (settings an upgrade dropped must not pass unseen).
 */
async function enableIfAsked(client: AdminClient, installed: InstallResult, enable: boolean): Promise<InstallResult> {
  const warnings = installed.warnings ?? [];
  for (const warning of warnings) err(`warning: ${warning}`);
  if (!enable) return installed;
  const enabled = await client.request<PluginInfo>('POST', `/plugins/${encodeURIComponent(installed.id)}/enable`);
  return { ...enabled, warnings };
}
