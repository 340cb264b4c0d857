import { Manifest } from './types';

/**
 * The files a manifest points at, by field path. Packing and extraction check that each one is
 * a regular file in the plugin folder, so a broken bundle fails at install, not at first launch.
 */
export function referencedFiles(manifest: Manifest): Array<{ field: string; file: string }> {
  const refs: Array<{ field: string; file: string }> = [];
  const server = manifest.server;
  if (server?.executable !== undefined) refs.push({ field: 'server.executable', file: server.executable });
  if (server?.entry !== undefined) refs.push({ field: 'server.entry', file: server.entry });
  for (const [key, file] of Object.entries(server?.executables ?? {})) {
    if (file !== undefined) refs.push({ field: `server.executables.${key}`, file });
  }
  if (manifest.icon_path !== undefined) refs.push({ field: 'icon_path', file: manifest.icon_path });
  if (manifest.webapp) refs.push({ field: 'webapp.bundle_path', file: manifest.webapp.bundle_path });
  return refs;
}
