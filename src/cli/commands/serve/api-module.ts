/**
 * The integrator API of a standalone server: a JavaScript module (`--api-module`, or
 * `server.api` in the provisioning file) whose export is the object of methods plugins
 * reach through Invoke, each allowed only to plugins whose manifest lists it under
 * `permissions`, exactly as `PluginHost.open({ api })` in an integrator's own server.
 * CommonJS (`module.exports = { ... }`) or, where Node can require it (20.19 and later),
 * an ES module (`export default { ... }`).
 */
import { Errors } from '../../../errors';
import { isObject } from '../../../manifest/check';
import type { ApiMethods } from '../../../runtime';
import type { NamedFile } from './settings';

/** Loads and checks the module; throws API_MODULE_LOAD_FAILED or API_MODULE_NOT_API naming the file. */
export function loadApiModule({ file, source }: NamedFile): ApiMethods {
  let loaded: unknown;
  try {
    loaded = require(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'MODULE_NOT_FOUND' && e.message.includes(file) ? 'no such file'
      : e.code === 'ERR_REQUIRE_ESM' ? `it is an ES module, which this Node (${process.version}) cannot require(); use Node 20.19 or later, or write it as CommonJS (.cjs)`
      : `${e.name}: ${e.message.split('\n')[0]}`;
    throw Errors.API_MODULE_LOAD_FAILED(file, source, why);
  }
  const api = isObject(loaded) && isObject(loaded.default) ? loaded.default : loaded;
  if (!isObject(api)) throw Errors.API_MODULE_NOT_API(file, source, `exports ${api === null ? 'null' : typeof api}`);
  const names = Object.keys(api);
  const notMethods = names.filter((name) => typeof api[name] !== 'function');
  if (names.length === 0) throw Errors.API_MODULE_NOT_API(file, source, 'exports an object with no methods');
  if (notMethods.length) throw Errors.API_MODULE_NOT_API(file, source, `exports an object whose ${notMethods.map((n) => JSON.stringify(n)).join(', ')} ${notMethods.length === 1 ? 'is not a function' : 'are not functions'}`);
  return api as ApiMethods;
}
