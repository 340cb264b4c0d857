/** Provisioning: `plughost serve --config file` declares server settings and plugins; the host converges to them at start. */
export { loadProvisionFile, parseProvisionText, checkProvision, MAX_PROVISION_ALIASES, MAX_PROVISION_BYTES, SERVER_LOG_LEVELS, HEADER_NAME } from './config-file';
export type { ProvisionFile, ProvisionServerSettings, PluginDeclaration } from './config-file';
export { planProvision, converge, formatReport } from './converge';
export type { PlannedPlugin, ProvisionChange, ProvisionReport, ConvergeOptions, ChangeAction } from './converge';
