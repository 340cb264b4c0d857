/** `plughost conformance`: runs a plugin through the protocol and reports, check by check, whether it conforms. */
export { runConformance, CONFORMANCE_DEFAULTS } from './runner';
export { formatReport, formatCheck, formatHeader, formatSummary } from './report';
export { CHECK_IDS, type CheckId, type CheckResult, type CheckStatus, type ConformanceOptions, type ConformanceReport, type ApiCallRecord } from './types';
