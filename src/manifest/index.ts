/** Plugin manifests: types, loading, validation, settings and platform choice. */
export * from './types';
export { loadManifest, parseManifest, parseManifestUnchecked, findManifestFile, formatOf, MAX_MANIFEST_BYTES, MAX_YAML_ALIASES } from './load';
export type { LoadedManifest } from './load';
export { validateManifest, ID_PATTERN, ID_LENGTH } from './validate';
export { relativePathProblem } from './check';
export { validateConfig, maskSecrets, isMissing, SECRET_MASK, MAX_LIST_ITEMS } from './settings';
export { selectExecutable, platformKey } from './platform';
export type { LaunchTarget } from './platform';
export { referencedFiles } from './files';
export * from './permissions';
export { settingsTypeSource, isGeneratedSettingsTypes, SETTINGS_TYPES_HEADER } from './settings-types';
