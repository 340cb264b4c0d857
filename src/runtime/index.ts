export { PluginHost, DEFAULTS } from './plugin-host';
export type * from './types';
