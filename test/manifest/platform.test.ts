import { Errors, PlughostError } from '../../src/errors';
import { Manifest, platformKey, selectExecutable } from '../../src/manifest';

const base = { id: 'com.example.multi', name: 'Multi', version: '1.0.0' };

describe('selectExecutable', () => {
  const multi: Manifest = {
    ...base,
    server: { executables: { 'linux-amd64': 'bin/l64', 'linux-arm64': 'bin/la', 'darwin-arm64': 'bin/m', 'windows-amd64': 'bin/w.exe' } },
  };

  it.each([
    ['linux', 'x64', 'bin/l64'],
    ['linux', 'arm64', 'bin/la'],
    ['darwin', 'arm64', 'bin/m'],
    ['win32', 'x64', 'bin/w.exe'],
  ])('maps %s/%s to its Go-style build', (platform, arch, expected) => {
    expect(selectExecutable(multi, platform, arch)).toEqual({ kind: 'exec', path: expected });
  });

  it('names the missing key and the available ones', () => {
    try {
      selectExecutable(multi, 'darwin', 'x64');
      throw new Error('expected an error');
    } catch (err) {
      expect((err as PlughostError).code).toBe(Errors.NO_EXECUTABLE_FOR_PLATFORM.code);
      expect((err as PlughostError).message).toContain('no server executable for darwin-amd64; it has linux-amd64, linux-arm64, darwin-arm64, windows-amd64');
    }
    expect(() => selectExecutable(multi, 'freebsd', 'ia32')).toThrow(/freebsd-ia32/);
  });

  it('handles a single executable, the node runtime, and webapp-only plugins', () => {
    expect(selectExecutable({ ...base, server: { executable: 'bin/x' } })).toEqual({ kind: 'exec', path: 'bin/x' });
    expect(selectExecutable({ ...base, server: { runtime: 'node', entry: 'main.js' } })).toEqual({ kind: 'node', entry: 'main.js' });
    expect(() => selectExecutable({ ...base, webapp: { bundle_path: 'a.js' } })).toThrow(/it has none/);
  });

  it('uses this machine by default', () => {
    expect(platformKey()).toBe(platformKey(process.platform, process.arch));
    expect(platformKey('linux', 'x64')).toBe('linux-amd64');
  });
});
