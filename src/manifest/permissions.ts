/**
 * What a plugin may do through the host's API beyond its own KV and
 * configuration, as its manifest's `permissions` grants it. One grammar, used
 * by the manifest validator, the runtime's API service and the SDK's test host,
 * so a permission means the same thing wherever it is checked.
 *
 * - `plugins.call:<plugin id>`: CallPlugin may run that plugin's hooks.
 * - `plugins.call:<id prefix>.*`: every plugin whose id starts with `<id prefix>.`.
 * - `plugins.call:*`: every plugin.
 * - anything else: the name of an integrator API method that Invoke may call.
 *
 * Event topics under `host.` are the host's own: plugins cannot publish there,
 * so a subscriber can trust that such an event came from the integrator.
 */

/** Plugin ids: 3 to 190 of these characters. */
export const PLUGIN_ID_PATTERN = /^[a-zA-Z0-9._-]+$/;

/** True when `id` is a well-formed plugin id. */
export function isPluginId(id: string): boolean {
  return id.length >= 3 && id.length <= 190 && PLUGIN_ID_PATTERN.test(id);
}

/** Entries starting with this grant plugin-to-plugin calls, never an Invoke method. */
export const CALL_PERMISSION_PREFIX = 'plugins.call:';

/** Topics only the host publishes; PublishEvent from a plugin refuses them. */
export const HOST_TOPIC_PREFIX = 'host.';

/** The permission a plugin needs to call `targetId`. */
export function callPermission(targetId: string): string {
  return `${CALL_PERMISSION_PREFIX}${targetId}`;
}

/** What a `plugins.call:` entry may be, for error messages. */
export const CALL_PERMISSION_FORMS = '"plugins.call:" followed by a plugin id, an id prefix ending in ".*" (such as "plugins.call:com.acme.*"), or "*"';

/** True when `entry`, which starts with CALL_PERMISSION_PREFIX, names a plugin, an id prefix or every plugin. */
export function isWellFormedCallPermission(entry: string): boolean {
  const target = entry.slice(CALL_PERMISSION_PREFIX.length);
  if (target === '*') return true;
  return target.endsWith('.*') ? PLUGIN_ID_PATTERN.test(target.slice(0, -2)) && target.length <= 190 : isPluginId(target);
}

/** True when `permissions` let `callerId` run hooks of `targetId`. A plugin may always call itself. */
export function allowsCall(permissions: readonly string[] | undefined, callerId: string, targetId: string): boolean {
  if (callerId === targetId) return true;
  for (const entry of permissions ?? []) {
    if (!entry.startsWith(CALL_PERMISSION_PREFIX)) continue;
    const target = entry.slice(CALL_PERMISSION_PREFIX.length);
    if (target === '*' || target === targetId) return true;
    if (target.endsWith('.*') && targetId.startsWith(target.slice(0, -1))) return true;
  }
  return false;
}

/** True when `permissions` list the integrator method `method` (a `plugins.call:` entry never counts). */
export function allowsInvoke(permissions: readonly string[] | undefined, method: string): boolean {
  return !method.startsWith(CALL_PERMISSION_PREFIX) && (permissions ?? []).includes(method);
}

/** True when a plugin may not publish on `topic` because the host keeps it. */
export function isHostTopic(topic: string): boolean {
  return topic.startsWith(HOST_TOPIC_PREFIX);
}
