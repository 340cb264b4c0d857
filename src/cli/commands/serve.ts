import type { KeyObject } from 'node:crypto';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readPublicKey } from '../../bundle';
import { converge, formatReport, loadProvisionFile, planProvision } from '../../provision';
import type { ApiMethods, RuntimeDefaults } from '../../runtime';
import { loadJwtSecret, startServer, userAuthenticator, type ServerOptions } from '../../server';
import { redact } from '../../store/postgres-store';
import { EXIT, UsageError, out } from '../io';
import * as pack from './pack';
import { loadApiModule } from './serve/api-module';
import { resolveServeSettings, SERVE_HELP, SERVE_OPTIONS, type ServeSettings } from './serve/settings';

export const usage = 'plughost serve [--config plughost.yaml] [--port 8065] [--data-dir ./data] [options]  run the plugin host and its REST API (plughost serve --help lists every option)';

export const help = (): string => SERVE_HELP;

/** Runs until SIGINT/SIGTERM, then stops every plugin before exiting. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: SERVE_OPTIONS });
  // A bad provisioning file is refused here, before the server or any plugin starts.
  const provision = values.config ? loadProvisionFile(values.config) : undefined;
  const planned = provision ? await planProvision(provision.plugins) : [];
  const settings = resolveServeSettings(values, provision);
  const { dataDir, database } = settings;
  const api = settings.apiModule ? loadApiModule(settings.apiModule) : undefined;
  const server = await startServer(serverOptions(settings, api));
  if (provision) {
    try {
      // With several nodes on one database, one applies the file at a time: the first changes what it asks, the others find it done.
      const report = await server.host.clusterExclusive('provision', () =>
        converge(server.host, planned, { packFolder: (dir, outFile) => pack.run([dir, '-o', outFile]).then(() => undefined) }));
      for (const line of formatReport(provision.file, report)) out(line);
    } catch (e) {
      await server.close();
      throw e;
    }
  }
  const token = server.tokenGenerated ? server.adminToken : '(see the admin-token file in the data dir, or PLUGHOST_ADMIN_TOKEN)';
  out(`plughost ${server.host.hostVersion} listening on ${server.url}`);
  if (server.metricsUrl) out(`metrics on ${server.metricsUrl}/metrics`);
  out(`data dir: ${dataDir}`);
  out(`node id: ${server.host.nodeId}`);
  if (database) out(`database: ${redact(database)}`);
  if (api) out(`API methods for plugins (from ${settings.apiModule!.file}): ${Object.keys(api).join(', ')}`);
  if (settings.trustUserHeader) out(`user id of plugin requests: the ${settings.trustUserHeader} header, trusted as sent (safe only behind a proxy that sets it on every request)`);
  if (settings.jwtSecretFile) out(`user id of plugin requests: the "sub" of an HS256 JWT in Authorization: Bearer (secret from ${settings.jwtSecretFile.file})`);
  if (server.tokenGenerated) out(`admin token (printed once; kept in ${path.join(dataDir, 'admin-token')}, mode 0600): ${token}`);
  out('');
  out('Try the hello example:');
  out('  npm run example:hello:pack');
  out(`  export PLUGHOST_URL=${server.url} PLUGHOST_TOKEN=$(cat ${path.join(dataDir, 'admin-token')})`);
  out('  node bin/plughost.js plugin add dist/bundles/com.example.hello-0.1.0.tar.gz --enable');
  out(`  curl ${server.url}/plugins/com.example.hello/hello`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  out('stopping plugins...');
  await server.close();
  return EXIT.ok;
}

/** The server, runtime and route options the settings ask for; anything not set keeps its default. */
function serverOptions(s: ServeSettings, api: ApiMethods | undefined): ServerOptions {
  const defaults: Partial<RuntimeDefaults> = {};
  if (s.memoryLimitMb !== undefined) defaults.memoryLimitMb = s.memoryLimitMb;
  if (s.autoMTLS !== undefined) defaults.autoMTLS = s.autoMTLS;
  if (s.hookTimeoutMs !== undefined) defaults.hookTimeoutMs = s.hookTimeoutMs;
  if (s.startTimeoutMs !== undefined) defaults.startTimeoutMs = s.startTimeoutMs;
  if (s.allowInspect) defaults.allowInspect = true;
  return {
    dataDir: s.dataDir,
    port: s.port,
    host: s.host,
    metrics: s.metrics,
    logger: pino({ name: 'plughost', level: s.logLevel }),
    hostOptions: {
      database: s.database,
      nodeId: s.nodeId,
      reconcileIntervalMs: s.reconcileIntervalMs,
      api,
      requireSignature: s.requireSignature,
      trustedKeys: s.trustedKeys.map(readTrustedKey),
      defaults,
      // An upload limit above the bundle limit would accept bundles the installer then refuses.
      ...(s.maxUploadBytes !== undefined ? { bundleLimits: { maxCompressedBytes: s.maxUploadBytes } } : {}),
    },
    routes: {
      installFromUrl: { allowHosts: s.allowUrlHosts },
      maxUploadBytes: s.maxUploadBytes,
      authenticate: userAuthenticator({
        trustUserHeader: s.trustUserHeader,
        jwtSecret: s.jwtSecretFile && loadJwtSecret(s.jwtSecretFile.file, s.jwtSecretFile.source),
      }),
    },
  };
}

/** --data-dir, else PLUGHOST_DATA_DIR, else the provisioning file's, else ./data; absolute (for commands that read a data dir, e.g. migrate). */
export function dataDirOption(flag: string | undefined, provisioned?: string): string {
  return path.resolve(flag ?? process.env.PLUGHOST_DATA_DIR ?? provisioned ?? './data');
}

/** A trusted public key named on the command line or in PLUGHOST_TRUSTED_KEYS (the provisioning file's are checked with the file). */
function readTrustedKey(file: string): KeyObject {
  try {
    return readPublicKey(file);
  } catch (err) {
    throw new UsageError(`trusted key ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}
