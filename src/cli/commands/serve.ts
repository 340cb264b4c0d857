import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startServer } from '../../server';
import { EXIT, UsageError, out } from '../io';

export const usage = 'plughost serve [--data-dir ./data] [--port 8065] [--host 127.0.0.1] [--config plughost.yaml]  run the plugin host and its REST API';

/** Runs until SIGINT/SIGTERM, then stops every plugin before exiting. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string', default: process.env.PLUGHOST_DATA_DIR ?? './data' },
      port: { type: 'string', short: 'p', default: process.env.PLUGHOST_PORT ?? '8065' },
      host: { type: 'string', default: process.env.PLUGHOST_HOST ?? '127.0.0.1' },
      config: { type: 'string', short: 'c' },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${values.port}: expected a port number 0-65535`);
  const dataDir = path.resolve(values['data-dir']!);
  const server = await startServer({ dataDir, port, host: values.host });
  const token = server.tokenGenerated ? server.adminToken : '(see the admin-token file in the data dir, or PLUGHOST_ADMIN_TOKEN)';
  out(`plughost ${server.host.hostVersion} listening on ${server.url}`);
  out(`data dir: ${dataDir}`);
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
