/** The admin token: at least 32 characters wherever it comes from, refused at start with the reason. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { plughostRoutes, resolveAdminToken, startServer } from '../../src/server';
import { tempDir } from '../helpers';

const SHORT = 'x'.repeat(31);

test('startServer refuses a short adminToken before anything starts', async () => {
  const work = tempDir();
  try {
    await expect(startServer({ dataDir: path.join(work.dir, 'data'), port: 0, adminToken: SHORT, logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'PLUGHOST_ERR_ADMIN_TOKEN_TOO_SHORT',
      message: expect.stringMatching(/^the admin token from the adminToken option is 31 characters; at least 32 are required/),
    });
    expect(fs.existsSync(path.join(work.dir, 'data'))).toBe(false);
  } finally {
    work.cleanup();
  }
});

test('PLUGHOST_ADMIN_TOKEN and the token file are held to the same length', () => {
  const work = tempDir();
  try {
    expect(() => resolveAdminToken(work.dir, { PLUGHOST_ADMIN_TOKEN: 'short' })).toThrow(/from PLUGHOST_ADMIN_TOKEN is 5 characters; at least 32/);
    fs.writeFileSync(path.join(work.dir, 'admin-token'), 'abc\n');
    expect(() => resolveAdminToken(work.dir, {})).toThrow(/admin-token" is 3 characters|admin-token is 3 characters/);
    expect(resolveAdminToken(work.dir, { PLUGHOST_ADMIN_TOKEN: 'y'.repeat(32) }).token).toBe('y'.repeat(32));
  } finally {
    work.cleanup();
  }
});

test('an integrator registering plughostRoutes with a short token gets the error at registration', async () => {
  const work = tempDir();
  const host = await PluginHost.open({ dataDir: work.dir, logger: pino({ level: 'silent' }) });
  const app = Fastify();
  try {
    await expect(app.register(plughostRoutes, { host, adminToken: SHORT }).ready()).rejects.toMatchObject({ code: 'PLUGHOST_ERR_ADMIN_TOKEN_TOO_SHORT' });
  } finally {
    await app.close().catch(() => undefined);
    await host.close();
    work.cleanup();
  }
});
