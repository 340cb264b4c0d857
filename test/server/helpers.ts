/** A real server on a loopback port with a data dir of its own, and bundles of the server test plugin. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { packBundle } from '../../src/bundle';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server';
import { FIXTURES, tempDir } from '../helpers';

export const TOKEN = 'test-admin-token-of-at-least-32-chars';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface TestServer extends RunningServer {
  work: string;
  stop(): Promise<void>;
}

export async function testServer(extra: Partial<ServerOptions> = {}): Promise<TestServer> {
  const work = tempDir();
  const server = await startServer({ dataDir: path.join(work.dir, 'data'), port: 0, adminToken: TOKEN, logger: pino({ level: 'silent' }), ...extra }).catch((err: unknown) => {
    work.cleanup();
    throw err;
  });
  return {
    ...server,
    work: work.dir,
    stop: async () => {
      await server.close();
      work.cleanup();
    },
  };
}

/** Packs a bundle whose entry runs `fixture` (a file under test/fixtures). */
export async function pluginBundle(workDir: string, id: string, fixture: string, extra: Record<string, unknown> = {}): Promise<string> {
  const dir = path.join(workDir, `src-${id}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir, { recursive: true });
  const manifest = { id, name: id, version: '1.0.0', server: { runtime: 'node', entry: 'main.js' }, ...extra };
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'main.js'), `require(${JSON.stringify(path.join(FIXTURES, fixture))});\n`);
  fs.mkdirSync(path.join(dir, 'public', 'css'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), '<h1>static</h1>');
  fs.writeFileSync(path.join(dir, 'public', 'css', 'site.css'), 'body{}');
  const out = `${dir}.tar.gz`;
  await packBundle(dir, out);
  return out;
}

/** Uploads a bundle as multipart and returns the response. */
export async function upload(url: string, bundle: string, query = '', headers: Record<string, string> = AUTH): Promise<Response> {
  const form = new FormData();
  form.append('plugin', new Blob([fs.readFileSync(bundle)]), path.basename(bundle));
  return fetch(`${url}/api/v1/plugins${query}`, { method: 'POST', headers, body: form });
}

/** Polls `read` every 50 ms until `done` says so; fails after `tries`, naming what it saw last. */
export async function pollUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, tries = 200): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < tries; i++) {
    last = await read();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}

