import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { Errors } from '../../src/errors';
import { PluginHost } from '../../src/runtime';
import { NODE_ID_FILE, resolveNodeId } from '../../src/runtime/node-id';
import { rejected } from '../fixtures/expect-error';
import { tempDir } from '../helpers';

const silent = pino({ level: 'silent' });
let work: { dir: string; cleanup(): void };

beforeEach(() => {
  work = tempDir();
});
afterEach(() => work.cleanup());

const open = (dataDir: string, nodeId?: string) => PluginHost.open({ dataDir, logger: silent, nodeId });

test('a generated node id is node-<8 hex>, kept in <dataDir>/node-id (mode 0600) and the same after reopening', async () => {
  const dataDir = path.join(work.dir, 'data');
  const first = await open(dataDir);
  const id = first.nodeId;
  await first.close();
  expect(id).toMatch(/^node-[0-9a-f]{8}$/);
  const file = path.join(dataDir, NODE_ID_FILE);
  expect(fs.readFileSync(file, 'utf8').trim()).toBe(id);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const again = await open(dataDir);
  expect(again.nodeId).toBe(id);
  expect((await again.cluster()).nodeId).toBe(id);
  await again.close();
  // Another data dir is another node.
  const other = await open(path.join(work.dir, 'other'));
  expect(other.nodeId).not.toBe(id);
  await other.close();
});

test('a given node id is used as it is and does not replace the kept one', async () => {
  const dataDir = path.join(work.dir, 'data');
  fs.mkdirSync(dataDir);
  const kept = resolveNodeId(dataDir);
  const host = await open(dataDir, 'web-1.eu_west');
  expect(host.nodeId).toBe('web-1.eu_west');
  expect((await host.cluster()).nodes.map((n) => n.nodeId)).toContain('web-1.eu_west');
  await host.close();
  expect(resolveNodeId(dataDir)).toBe(kept);
});

test.each(['', '-leading-dash', 'has space', 'slash/y', 'ü-node', 'x'.repeat(64), 'semi;colon'])(
  'a bad node id %j is refused with NODE_ID_INVALID naming the value and the rule, before anything is opened',
  async (bad) => {
    const dataDir = path.join(work.dir, 'data');
    const err = await rejected(open(dataDir, bad));
    expect(err.code).toBe(Errors.NODE_ID_INVALID.code);
    expect(err.message).toContain(JSON.stringify(bad));
    expect(err.message).toContain('1 to 63 characters');
    expect(fs.existsSync(path.join(dataDir, 'plughost.db'))).toBe(false);
  },
);

test('a node-id file that was edited into a bad id is refused naming the file', async () => {
  const dataDir = path.join(work.dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, NODE_ID_FILE), 'not ok\n');
  const err = await rejected(open(dataDir));
  expect(err.code).toBe(Errors.NODE_ID_INVALID.code);
  expect(err.message).toContain(path.join(dataDir, NODE_ID_FILE));
});

test('a bad heartbeatIntervalMs is refused naming the option', async () => {
  const err = await rejected(PluginHost.open({ dataDir: path.join(work.dir, 'data'), logger: silent, heartbeatIntervalMs: 0 }));
  expect(err.code).toBe(Errors.HOST_BAD_OPTION.code);
  expect(err.message).toContain('heartbeatIntervalMs');
});
