/**
 * The service definitions plughost builds from its JSON descriptors are
 * proto-loader's, minus the reflection descriptors: the same paths, streaming
 * flags and aliases, and, for random messages of every request and response
 * type of proto/, the same bytes when serialized and the same objects when
 * deserialized, both ways.
 */
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import descriptors from '../../src/gen/descriptors.json';
import { packageDefinition, type Descriptors } from '../../src/protocol/package-definition';
import { PROTO_LOADER_OPTIONS } from '../../src/protocol/proto';
import { prng, sample } from '../helpers/proto-samples';

type Method = {
  path: string; requestStream: boolean; responseStream: boolean; originalName?: string;
  requestSerialize(v: unknown): Buffer; requestDeserialize(b: Buffer): unknown;
  responseSerialize(v: unknown): Buffer; responseDeserialize(b: Buffer): unknown;
};
type Services = Record<string, Record<string, Method>>;

const ours = packageDefinition(descriptors as unknown as Descriptors) as unknown as Services;
const theirs = protoLoader.fromJSON(descriptors.root as Parameters<typeof protoLoader.fromJSON>[0], PROTO_LOADER_OPTIONS) as unknown as Record<string, unknown>;
const root = protobuf.Root.fromJSON(descriptors.root as protobuf.INamespace).resolveAll();

const methods = Object.entries(ours).flatMap(([service, defs]) => Object.entries(defs).map(([name, def]) => ({ service, name, def })));

test('the same services and methods as proto-loader, with the same paths, streaming flags and aliases', () => {
  const services = Object.entries(theirs).filter(([, v]) => !(v as { format?: string }).format).map(([k]) => k).sort();
  expect(Object.keys(ours).sort()).toEqual(services);
  expect(methods.length).toBeGreaterThan(30);
  for (const { service, name, def } of methods) {
    const other = (theirs[service] as Record<string, Method>)[name];
    expect({ service, name, path: def.path, rs: def.requestStream, ss: def.responseStream, alias: def.originalName })
      .toEqual({ service, name, path: other.path, rs: other.requestStream, ss: other.responseStream, alias: other.originalName });
  }
});

test('random messages of every request and response type: the same bytes and the same decoded objects both ways', () => {
  const ROUNDS = 40;
  for (const { service, name, def } of methods) {
    const other = (theirs[service] as Record<string, Method>)[name];
    const method = root.lookupService(service).methods[name];
    for (const [side, typeName] of [['request', method.requestType], ['response', method.responseType]] as const) {
      const type = root.lookupType(typeName);
      const serialize = side === 'request' ? [def.requestSerialize, other.requestSerialize] : [def.responseSerialize, other.responseSerialize];
      const deserialize = side === 'request' ? [def.requestDeserialize, other.requestDeserialize] : [def.responseDeserialize, other.responseDeserialize];
      for (let seed = 1; seed <= ROUNDS; seed++) {
        const message = sample(type, prng(seed * 7919 + name.length));
        const [a, b] = serialize.map((s) => s(message));
        const where = `${service}/${name} ${side} seed ${seed}`;
        expect({ where, bytes: a.toString('hex') }).toEqual({ where, bytes: b.toString('hex') });
        expect({ where, decoded: deserialize[0](a) }).toEqual({ where, decoded: deserialize[1](a) });
      }
    }
  }
});

test('an array where a message belongs is refused with proto-loader\'s words', () => {
  const { def } = methods.find((m) => m.name === 'RunHook')!;
  const other = (theirs['plughost.v1.Hooks'] as Record<string, Method>).RunHook;
  expect(() => def.requestSerialize([])).toThrow(/expected object with .* structure, got array instead/);
  expect(() => other.requestSerialize([])).toThrow(/expected object with .* structure, got array instead/);
});
