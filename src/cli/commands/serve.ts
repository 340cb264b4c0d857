import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PlughostError } from '../../errors';
import { converge, formatReport, loadProvisionFile, planProvision } from '../../provision';
import { checkNodeId } from '../../runtime/node-id';
import { startServer } from '../../server';
import { redact } from '../../store/postgres-store';
import { EXIT, UsageError, out } from '../io';
import * as pack from './pack';

export const usage = 'plughost serve [--data-dir ./data] [--port 8065] [--host 127.0.0.1] [--config plughost.yaml] [--metrics-port N [--metrics-host 127.0.0.1]] [--allow-url-host HOST|CIDR ...] [--memory-limit-mb N] [--database postgres://… [--reconcile-interval MS]] [--node-id ID]  run the plugin host and its REST API';

/** Runs until SIGINT/SIGTERM, then stops every plugin before exiting. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      config: { type: 'string', short: 'c' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      'allow-url-host': { type: 'string', multiple: true },
      'memory-limit-mb': { type: 'string' },
      database: { type: 'string' },
      'node-id': { type: 'string' },
      'reconcile-interval': { type: 'string' },
    },
  });
  // A bad provisioning file is refused here, before the server or any plugin starts.
  const provision = values.config ? loadProvisionFile(values.config) : undefined;
  const planned = provision ? await planProvision(provision.plugins) : [];
  // Command line, then environment, then the provisioning file, then the defaults.
  const portText = values.port ?? process.env.PLUGHOST_PORT ?? (provision?.port !== undefined ? String(provision.port) : '8065');
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${portText}: expected a port number 0-65535`);
  const dataDir = dataDirOption(values['data-dir'], provision?.dataDir);
  const host = values.host ?? process.env.PLUGHOST_HOST ?? provision?.host ?? '127.0.0.1';
  const memoryLimitMb = memoryLimitOption(values['memory-limit-mb'] ?? process.env.PLUGHOST_MEMORY_LIMIT_MB);
  // SQLite in the data dir unless a PostgreSQL URL is given.
  const database = values.database ?? (process.env.PLUGHOST_DATABASE_URL || undefined);
  if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) throw new UsageError('--database: expected a postgres:// or postgresql:// URL');
  const nodeId = nodeIdOption(values['node-id'], process.env.PLUGHOST_NODE_ID);
  const reconcileText = values['reconcile-interval'] ?? process.env.PLUGHOST_RECONCILE_INTERVAL_MS;
  const reconcileIntervalMs = reconcileText === undefined ? undefined : Number(reconcileText);
  if (reconcileIntervalMs !== undefined && !(Number.isInteger(reconcileIntervalMs) && reconcileIntervalMs >= 1)) {
    throw new UsageError(`--reconcile-interval ${reconcileText}: expected milliseconds, a whole number 1 or more`);
  }
  const hostOptions = {
    database,
    nodeId,
    reconcileIntervalMs,
    ...(provision ? { requireSignature: provision.requireSignature, trustedKeys: provision.trustedKeys.map((file) => fs.readFileSync(file)) } : {}),
    ...(memoryLimitMb !== undefined ? { defaults: { memoryLimitMb } } : {}),
  };
  const metricsPortText = values['metrics-port'] ?? process.env.PLUGHOST_METRICS_PORT ?? provision?.metricsPort?.toString();
  const metricsPort = metricsPortText === undefined ? undefined : Number(metricsPortText);
  if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    throw new UsageError(`--metrics-port ${metricsPortText}: expected a port number 0-65535`);
  }
  const metrics = metricsPort === undefined ? undefined : { port: metricsPort, host: values['metrics-host'] ?? '127.0.0.1' };
  const allowHosts = values['allow-url-host'] ?? process.env.PLUGHOST_ALLOW_URL_HOSTS?.split(',').filter(Boolean) ?? provision?.allowUrlHosts;
  const server = await startServer({ dataDir, port, host, hostOptions, metrics, routes: { installFromUrl: { allowHosts } } });
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

/** --data-dir, else PLUGHOST_DATA_DIR, else the provisioning file's, else ./data; absolute. */
export function dataDirOption(flag: string | undefined, provisioned?: string): string {
  return path.resolve(flag ?? process.env.PLUGHOST_DATA_DIR ?? provisioned ?? './data');
}

/** --node-id, else PLUGHOST_NODE_ID, checked here so a bad one is a usage error; undefined keeps the data dir's. */
function nodeIdOption(flag: string | undefined, env: string | undefined): string | undefined {
  const [value, source] = flag !== undefined ? [flag, '--node-id'] : env ? [env, 'PLUGHOST_NODE_ID'] : [undefined, ''];
  if (value === undefined) return undefined;
  try {
    return checkNodeId(value, source);
  } catch (e) {
    throw e instanceof PlughostError ? new UsageError(e.message) : e;
  }
}

/** The host-wide memory limit of plugins whose manifest sets none (MiB; 0 for none). */
function memoryLimitOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const mb = Number(text);
  if (!Number.isInteger(mb) || mb < 0) throw new UsageError(`--memory-limit-mb ${text}: expected a whole number of MiB (0 for no limit)`);
  return mb;
}
