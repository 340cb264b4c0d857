import { Errors, PlughostError } from '../../src/errors';
import { parseManifest, validateManifest } from '../../src/manifest';

const base = { id: 'com.example.hello', name: 'Hello', version: '1.0.0', server: { executable: 'bin/hello' } };

function problems(value: unknown): Record<string, string> {
  return Object.fromEntries(validateManifest(value).map((p) => [p.path, p.message]));
}

describe('manifest validation', () => {
  it('accepts a full manifest', () => {
    const full = {
      ...base,
      description: 'says hello',
      homepage_url: 'https://example.com',
      support_url: 'https://example.com/support',
      release_notes_url: 'http://example.com/notes',
      icon_path: 'assets/icon.svg',
      min_host_version: '>=0.1.0',
      server: { executables: { 'linux-amd64': 'bin/hello-linux', 'darwin-arm64': 'bin/hello-mac' } },
      args: ['--verbose'],
      env: { HELLO_MODE: 'loud' },
      limits: { start_timeout_ms: 5000, hook_timeout_ms: 1000, memory_mb: 256 },
      settings_schema: {
        settings: [
          { key: 'greeting', type: 'text', display_name: 'Greeting', default: 'hi', help_text: 'shown to users' },
          { key: 'color', type: 'dropdown', default: 'red', options: [{ display_name: 'Red', value: 'red' }, { display_name: 'Blue', value: 'blue' }] },
          { key: 'token', type: 'secret', required: true },
        ],
      },
      permissions: ['users.get'],
      props: { anything: [1, 'two', { three: null }] },
      webapp: { bundle_path: 'webapp/main.js' },
    };
    expect(validateManifest(full)).toEqual([]);
  });

  it('accepts a webapp-only manifest and a node runtime manifest', () => {
    const { server: _server, ...noServer } = base;
    expect(validateManifest({ ...noServer, webapp: { bundle_path: 'main.js' } })).toEqual([]);
    expect(validateManifest({ ...base, server: { runtime: 'node', entry: 'dist/index.js' } })).toEqual([]);
  });

  it('reports every problem at once, each with its field path', () => {
    const found = problems({
      id: 'a!',
      version: 'one',
      homepage_url: 'ftp://x',
      min_host_version: 'soon',
      server: { executables: { 'linux-amd64': 7, 'plan9-386': 'bin/x' } },
      args: ['ok', 3],
      env: { '1BAD': 'x', GOOD: 2 },
      limits: { start_timeout_ms: -1, memory_mb: 1.5, cpu: 2 },
      permissions: ['a', 'a'],
      colour: 'red',
    });
    expect(Object.keys(found).sort()).toEqual([
      'args[1]', 'colour', 'env.1BAD', 'env.GOOD', 'homepage_url', 'id', 'limits.cpu', 'limits.memory_mb',
      'limits.start_timeout_ms', 'min_host_version', 'name', 'permissions[1]', 'server.executables.linux-amd64',
      'server.executables.plan9-386', 'version',
    ].sort());
    expect(found.id).toMatch(/^expected 3 to 190 characters/);
    expect(found['server.executables.linux-amd64']).toBe('expected a relative path inside the plugin folder, got number 7');
    expect(found['server.executables.plan9-386']).toContain('linux-amd64');
  });

  it('checks "plugins.call:" permissions: an id, an id prefix ending in ".*", or "*"; other entries stay method names', () => {
    const good = ['plugins.call:com.acme.target', 'plugins.call:com.acme.*', 'plugins.call:*', 'notes.search', 'plugins.callish'];
    expect(problems({ ...base, permissions: good })).toEqual({});
    const bad = ['plugins.call:', 'plugins.call:ab', 'plugins.call:com.*.x', 'plugins.call:com.acme*', 'plugins.call:.*', 'plugins.call:a b', `plugins.call:${'a'.repeat(191)}`];
    const found = problems({ ...base, permissions: ['ok', ...bad] });
    expect(Object.keys(found)).toEqual(bad.map((_, i) => `permissions[${i + 1}]`));
    expect(found['permissions[3]']).toBe(
      'expected "plugins.call:" followed by a plugin id, an id prefix ending in ".*" (such as "plugins.call:com.acme.*"), or "*", got the string "plugins.call:com.*.x"',
    );
  });

  it('checks the id length bounds', () => {
    expect(problems({ ...base, id: 'ab' }).id).toBeDefined();
    expect(problems({ ...base, id: 'a'.repeat(191) }).id).toBeDefined();
    expect(problems({ ...base, id: 'a'.repeat(190) }).id).toBeUndefined();
  });

  it('needs a server or a webapp, and exactly one server form', () => {
    const { server: _server, ...noServer } = base;
    expect(problems(noServer)['']).toContain('server part, a webapp part, or both');
    expect(problems({ ...base, server: { executable: 'a', runtime: 'node', entry: 'b' } }).server).toContain('executable and runtime');
    expect(problems({ ...base, server: { runtime: 'deno', entry: 'x' } })['server.runtime']).toContain('"node"');
    expect(problems({ ...base, server: { runtime: 'node' } })['server.entry']).toContain('required');
  });

  it.each([
    ['server.executable', { server: { executable: '../escape' } }],
    ['server.executable', { server: { executable: '/usr/bin/env' } }],
    ['server.executable', { server: { executable: 'bin\\..\\..\\x' } }],
    ['server.executables.windows-amd64', { server: { executables: { 'windows-amd64': 'C:\\evil.exe' } } }],
    ['server.entry', { server: { runtime: 'node', entry: 'a/../../b.js' } }],
    ['icon_path', { icon_path: '../../etc/passwd' }],
    ['webapp.bundle_path', { webapp: { bundle_path: '/srv/main.js' } }],
  ])('refuses an unsafe path in %s', (field, patch) => {
    expect(problems({ ...base, ...patch })[field]).toMatch(/absolute path|climbs out/);
  });

  it('refuses wrong types with what it got', () => {
    const found = problems({ ...base, name: 5, props: [], server: 'bin/x', settings_schema: { settings: {} } });
    expect(found.name).toBe('expected a non-empty string, got number 5');
    expect(found.props).toBe('expected an object, got a list');
    expect(found.server).toContain('got the string "bin/x"');
    expect(found['settings_schema.settings']).toContain('a list of settings');
  });

  it('checks pack.ignore, naming the field and the pattern', () => {
    expect(validateManifest({ ...base, pack: { ignore: ['*.log', '/tmp', 'out/', 'docs/**/*.psd', 'a?c'] } })).toEqual([]);
    expect(problems({ ...base, pack: [] }).pack).toBe('expected an object, got a list');
    expect(problems({ ...base, pack: { ignore: '*.log' } })['pack.ignore']).toBe('expected a list of strings, got the string "*.log"');
    expect(problems({ ...base, pack: { ignores: [] } })['pack.ignores']).toBe('unknown field; expected one of ignore');
    const found = problems({ ...base, pack: { ignore: ['', '!keep.txt', '../x', 'a//b', 'a**/b', '[ab].txt', 'a\\b', 3] } });
    expect(found['pack.ignore[0]']).toContain('got an empty string');
    expect(found['pack.ignore[1]']).toContain('"!" (re-including) is not supported, got "!keep.txt"');
    expect(found['pack.ignore[2]']).toContain('".." segments are not allowed, got "../x"');
    expect(found['pack.ignore[3]']).toContain('empty segments');
    expect(found['pack.ignore[4]']).toContain('"**" must be a whole segment');
    expect(found['pack.ignore[5]']).toContain('only *, ? and ** are special');
    expect(found['pack.ignore[6]']).toContain('only *, ? and ** are special');
    expect(found['pack.ignore[7]']).toBe('expected a string, got number 3');
  });

  it('throws one error listing every problem', () => {
    try {
      parseManifest(JSON.stringify({ id: '!', version: 'x', server: {} }), 'json', 'plugin.json');
      throw new Error('expected an error');
    } catch (err) {
      const e = err as PlughostError;
      expect(e.code).toBe(Errors.MANIFEST_INVALID.code);
      for (const field of ['id', 'name', 'version', 'server']) expect(e.message).toContain(`\n  - ${field}: `);
      expect((e.details.problems as unknown[]).length).toBe(4);
    }
  });
});
