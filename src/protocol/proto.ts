/**
 * The .proto contracts at run time (no protoc needed): proto/'s own services from the
 * JSON descriptors made at build time, anything else with proto-loader; typed service
 * constructors from the generated types in src/gen/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as BrokerProto } from '../gen/grpc_broker';
import type { ProtoGrpcType as ControllerProto } from '../gen/grpc_controller';
import type { ProtoGrpcType as StdioProto } from '../gen/grpc_stdio';
import type { ProtoGrpcType as HealthProto } from '../gen/health';
import descriptors from '../gen/descriptors.json';
import { packageDefinition, type Descriptors } from './package-definition';

/** The same conversions the generated types were made with (see the `gen` npm script). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let protoRootDir: string | undefined;

/** The package's proto/ folder, found from here whether running from src/ (tests), dist/src/ or a bundled plugin. */
export function protoRoot(): string {
  protoRootDir ??= findProtoRoot(__dirname);
  return protoRootDir;
}

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
export function loadProtos(files: string[], includeDirs: string[] = [protoRoot()]): grpc.GrpcObject {
  // Required here, not at the top: a plugin that never loads its own protos never loads proto-loader.
  let loader: typeof protoLoader;
  try {
    loader = require('@grpc/proto-loader') as typeof protoLoader;
  } catch (err) {
    // @plughost/sdk leaves it out (few plugins load protos of their own): say what to install.
    throw new Error(`loadProtos needs @grpc/proto-loader: npm install @grpc/proto-loader (${(err as Error).message.split('\n')[0]})`);
  }
  const definition = loader.loadSync(files, { ...PROTO_LOADER_OPTIONS, includeDirs });
  return grpc.loadPackageDefinition(definition);
}

export interface StandardServices {
  broker: BrokerProto['plugin']['GRPCBroker'];
  controller: ControllerProto['plugin']['GRPCController'];
  stdio: StdioProto['plugin']['GRPCStdio'];
  health: HealthProto['grpc']['health']['v1']['Health'];
}

let ours: grpc.GrpcObject | undefined;

/**
 * Every service of proto/ (go-plugin's, health, and the plughost contract),
 * from the JSON descriptors `npm run gen` makes of proto/: parsing .proto text,
 * or letting proto-loader build reflection descriptors nobody reads, at every
 * plugin start would cost tens of milliseconds of spawn-to-ready.
 */
export function ownProtos(): grpc.GrpcObject {
  ours ??= grpc.loadPackageDefinition(packageDefinition(descriptors as unknown as Descriptors));
  return ours;
}

let standard: StandardServices | undefined;

/** The four services every plugin serves, loaded once per process. */
export function standardServices(): StandardServices {
  if (!standard) {
    const loaded = ownProtos() as unknown as BrokerProto & ControllerProto & StdioProto & HealthProto;
    standard = {
      broker: loaded.plugin.GRPCBroker,
      controller: loaded.plugin.GRPCController,
      stdio: loaded.plugin.GRPCStdio,
      health: loaded.grpc.health.v1.Health,
    };
  }
  return standard;
}
