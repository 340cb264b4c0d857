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

type Method = {
  path: string; requestStream: boolean; responseStream: boolean; originalName?: string;
  requestSerialize(v: unknown): Buffer; requestDeserialize(b: Buffer): unknown;
  responseSerialize(v: unknown): Buffer; responseDeserialize(b: Buffer): unknown;
};
type Services = Record<string, Record<string, Method>>;

const ours = packageDefinition(descriptors as unknown as Descriptors) as unknown as Services;
const theirs = protoLoader.fromJSON(descriptors.root as Parameters<typeof protoLoader.fromJSON>[0], PROTO_LOADER_OPTIONS) as unknown as Record<string, unknown>;
const root = protobuf.Root.fromJSON(descriptors.root as protobuf.INamespace).resolveAll();

/** A small seeded PRNG (mulberry32), so a failure names a seed that repeats it. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXT = ['', 'a', 'héllo', 'nul\u0000in', '😀', 'plughost.v1', ' '.repeat(3)];

function scalar(type: string, rnd: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  switch (type) {
    case 'string': return pick(TEXT);
    case 'bytes': return Buffer.from(Array.from({ length: Math.floor(rnd() * 6) }, () => Math.floor(rnd() * 256)));
    case 'bool': return rnd() < 0.5;
    case 'double': return pick([0, 1.5, -2.25, 1e300, Number.MIN_VALUE]);
    case 'float': return pick([0, 0.5, -1.25, 1024]);
    case 'int32': case 'sint32': case 'sfixed32': return pick([0, 1, -1, 2147483647, -2147483648, 300]);
    case 'uint32': case 'fixed32': return pick([0, 1, 127, 128, 4294967295]);
    case 'int64': case 'sint64': case 'sfixed64': return pick(['0', '1', '-1', '9007199254740993', '-9223372036854775808']);
    case 'uint64': case 'fixed64': return pick(['0', '1', '18446744073709551615', '4294967296']);
    default: throw new Error(`no generator for scalar ${type}`);
  }
}

/** A random object of `type`, as a caller hands it to grpc-js (only one member set per oneof). */
function sample(type: protobuf.Type, rnd: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const oneofTaken = new Set<string>();
  const value = (field: protobuf.Field): unknown => {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) return depth < 3 ? sample(resolved, rnd, depth + 1) : {};
    if (resolved instanceof protobuf.Enum) {
      const names = Object.keys(resolved.values);
      return names[Math.floor(rnd() * names.length)];
    }
    return scalar(field.type, rnd);
  };
  for (const field of type.fieldsArray) {
    if (rnd() < 0.3) continue;
    if (field.partOf) {
      if (oneofTaken.has(field.partOf.name)) continue;
      oneofTaken.add(field.partOf.name);
    }
    if (field instanceof protobuf.MapField) {
      const entries: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 3); i > 0; i--) entries[String(scalar(field.keyType === 'string' ? 'string' : 'uint32', rnd))] = value(field);
      out[field.name] = entries;
    } else if (field.repeated) {
      out[field.name] = Array.from({ length: Math.floor(rnd() * 4) }, () => value(field));
    } else {
      out[field.name] = value(field);
    }
  }
  return out;
}

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
