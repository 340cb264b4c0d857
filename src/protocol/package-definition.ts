/**
 * grpc-js service definitions for proto/, made straight from the protobufjs
 * JSON that `npm run gen` writes (src/gen/descriptors.json). proto-loader's
 * `fromJSON` would do the same and more: it also builds a descriptor proto of
 * every message and file (for gRPC reflection, which plughost does not serve),
 * which costs a plugin milliseconds at every start, and loading proto-loader
 * itself costs more. The conversions are proto-loader's, with the options the
 * generated types in src/gen/ assume, so both produce the same bytes and the
 * same objects (test/protocol/package-definition.test.ts checks it, fuzzed).
 */
import type * as grpc from '@grpc/grpc-js';

/** What grpc.loadPackageDefinition takes (grpc-js does not export the type by name). */
export type PackageDefinition = Parameters<typeof grpc.loadPackageDefinition>[0];
import * as protobuf from 'protobufjs/light';

/** The conversions of decoded messages: proto-loader's options as the `gen` npm script uses them. */
export const CONVERSION: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

export interface Descriptors {
  /** protobufjs JSON of every .proto under proto/. */
  root: protobuf.INamespace;
  /** `package.Service/Method` → the lowerCamel alias grpc-js also offers (proto-loader's originalName). */
  originalNames: Record<string, string>;
}

function serializer(type: protobuf.Type): grpc.serialize<unknown> {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    return type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): grpc.deserialize<unknown> {
  return (bytes) => type.toObject(type.decode(bytes), CONVERSION);
}

/** Every service of `descriptors`, by full name, as grpc.loadPackageDefinition takes them. */
export function packageDefinition(descriptors: Descriptors): PackageDefinition {
  const root = protobuf.Root.fromJSON(descriptors.root);
  root.resolveAll();
  const definition: Record<string, Record<string, grpc.MethodDefinition<unknown, unknown>>> = {};
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        const serviceName = obj.fullName.slice(1);
        const service: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
        for (const method of obj.methodsArray) {
          const request = method.resolvedRequestType!;
          const response = method.resolvedResponseType!;
          const path = `${serviceName}/${method.name}`;
          service[method.name] = {
            path: `/${path}`,
            requestStream: Boolean(method.requestStream),
            responseStream: Boolean(method.responseStream),
            requestSerialize: serializer(request),
            requestDeserialize: deserializer(request),
            responseSerialize: serializer(response),
            responseDeserialize: deserializer(response),
            originalName: descriptors.originalNames[path],
          };
        }
        definition[serviceName] = service;
      } else if (obj instanceof protobuf.Namespace) {
        walk(obj);
      }
    }
  };
  walk(root);
  return definition;
}
