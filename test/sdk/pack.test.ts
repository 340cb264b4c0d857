/**
 * `plughost pack` on a TypeScript plugin folder: the bundle holds one
 * JavaScript file plus the protos, and runs from a folder with no
 * node_modules anywhere above it, with only the host's node.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { extractBundle } from '../../src/bundle';
import { loadManifest } from '../../src/manifest';
import { createTestHost } from '../../sdk/testing';
import { tempDir } from '../helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const HELLO = path.join(ROOT, 'examples', 'hello');

test('the hello example packs to a self-contained bundle that serves', async () => {
  const { dir, cleanup } = tempDir('phpack-');
  try {
    const bundle = path.join(dir, 'out', 'hello.tar.gz');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'plughost.js'), 'pack', HELLO, '-o', bundle], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/bundled server\/plugin\.ts → server\/plugin\.js/);

    const installed = path.join(dir, 'installed');
    await extractBundle(bundle, installed);
    const files = listFiles(installed);
    expect(files).toEqual(expect.arrayContaining(['plugin.json', 'server/plugin.js', 'server/proto/plughost/v1/hooks.proto', 'server/proto/plugin/grpc_broker.proto']));
    expect(files.filter((f) => f.endsWith('.ts') || f.includes('node_modules') || f.startsWith('test/'))).toEqual([]);
    const { manifest } = loadManifest(installed);
    expect(manifest.server).toEqual({ runtime: 'node', entry: 'server/plugin.js' });
    expect(manifest.settings_schema?.settings.map((s) => s.key)).toEqual(['greeting', 'api_key']);

    const host = await createTestHost(path.join(installed, 'server', 'plugin.js'), { config: { greeting: 'Packed' } });
    try {
      expect(host.pluginId).toBe('com.example.hello');
      expect(await (await host.fetch('/hello')).json()).toEqual({ greeting: 'Packed', visits: 1 });
    } finally {
      await host.close();
    }
  } finally {
    cleanup();
  }
});

function listFiles(root: string, rel = ''): string[] {
  return fs.readdirSync(path.join(root, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(root, path.posix.join(rel, e.name)) : [path.posix.join(rel, e.name)],
  );
}
