/**
 * The SDK's own package, @plughost/sdk (scripts/pack-sdk.js): made from the
 * build, installed into an empty project from npm's cache (as CI's npm ci
 * leaves it), it pulls no fastify, no SQLite driver and no PostgreSQL client;
 * its types check under strict TypeScript; and a TypeScript plugin written
 * against it packs and runs in a real PluginHost.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { tempDir } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'plughost.js');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

test('installs alone without the host\'s dependencies, type-checks, and runs a plugin', async () => {
  const work = tempDir();
  let host: PluginHost | undefined;
  try {
    const tarball = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'pack-sdk.js'), '--out', work.dir], { encoding: 'utf8' }).trim();
    const project = path.join(work.dir, 'my-plugin');
    fs.mkdirSync(path.join(project, 'src'), { recursive: true });
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'my-plugin', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: project, stdio: 'pipe' });

    const sdk = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', '@plughost', 'sdk', 'package.json'), 'utf8'));
    expect(Object.keys(sdk.dependencies).sort()).toEqual(['@grpc/grpc-js', 'pino', 'protobufjs']);
    const installed = fs.readdirSync(path.join(project, 'node_modules'));
    for (const heavy of ['fastify', 'better-sqlite3', 'pg', '@fastify']) expect({ heavy, installed: installed.includes(heavy) }).toEqual({ heavy, installed: false });

    fs.writeFileSync(path.join(project, 'src', 'plugin.ts'), `import { definePlugin } from '@plughost/sdk';
type Hooks = { Shout: { text: string } };
definePlugin<Hooks>({
  hooks: {
    Shout: (payload) => ({ text: payload.text.toUpperCase() + '!' }),
  },
});
`);
    fs.writeFileSync(path.join(project, 'src', 'check-testing.ts'), `import { createTestHost } from '@plughost/sdk/testing';
export const made: typeof createTestHost = createTestHost;
`);
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', moduleResolution: 'node', esModuleInterop: true, skipLibCheck: false, noEmit: true, types: [] },
      include: ['src'],
    }));
    execFileSync(process.execPath, [TSC, '-p', project], { cwd: project, stdio: 'pipe' });

    fs.writeFileSync(path.join(project, 'plugin.json'), JSON.stringify({ id: 'com.test.sdk-package', name: 'SDK package', version: '1.0.0', server: { runtime: 'node', entry: 'src/plugin.ts' } }));
    const bundle = path.join(work.dir, 'sdk-package.tar.gz');
    execFileSync(process.execPath, [BIN, 'pack', project, '-o', bundle], { stdio: 'pipe' });

    host = await PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: pino({ level: 'silent' }) });
    await host.install(bundle);
    await host.enable('com.test.sdk-package');
    expect((await host.callHook('com.test.sdk-package', 'Shout', { text: 'from the package' })).payload).toEqual({ text: 'FROM THE PACKAGE!' });
  } finally {
    await host?.close();
    work.cleanup();
  }
}, 180_000);
