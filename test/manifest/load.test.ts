import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Errors, isError } from '../../src/errors';
import { loadManifest, parseManifest, MAX_MANIFEST_BYTES } from '../../src/manifest';
import { caught } from '../fixtures/expect-error';

const good = { id: 'com.example.hello', name: 'Hello', version: '1.0.0', server: { executable: 'bin/hello' } };

describe('loading a manifest from a folder', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plughost-manifest-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['plugin.json', 'plugin.yaml', 'plugin.yml'])('reads %s', (name) => {
    const text = name.endsWith('.json') ? JSON.stringify(good) : 'id: com.example.hello\nname: Hello\nversion: 1.0.0\nserver:\n  executable: bin/hello\n';
    fs.writeFileSync(path.join(dir, name), text);
    const loaded = loadManifest(dir);
    expect(loaded.manifest).toEqual(good);
    expect(loaded.file).toBe(path.join(dir, name));
  });

  it('refuses two manifests, naming both', () => {
    fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(good));
    fs.writeFileSync(path.join(dir, 'plugin.yml'), 'id: x');
    const err = caught(() => loadManifest(dir));
    expect(isError(err, Errors.MANIFEST_AMBIGUOUS)).toBe(true);
    expect(err.message).toContain('plugin.json, plugin.yml');
  });

  it('says which names it looked for when there is none', () => {
    const err = caught(() => loadManifest(dir));
    expect(err.code).toBe(Errors.MANIFEST_NOT_FOUND.code);
    expect(err.message).toContain('plugin.json, plugin.yaml, plugin.yml');
  });

  it('refuses a manifest over 1 MiB before parsing it', () => {
    fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ ...good, description: 'x'.repeat(MAX_MANIFEST_BYTES) }));
    expect(caught(() => loadManifest(dir)).code).toBe(Errors.MANIFEST_TOO_LARGE.code);
  });
});

describe('hostile manifest text', () => {
  it('refuses a YAML alias bomb quickly', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(',')}]`);
    }
    const started = Date.now();
    const err = caught(() => parseManifest(lines.join('\n'), 'yaml'));
    expect(err.code).toBe(Errors.MANIFEST_ALIAS_LIMIT.code);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each([
    ['json', '{"id":"abc","__proto__":{"polluted":true}}', '__proto__'],
    ['json', '{"props":{"deep":[{"constructor":{"prototype":{"polluted":true}}}]}}', 'constructor'],
    ['yaml', 'id: abc\nprops:\n  __proto__:\n    polluted: true\n', '__proto__'],
    ['yaml', 'props:\n  x:\n    prototype: 1\n', 'prototype'],
  ] as const)('refuses a %s manifest with a forbidden key (%#) and pollutes nothing', (format, text, key) => {
    const err = caught(() => parseManifest(text, format));
    expect(err.code).toBe(Errors.MANIFEST_FORBIDDEN_KEY.code);
    expect(err.message).toContain(key);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('reports syntax errors with the file name', () => {
    const err = caught(() => parseManifest('{"id": ', 'json', 'bundle/plugin.json'));
    expect(err.code).toBe(Errors.MANIFEST_SYNTAX.code);
    expect(err.message).toContain('bundle/plugin.json');
  });

  it('refuses duplicate YAML keys', () => {
    expect(caught(() => parseManifest('id: abc\nid: def\n', 'yaml')).code).toBe(Errors.MANIFEST_SYNTAX.code);
  });

  it('refuses absurd nesting instead of overflowing the stack', () => {
    const text = `{"props":${'['.repeat(200)}${']'.repeat(200)}}`;
    expect(caught(() => parseManifest(text, 'json')).code).toBe(Errors.MANIFEST_SYNTAX.code);
  });

  it('parses from a Buffer', () => {
    expect(parseManifest(Buffer.from(JSON.stringify(good)), 'json')).toEqual(good);
  });
});
