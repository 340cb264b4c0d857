/** plughost: the host's public surface. */
export * from './protocol';
export { PlughostError, Errors, isError } from './errors';
