/**
 * The API service a conformance run serves the plugin over the broker: the
 * runtime's own implementation (same validation, same gRPC codes) over an
 * in-memory store, with every call recorded so the report can say what the
 * plugin did with it.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import { validateConfig, type Manifest, type PluginConfig } from '../manifest';
import type { ServiceRegistration } from '../protocol/broker';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../protocol/limits';
import { apiService, type ApiHost } from '../runtime/api-service';
import { LogBuffer } from '../runtime/log-buffer';
import { RuntimeMetrics } from '../runtime/metrics';
import type { PluginSupervisor } from '../runtime/supervisor';
import type { PluginLogEntry } from '../runtime/types';
import { watchCallStreams, type CallStreamRecord } from './api-stream-check';
import { MemoryStore } from './memory-store';
import type { ApiCallRecord, CheckId } from './types';

export interface ApiDouble {
  /** The API service as the runtime serves it (unary methods and CallStream), recording calls. */
  registration: ServiceRegistration;
  calls: ApiCallRecord[];
  /** The plugin's configuration: the manifest's defaults, or what it saved since. */
  readonly config: PluginConfig;
  /** What came over the plugin's API.CallStream streams. */
  streams: CallStreamRecord;
  /** Records sent through API.Log. */
  logs: PluginLogEntry[];
  /** Events sent through API.PublishEvent. */
  published: Array<{ topic: string; payload: unknown }>;
  /** Which check later calls are attributed to. */
  setPhase(phase: CheckId): void;
  close(): Promise<void>;
}

const LOG_CAPACITY = 200;

/** The configuration the plugin starts with: the schema's defaults, or {} when they do not validate. */
export function defaultConfig(manifest: Manifest): PluginConfig {
  try {
    return validateConfig(manifest.settings_schema, {});
  } catch {
    return {};
  }
}

export function createApiDouble(manifest: Manifest, hostVersion: string, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): ApiDouble {
  const store = new MemoryStore();
  const config = defaultConfig(manifest);
  const logs = new LogBuffer<PluginLogEntry>(LOG_CAPACITY);
  const calls: ApiCallRecord[] = [];
  const published: ApiDouble['published'] = [];
  let phase: CheckId = 'activate';

  // apiImplementation reads only these members of the calling plugin's supervisor.
  const subject: Pick<PluginSupervisor, 'id' | 'record' | 'logs' | 'log'> = {
    id: manifest.id,
    logs,
    record: {
      generation: 1,
      id: manifest.id,
      manifest,
      version: manifest.version,
      enabled: true,
      state: 'running',
      lastError: null,
      config,
      bundleSha256: '',
      installedAt: Date.now(),
      updatedAt: Date.now(),
    },
    log: (level, message, fields = {}, source = 'host') => logs.push({ level, message, fields, time: Date.now(), source, pluginId: manifest.id }),
  };
  void store.putPlugin(subject.record);

  const host: ApiHost = {
    store,
    metrics: new RuntimeMetrics(),
    hostVersion,
    api: {},
    saveConfig: async (_id, next) => {
      const validated = validateConfig(manifest.settings_schema, next, subject.record.config);
      subject.record.config = validated;
      return validated;
    },
    publish: async (topic, payload) => void published.push({ topic, payload }),
    callPlugin: async (_caller, target) => {
      throw Errors.PLUGIN_NOT_FOUND(target);
    },
  };

  const service = apiService(host, subject as PluginSupervisor, {
    maxMessageBytes,
    observe: (method) => {
      const record: ApiCallRecord = { method, outcome: 'pending', during: phase };
      calls.push(record);
      return (status) => {
        record.outcome = status ? grpc.status[status.code] ?? 'UNKNOWN' : 'OK';
        if (status) record.error = status.details;
      };
    },
  });

  const watched = watchCallStreams(service.registration);
  return {
    registration: watched.registration,
    streams: watched.record,
    calls,
    get config() {
      return subject.record.config;
    },
    get logs() {
      return logs.toArray();
    },
    published,
    setPhase: (next) => {
      phase = next;
    },
    close: async () => {
      service.close('the conformance run ended');
      await store.close();
    },
  };
}
