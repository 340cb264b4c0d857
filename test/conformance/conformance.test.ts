/**
 * plughost conformance against the example plugins (TypeScript, Python, Go),
 * a plugin that passes everything, and one deliberately broken plugin per
 * check, each of which must fail that check and only that one.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packBundle } from '../../src/bundle';
import { runConformance, type CheckId, type ConformanceReport } from '../../src/conformance';
import { NODE, tempDir } from '../helpers';
import { ROOT, describeWith, goPeer, pythonPeer } from './polyglot-peers';

const BIN = path.join(ROOT, 'bin', 'plughost.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'conformance');
// Roomy: a refusing fixture exits and one that ignores the cookie prints its line long before this.
const fixture = (name: string) => ({ target: NODE, args: [path.join(FIXTURES, `${name}.js`)], cookieWaitMs: 15_000 });

let work: ReturnType<typeof tempDir>;
beforeAll(() => {
  work = tempDir('phct-');
});
afterAll(() => work.cleanup());

function failed(report: ConformanceReport): CheckId[] {
  return report.checks.filter((c) => c.status === 'fail').map((c) => c.id);
}

function expectConforms(report: ConformanceReport): void {
  const problems = report.checks.filter((c) => c.status === 'fail').map((c) => `${c.title}: expected ${c.expected}; got ${c.got}`);
  expect(problems).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.checks.map((c) => c.id)).toEqual(expect.arrayContaining(['cookie', 'handshake', 'health', 'implemented', 'activate', 'hook', 'shutdown']));
}

test('a plugin that keeps every rule passes every check, in order', async () => {
  const report = await runConformance(fixture('good'));
  expectConforms(report);
  expect(report.checks.map((c) => [c.id, c.status])).toEqual([
    ['cookie', 'pass'],
    ['handshake', 'pass'],
    ['health', 'pass'],
    ['implemented', 'pass'],
    ['activate', 'pass'],
    ['hook', 'pass'],
    ['hook-stream', 'pass'],
    ['hook-batch-stream', 'pass'],
    ['http', 'pass'],
    ['http-stream', 'skip'],
    ['http-side-channel', 'skip'],
    ['api-stream', 'pass'],
    ['shutdown', 'pass'],
  ]);
  expect(report.apiCalls).toEqual([
    { method: 'KVSet', outcome: 'OK', during: 'activate' },
    { method: 'GetHostVersion', outcome: 'OK', during: 'activate' },
  ]);
  expect(report.checks.find((c) => c.id === 'activate')!.detail).toContain('called KVSet (OK), GetHostVersion (OK)');
  expect(report.checks.find((c) => c.id === 'hook-batch-stream')!.detail).toMatch(/^OK; 8 interleaved calls of Sample \(5 a message\) each answered once/);
  expect(report.checks.find((c) => c.id === 'api-stream')!.detail).toBe('2 calls in 1 messages on 1 stream, each naming its method under its own call_id; 2 answered by id');
});

const broken: Array<[string, CheckId, RegExp, RegExp]> = [
  ['no-cookie', 'cookie', /exit 1 without serving/, /printed "1\|1\|unix\|.*\|grpc\|" and kept running/],
  ['bad-handshake', 'handshake', /CORE\|APP\|NETWORK\|ADDRESS\|grpc\|CERT/, /protocol "netrpc" .* is not supported/],
  ['unhealthy', 'health', /SERVING/, /NOT_SERVING/],
  ['bad-implemented', 'implemented', /methods from OnActivate/, /unknown method names "ServeHttp"/],
  ['activate-fails', 'activate', /OnActivate to return OK \(the API is served on broker id 1\)/, /UNAVAILABLE: no API on broker id 101/],
  ['hook-unimplemented', 'hook', /handle every hook listed/, /UNIMPLEMENTED: unknown hook Sample/],
  ['stream-never-ends', 'hook-stream', /ends the stream with OK/, /the stream stayed open/],
  ['batch-answers-one', 'hook-batch-stream', /for every call of every RunHookBatch/, /^no answer for call_id 2, 3, 4, 5, 7, 8$/],
  ['http-no-head', 'http', /head\.status 100-599/, /without head/],
  ['http-stream-no-credit', 'http-stream', /body only within the credit granted/, /exchange a: the plugin sent more response body than the host granted/],
  ['api-stream-reused-id', 'api-stream', /a call_id that no other call in flight on the same stream has/, /^call_id 1 came again on stream 1 while the call with that id was still in flight$/],
  ['side-channel-truncated', 'http-side-channel', /body_channel_bytes equal to the bytes sent/, /the upload: .*truncated body: the side channel carried 2096153 bytes, the sender counted 2097153/],
  ['ignores-shutdown', 'shutdown', /exits with code 0 within the grace period/, /still running 1000 ms after Shutdown/],
];

describe.each(broken)('broken plugin %s', (name, check, expected, got) => {
  test(`fails the ${check} check, and only that one, saying what was expected and what came`, async () => {
    const report = await runConformance({ ...fixture(name), graceMs: 1000 });
    expect(failed(report)).toEqual([check]);
    expect(report.ok).toBe(false);
    const failure = report.checks.find((c) => c.status === 'fail')!;
    expect(failure.expected).toMatch(expected);
    expect(failure.got).toMatch(got);
  });
});

test('a plugin on the raw protocol that takes side channels passes their check: the upload echoed byte for byte, the cancel left nothing', async () => {
  const report = await runConformance(fixture('side-channel-good'));
  expectConforms(report);
  const check = report.checks.find((c) => c.id === 'http-side-channel')!;
  expect(check.status).toBe('pass');
  expect(check.detail).toMatch(/^POST \/ answered 200 with 2097153 body bytes \(the upload echoed byte for byte\); an upload cancelled after \d+ of 67108864 bytes left nothing behind; GET \/ after it answered 200$/);
});

test('a plugin that throws at import fails the cookie check: exiting 1 is not a refusal', async () => {
  const report = await runConformance(fixture('throws-at-import'));
  const cookie = report.checks.find((c) => c.id === 'cookie')!;
  expect(cookie.status).toBe('fail');
  expect(cookie.expected).toMatch(/print go-plugin's refusal \("This binary is a plugin\. These are not meant to be executed directly\."\)/);
  expect(cookie.got).toMatch(/^it exited with code 1 without printing the refusal; last stderr lines: .*Error: fixture: settings module failed to load.*Node\.js v/);
  expect(report.ok).toBe(false);
});

test('the TypeScript hello example, packed, conforms', async () => {
  const bundle = path.join(work.dir, 'hello.tar.gz');
  const packed = spawnSync(NODE, [BIN, 'pack', path.join(ROOT, 'examples', 'hello'), '-o', bundle], { encoding: 'utf8' });
  expect(packed.stderr).toBe('');
  const report = await runConformance({ target: bundle });
  expectConforms(report);
  expect(report.pluginId).toBe('com.example.hello');
  expect(report.checks.filter((c) => c.id === 'hook').map((c) => c.title)).toEqual(['RunHook "NoteWillBeSaved" with payload {}', 'RunHook "NoteSaved" with payload {}']);
  // The SDK offers ServeHTTPStream beside ServeHTTP: both are checked.
  expect(report.checks.filter((c) => c.id.startsWith('http')).map((c) => [c.id, c.status])).toEqual([['http', 'pass'], ['http-stream', 'pass'], ['http-side-channel', 'pass']]);
  // Both hook streams, and the API over CallStream (its onActivate logs, its hooks use KV).
  expect(report.checks.filter((c) => c.id.endsWith('-stream') && !c.id.startsWith('http')).map((c) => [c.id, c.status])).toEqual([['hook-stream', 'pass'], ['hook-batch-stream', 'pass'], ['api-stream', 'pass']]);
  expect(report.apiCalls.length).toBeGreaterThan(0);
});

const python = pythonPeer();
describeWith(python, 'Python example (Debian python3-grpcio)')('the Python example', () => {
  test('packed as a bundle, conforms; OnActivate reaches KV through the broker', async () => {
    const bundle = path.join(work.dir, 'python.tar.gz');
    await packBundle(path.join(ROOT, 'examples', 'python'), bundle);
    const report = await runConformance({ target: bundle });
    expectConforms(report);
    expect(report.apiCalls.filter((c) => c.during === 'activate').map((c) => c.method)).toEqual(['KVGet', 'KVSet', 'Log']);
    expect(report.checks.find((c) => c.id === 'http')!.detail).toMatch(/^200, \d+ body bytes \(application\/json\)$/);
    expect(report.checks.find((c) => c.id === 'http-stream')!.status).toBe('skip');
    // Unary API calls and unary hooks only: the stream checks skip, saying why.
    expect(report.checks.find((c) => c.id === 'api-stream')!.detail).toMatch(/^the plugin made its \d+ API calls unary, which is fine/);
    expect(report.checks.find((c) => c.id === 'hook-batch-stream')!.status).toBe('skip');
  });
});

const goStage = path.join(tempDir('phgo-').dir);
const go = goPeer(goStage);
afterAll(() => fs.rmSync(goStage, { recursive: true, force: true }));
describeWith(go, 'Go example (Debian go-plugin 1.0.1)')('the Go example (go-plugin 1.0.1)', () => {
  test('packed as a bundle, conforms; OnActivate reaches KV through the broker', async () => {
    const bundle = path.join(work.dir, 'go.tar.gz');
    await packBundle(goStage, bundle);
    const report = await runConformance({ target: bundle });
    expectConforms(report);
    expect(report.apiCalls.filter((c) => c.during === 'activate').map((c) => c.method)).toEqual(['KVGet', 'KVSet', 'Log']);
  });
});

describe('the plughost conformance command', () => {
  const cli = (...args: string[]) => spawnSync(NODE, [BIN, 'conformance', ...args], { encoding: 'utf8', timeout: 60_000 });

  test('prints a report and exits 0 for a conforming plugin; --json prints the report object', () => {
    const text = cli(NODE, path.join(FIXTURES, 'good.js'));
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/PASS {2}refuses to run without PLUGHOST_PLUGIN=plughost/);
    expect(text.stdout).toMatch(/11 passed, 0 failed, 2 skipped .*: the plugin conforms/);
    const json = cli('--json', NODE, path.join(FIXTURES, 'good.js'));
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as ConformanceReport;
    expect(report.ok).toBe(true);
    expect(report.checks).toHaveLength(13);
  });

  test('exits 1 and shows expected and got for a failing plugin', () => {
    const r = cli('--grace-ms', '500', NODE, path.join(FIXTURES, 'ignores-shutdown.js'));
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}Controller\.Shutdown, then exit within 500 ms/);
    expect(r.stdout).toMatch(/expected: after GRPCController\/Shutdown/);
    expect(r.stdout).toMatch(/got: +still running 500 ms after Shutdown/);
  });

  test('a wrong command line is a usage error', () => {
    const r = cli();
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('usage: plughost conformance');
  });
});
