/**
 * Plugins in other languages, end to end through the REST server: the Python
 * example (Debian's python3-grpcio) and the Go example (go-plugin 1.0.1) are
 * packed, uploaded, enabled, called over plugin HTTP (ServeHTTP, with KV
 * through the broker), run as filters through the host, and removed.
 * Without the Debian packages these say what to install and skip, unless
 * PLUGHOST_REQUIRE_INTEROP=1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { packBundle } from '../../src/bundle';
import { startServer } from '../../src/server';
import { describeWith, goPeer, isAliveAfter, pythonPeer } from '../conformance/polyglot-peers';
import { tempDir } from '../helpers';

const TOKEN = 'polyglot-e2e-token-of-at-least-32-chars';
type Server = Awaited<ReturnType<typeof startServer>>;

interface Example {
  name: string;
  id: string;
  language: string;
  peer: ReturnType<typeof pythonPeer>;
}

const goStage = tempDir('phgoe-');
afterAll(() => goStage.cleanup());
const examples: Example[] = [
  { name: 'Python example (Debian python3-grpcio)', id: 'com.example.python', language: 'python', peer: pythonPeer() },
  { name: 'Go example (Debian go-plugin 1.0.1)', id: 'com.example.go', language: 'go', peer: goPeer(goStage.dir) },
];

async function api(server: Server, method: string, url: string, body?: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/gzip' } : {}) },
    body,
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function start(dir: string): Promise<Server> {
  return startServer({ dataDir: path.join(dir, 'data'), port: 0, host: '127.0.0.1', adminToken: TOKEN, logger: pino({ level: 'silent' }) });
}

async function installAndEnable(server: Server, dir: string, example: Example): Promise<void> {
  const bundle = path.join(dir, `${example.language}.tar.gz`);
  await packBundle(example.peer.ok ? example.peer.dir : '', bundle);
  const installed = await api(server, 'POST', '/api/v1/plugins', fs.readFileSync(bundle));
  expect(installed).toMatchObject({ status: 201, json: { id: example.id, enabled: false } });
  const enabled = await api(server, 'POST', `/api/v1/plugins/${example.id}/enable`);
  expect(enabled).toMatchObject({ status: 200, json: { id: example.id, state: 'running', hooks: ['NoteWillBeSaved'] } });
}

for (const example of examples) {
  describeWith(example.peer, example.name)(`${example.name} through the REST API`, () => {
    let work: ReturnType<typeof tempDir>;
    let server: Server;
    beforeAll(async () => {
      work = tempDir('phe2e-');
      server = await start(work.dir);
      await installAndEnable(server, work.dir, example);
    });
    afterAll(async () => {
      await server?.close();
      work.cleanup();
    });

    test('Implemented and OnActivate: running, its hook listed, and KV reached through the broker during activation', async () => {
      const got = await api(server, 'GET', `/api/v1/plugins/${example.id}`);
      expect(got.json).toMatchObject({ state: 'running', lastError: null, hooks: ['NoteWillBeSaved'] });
      // The plugin read and wrote its activation counter in KV, then logged it through the API.
      const logged = server.host.logs(example.id).find((r) => r.source === 'api');
      expect(logged).toMatchObject({ level: 'info', message: `${example.language} plugin activated`, fields: { activations: 1 } });
    });

    test('ServeHTTP: GET /hello counts visits in KV, other routes are 404', async () => {
      const first = await fetch(`${server.url}/plugins/${example.id}/hello`);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toContain('application/json');
      expect(await first.json()).toEqual({ greeting: `Hello from ${example.language === 'go' ? 'Go' : 'Python'}`, visits: 1 });
      const counts = await Promise.all(Array.from({ length: 5 }, () => fetch(`${server.url}/plugins/${example.id}/hello`).then((r) => r.json() as Promise<{ visits: number }>)));
      expect(counts.map((c) => c.visits).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6]);
      expect((await fetch(`${server.url}/plugins/${example.id}/nope`)).status).toBe(404);
    });

    test('the NoteWillBeSaved filter changes the note, and rejects an empty one', async () => {
      expect(await server.host.filter('NoteWillBeSaved', { id: 'n1', text: '  buy   milk ', tags: ['shopping'] })).toMatchObject({
        rejected: false,
        payload: { id: 'n1', text: 'buy milk', tags: ['shopping', example.language] },
      });
      expect(await server.host.filter('NoteWillBeSaved', { id: 'n2', text: ' ' })).toMatchObject({ rejected: true, reason: 'a note needs some text', by: example.id });
    });

    test('DELETE stops and removes it', async () => {
      const pid = (await server.host.get(example.id)).pid!;
      expect((await api(server, 'DELETE', `/api/v1/plugins/${example.id}`)).status).toBeLessThan(300);
      expect((await api(server, 'GET', `/api/v1/plugins/${example.id}`)).status).toBe(404);
      expect(await isAliveAfter(pid, 5_000)).toBe(false);
    });
  });
}

const both = examples.every((e) => e.peer.ok) ? describe : describe.skip;
both('Go and Python plugins in one host', () => {
  test('a filter chain runs through both, in plugin-id order', async () => {
    const work = tempDir('phe2e-');
    const server = await start(work.dir);
    try {
      for (const example of examples) await installAndEnable(server, work.dir, example);
      const result = await server.host.filter('NoteWillBeSaved', { id: 'n3', text: 'hello  world' });
      expect(result).toMatchObject({ rejected: false, payload: { text: 'hello world', tags: ['go', 'python'] } });
      expect(result.steps.map((s) => [s.pluginId, s.outcome])).toEqual([
        ['com.example.go', 'changed'],
        ['com.example.python', 'changed'],
      ]);
      // Past grpc's 4 MiB default: each example applies the host's PLUGHOST_MAX_MESSAGE_BYTES (64 MiB).
      const big = await server.host.filter('NoteWillBeSaved', { id: 'n4', text: 'x'.repeat(5 * 1024 * 1024) });
      expect(big.steps.map((s) => [s.pluginId, s.outcome, s.error])).toEqual([
        ['com.example.go', 'changed', undefined],
        ['com.example.python', 'changed', undefined],
      ]);
      expect((big.payload as { text: string }).text).toHaveLength(5 * 1024 * 1024);
    } finally {
      await server.close();
      work.cleanup();
    }
  });
});
