/**
 * Loads the .proto contracts at run time with proto-loader, so no protoc is needed,
 * and exposes typed service constructors from the generated types in src/gen/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as BrokerProto } from '../gen/grpc_broker';
import type { ProtoGrpcType as ControllerProto } from '../gen/grpc_controller';
import type { ProtoGrpcType as StdioProto } from '../gen/grpc_stdio';
import type { ProtoGrpcType as HealthProto } from '../gen/health';

/** The same conversions the generated types were made with (see the `gen` npm script). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The repository's proto/ folder, found from here whether running from src/ (tests) or dist/src/. */
export const PROTO_ROOT = findProtoRoot(__dirname);

function findProtoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const candidate = path.join(dir, 'proto', 'plugin', 'grpc_broker.proto');
    if (fs.existsSync(candidate)) return path.join(dir, 'proto');
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`plughost: cannot find proto/ above ${start}`);
    dir = parent;
  }
}

/** Loads proto files (paths relative to `includeDirs` or absolute) into grpc-js service constructors. */
export function loadProtos(files: string[], includeDirs: string[] = [PROTO_ROOT]): grpc.GrpcObject {
  const definition = protoLoader.loadSync(files, { ...PROTO_LOADER_OPTIONS, includeDirs });
  return grpc.loadPackageDefinition(definition);
}

export interface StandardServices {
  broker: BrokerProto['plugin']['GRPCBroker'];
  controller: ControllerProto['plugin']['GRPCController'];
  stdio: StdioProto['plugin']['GRPCStdio'];
  health: HealthProto['grpc']['health']['v1']['Health'];
}

let standard: StandardServices | undefined;

/** The four services every plugin serves, loaded once per process. */
export function standardServices(): StandardServices {
  if (!standard) {
    const loaded = loadProtos([
      'plugin/grpc_broker.proto',
      'plugin/grpc_controller.proto',
      'plugin/grpc_stdio.proto',
      'grpc/health/v1/health.proto',
    ]) as unknown as BrokerProto & ControllerProto & StdioProto & HealthProto;
    standard = {
      broker: loaded.plugin.GRPCBroker,
      controller: loaded.plugin.GRPCController,
      stdio: loaded.plugin.GRPCStdio,
      health: loaded.grpc.health.v1.Health,
    };
  }
  return standard;
}
