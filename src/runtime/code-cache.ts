/**
 * A V8 code cache for `runtime: node` plugins. Compiling a bundled SDK plugin
 * (some 650 KiB of JavaScript) is a large share of its start; with the code
 * V8 made on an earlier start, it is mostly skipped (bench/spawn.js measures
 * both). The host starts node with a small preload (`--require`) that
 * compiles the entry file with the cache kept in the plugin's folder, and
 * writes the cache there a second after a start that had none (or whose cache
 * V8 refused: another node binary, or changed flags). The file is named after
 * the node version and architecture; V8 itself checks that it belongs to the
 * source it is given, so a stale or damaged file only costs a normal compile.
 * The cache goes with the folder when the plugin is removed or upgraded.
 *
 * The preload steps aside when source maps are on (they are registered by
 * Node's own loader, which the cached compile bypasses) and for any process
 * other than the plugin's own entry (children it forks get no cache).
 *
 * Because a cached compile bypasses that registration, the preload maps stack
 * traces itself when the entry has a source map beside it (`plughost pack`
 * writes `<entry>.map` for a TypeScript plugin): frames in the entry are
 * rewritten to the author's file, line and column through `module.SourceMap`,
 * and the map is read only when a stack first needs it, so a start pays
 * nothing for it. Without the preload the host runs such an entry with
 * `--enable-source-maps` instead (see launchCommand).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The environment variable naming the cache file for the preload. */
export const CODE_CACHE_ENV = 'PLUGHOST_CODE_CACHE';

const PRELOAD = `'use strict';
// plughost: compiles the plugin's entry file with a V8 code cache (src/runtime/code-cache.ts).
(() => {
  const cacheFile = process.env.${CODE_CACHE_ENV};
  delete process.env.${CODE_CACHE_ENV};
  if (process.sourceMapsEnabled || !process.argv[1]) return;
  const Module = require('node:module');
  const vm = require('node:vm');
  const fs = require('node:fs');
  const path = require('node:path');
  let entry;
  try { entry = fs.realpathSync(path.resolve(process.argv[1])); } catch { return; }
  if (fs.existsSync(entry + '.map')) mapStackTraces(entry, entry + '.map');
  if (!cacheFile) return;
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    if (filename !== entry) return compile.call(this, content, filename);
    Module.prototype._compile = compile;
    let cachedData;
    try { cachedData = fs.readFileSync(cacheFile); } catch {}
    const script = new vm.Script(Module.wrap(content), {
      filename,
      cachedData,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    if (cachedData === undefined || script.cachedDataRejected) {
      setTimeout(() => {
        const tmp = cacheFile + '.' + process.pid;
        try {
          fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
          fs.renameSync(tmp, cacheFile);
        } catch {
          try { fs.rmSync(tmp, { force: true }); } catch {}
        }
      }, 1000).unref();
    }
    const require = Module.createRequire(filename);
    require.main = process.mainModule;
    return script.runInThisContext({ displayErrors: true }).call(this.exports, this.exports, require, this, filename, path.dirname(filename));
  };

  // Frames in the entry name the source the map gives; the map is read at the first such frame.
  function mapStackTraces(file, mapFile) {
    let map;
    const origin = (frame) => {
      if (frame.getFileName() !== file) return null;
      if (map === undefined) {
        try { map = new Module.SourceMap(JSON.parse(fs.readFileSync(mapFile, 'utf8'))); } catch { map = null; }
      }
      const found = map && map.findEntry(frame.getLineNumber() - 1, frame.getColumnNumber() - 1);
      if (!found || !found.originalSource) return null;
      const source = found.originalSource.startsWith('file:') ? require('node:url').fileURLToPath(found.originalSource) : path.resolve(path.dirname(mapFile), found.originalSource);
      return source + ':' + (found.originalLine + 1) + ':' + (found.originalColumn + 1);
    };
    Error.prepareStackTrace = (error, frames) => {
      let head;
      try { head = Error.prototype.toString.call(error); } catch { head = 'Error'; }
      return head + frames.map((frame) => {
        const text = String(frame);
        const mapped = origin(frame);
        return '\\n    at ' + (mapped ? text.replace(file + ':' + frame.getLineNumber() + ':' + frame.getColumnNumber(), mapped) : text);
      }).join('');
    };
  }
})();
`;

/**
 * Writes the preload into `dir` (named by its content, so hosts of different versions on one
 * data dir never share a wrong one) and returns its path.
 */
export function writeCodeCachePreload(dir: string): string {
  const file = path.join(dir, `code-cache-preload-${crypto.createHash('sha256').update(PRELOAD).digest('hex').slice(0, 12)}.js`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, PRELOAD, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
  return file;
}

/** Where a plugin folder keeps its code cache for this node binary. */
export function codeCacheFile(pluginDir: string): string {
  return path.join(pluginDir, `.plughost-code-cache-${process.version}-${process.arch}.v8`);
}
