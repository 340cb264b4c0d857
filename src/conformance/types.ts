/** What a conformance run takes and what it reports. */
import type { PluginLogRecord } from '../protocol/log-lines';

/** The checks, in the order they run. */
export const CHECK_IDS = ['cookie', 'handshake', 'health', 'implemented', 'activate', 'hook', 'hook-stream', 'hook-batch-stream', 'http', 'http-stream', 'http-side-channel', 'api-stream', 'shutdown'] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  id: CheckId;
  /** One line naming what was checked, e.g. "RunHook NoteWillBeSaved with {}". */
  title: string;
  status: CheckStatus;
  /** What happened, in a sentence: for a pass, what the plugin did; for a skip, why. */
  detail: string;
  /** For a failure: what the protocol expects. */
  expected?: string;
  /** For a failure: what came instead. */
  got?: string;
  /** Things worth knowing that are not failures. */
  notes?: string[];
}

/** One call the plugin made into the API service the run served it. */
export interface ApiCallRecord {
  method: string;
  /** "OK" or the gRPC status name the call ended with. */
  outcome: string;
  /** The error message when the call failed. */
  error?: string;
  /** During which check the call arrived. */
  during: CheckId;
}

export interface ConformanceReport {
  /** What was run, as given. */
  target: string;
  /** How it was run: the command line, and the manifest's id and version when there is one. */
  command: string[];
  pluginId: string;
  version?: string;
  ok: boolean;
  checks: CheckResult[];
  apiCalls: ApiCallRecord[];
  /** The plugin's last log records (stderr, and stdout after the handshake), oldest first. */
  logs: PluginLogRecord[];
  durationMs: number;
}

export interface ConformanceOptions {
  /** An executable, a bundle (.tar.gz) or a plugin folder with a manifest. */
  target: string;
  /** Arguments for a bare executable (a manifest's own `args` are used otherwise). */
  args?: string[];
  /** For the handshake line and for OnActivate. Default: the manifest's limits.start_timeout_ms, else 20 s. */
  startTimeoutMs?: number;
  /** Deadline of each other call. Default: the manifest's limits.hook_timeout_ms, else 5 s. */
  callTimeoutMs?: number;
  /** How long the plugin has to exit after Controller.Shutdown. Default 2 s, as the host's default. */
  graceMs?: number;
  /** How long a plugin started without the cookie has to exit. Default 3 s. */
  cookieWaitMs?: number;
  /** Run with AutoMTLS (the host's PLUGIN_CLIENT_CERT) instead of plaintext. */
  autoMTLS?: boolean;
  /** Receives each check as it finishes. */
  onCheck?: (result: CheckResult) => void;
}
