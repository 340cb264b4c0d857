/** Seeded random protobuf messages for byte-for-byte tests of codecs against protobufjs. */
import * as protobuf from 'protobufjs';

/** A small seeded PRNG (mulberry32), so a failure names a seed that repeats it. */
export function prng(seed: number): () => number {
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
export function sample(type: protobuf.Type, rnd: () => number, depth = 0): Record<string, unknown> {
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

