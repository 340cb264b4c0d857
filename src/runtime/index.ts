export { PluginHost, DEFAULTS, DEFAULT_HEARTBEAT_INTERVAL_MS } from './plugin-host';
export { NODE_ID_PATTERN, NODE_ID_RULE } from './node-id';
export type * from './types';
