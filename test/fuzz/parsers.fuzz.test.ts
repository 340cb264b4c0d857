/**
 * Property-based runs over the parsers that take untrusted input. Fixed seeds,
 * so CI runs the same cases every time; a failure found here becomes a regular
 * test beside the parser's own tests.
 */
import fc from 'fast-check';
import { PlughostError } from '../../src/errors';
import { formatHandshakeLine, parseHandshakeLine } from '../../src/protocol/handshake';
import { LineSplitter, parseLogLine } from '../../src/protocol/log-lines';
import { generateIdentity } from '../../src/protocol/mtls';
import { parseManifest } from '../../src/manifest';

const RUNS = 3000;
const cert = generateIdentity().certDer;

/** Throws anything but a PlughostError: a parser must fail only in its own words. */
function onlyOurErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PlughostError)) throw err;
  }
}

describe('handshake parser', () => {
  test('any string: a parsed line or HANDSHAKE_BAD_LINE quoting it, never another error', () => {
    const field = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('1', '2', 'unix', 'tcp', 'grpc', 'netrpc', '', 'true', '127.0.0.1:1', '/tmp/s.sock'));
    const line = fc.oneof(fc.string({ maxLength: 200 }), fc.array(field, { maxLength: 9 }).map((f) => f.join('|')));
    fc.assert(
      fc.property(line, (l) => {
        try {
          const parsed = parseHandshakeLine(l);
          expect(['unix', 'tcp']).toContain(parsed.network);
          expect(parsed.protocol).toBe('grpc');
        } catch (err) {
          expect(err).toBeInstanceOf(PlughostError);
          expect((err as PlughostError).code).toBe('PLUGHOST_ERR_HANDSHAKE_BAD_LINE');
        }
      }),
      { seed: 20261127, numRuns: RUNS },
    );
  });

  test('every line we format parses back to what was formatted', () => {
    const address = fc.oneof(
      fc.stringMatching(/^\/[a-zA-Z0-9._\/-]{1,60}$/).map((a) => ({ network: 'unix' as const, address: a })),
      fc.tuple(fc.constantFrom('127.0.0.1', 'localhost', '[::1]'), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => ({ network: 'tcp' as const, address: `${h}:${p}` })),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99999 }), address, fc.boolean(), (appVersion, a, tls) => {
        const serverCertDer = tls ? cert : null;
        const parsed = parseHandshakeLine(formatHandshakeLine({ appVersion, ...a, serverCertDer }));
        expect(parsed).toMatchObject({ appVersion, ...a, multiplex: false });
        expect(parsed.serverCertDer?.equals(cert) ?? null).toBe(tls ? true : null);
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});

describe('log lines', () => {
  test('any bytes split and parse without throwing, and no line passes the bound', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        const lines: string[] = [];
        const splitter = new LineSplitter((l) => lines.push(l), 64);
        for (const c of chunks) splitter.push(Buffer.from(c));
        splitter.end();
        for (const l of lines) {
          expect(Buffer.byteLength(l)).toBeLessThanOrEqual(64 * 3);
          parseLogLine(l, 'stderr');
        }
      }),
      { seed: 11, numRuns: RUNS },
    );
  });
});

describe('manifest parser', () => {
  const polluted = () => ({} as Record<string, unknown>).polluted ?? (Object.prototype as Record<string, unknown>).polluted;

  test('any JSON value: a manifest or a manifest error, and Object.prototype untouched', () => {
    const key = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'id', 'name', 'version', 'server', 'executable', 'runtime', 'entry', 'settings_schema', 'settings', 'polluted'));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 5 })),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        onlyOurErrors(() => parseManifest(JSON.stringify(v) ?? 'null', 'json'));
        expect(polluted()).toBeUndefined();
      }),
      { seed: 42, numRuns: RUNS },
    );
  });

  test('raw text as JSON or YAML: parsed or refused in our words', () => {
    const yamlish = fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('id: x', 'a: &a [1,2]', 'b: *a', '<<: *a', '__proto__: {polluted: 1}', '- - -', 'version: 1.0.0', '  ', ': :', '!!js/function x', '"\\u0000"')), { maxLength: 12 }).map((l) => l.join('\n'));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), yamlish), fc.constantFrom('json' as const, 'yaml' as const), (text, format) => {
        onlyOurErrors(() => parseManifest(text, format));
        expect(polluted()).toBeUndefined();
      }),
      { seed: 99, numRuns: RUNS },
    );
  });

  test('valid manifests with random ids and versions are accepted exactly when the rules say so', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (id) => {
        const ok = /^[a-zA-Z0-9._-]{3,190}$/.test(id);
        const manifest = { id, name: 'n', version: '1.0.0', server: { executable: 'bin/run' } };
        let accepted = true;
        try {
          parseManifest(JSON.stringify(manifest), 'json');
        } catch (err) {
          expect(err).toBeInstanceOf(PlughostError);
          accepted = false;
        }
        expect(accepted).toBe(ok);
      }),
      { seed: 3, numRuns: RUNS },
    );
  });
});
