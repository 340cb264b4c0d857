/**
 * Many open streams on one server: log streams, live feeds with logs and the
 * web pages' bundle feeds, 12 of each, share one listener per event on the
 * host. No MaxListenersExceededWarning, every stream still gets every record
 * and state change, and the host's listeners go when the streams do.
 */
import { openStream, type SseReader } from '../web/helpers';
import { AUTH, pluginBundle, testServer, type TestServer } from './helpers';

const ID = 'com.test.followed';
const EACH = 12;
const EVENTS = ['log', 'state', 'installed', 'removed', 'config'] as const;

let server: TestServer;
const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
beforeAll(async () => {
  process.on('warning', onWarning);
  server = await testServer();
  await server.host.install(await pluginBundle(server.work, ID, 'runtime/contract-plugin.js'));
}, 60_000);
afterAll(async () => {
  process.off('warning', onWarning);
  await server.stop();
});

const listeners = () => Object.fromEntries(EVENTS.map((e) => [e, server.host.listenerCount(e)]));

async function open(path: string): Promise<SseReader> {
  const { reader } = await openStream(`${server.url}${path}`, AUTH);
  await reader!.next(path.includes('/plugins/webapp/') ? 'webapp' : 'ready');
  return reader!;
}

test(`${EACH} log streams, ${EACH} live feeds and ${EACH} bundle feeds: one host listener per event, no warning, every stream served`, async () => {
  const before = listeners();
  const ticket = async () => ((await (await fetch(`${server.url}/api/v1/events/ticket`, { method: 'POST', headers: AUTH })).json()) as { ticket: string }).ticket;
  const logStreams = await Promise.all(Array.from({ length: EACH }, () => open(`/api/v1/plugins/${ID}/logs/stream`)));
  const feeds: SseReader[] = [];
  for (let i = 0; i < EACH; i++) feeds.push(await open(`/api/v1/events?ticket=${await ticket()}&logs=1`));
  const pages = await Promise.all(Array.from({ length: EACH }, () => open('/api/v1/plugins/webapp/events')));
  const all = [...logStreams, ...feeds, ...pages];
  try {
    expect(listeners()).toEqual({ log: before.log + 1, state: before.state + 1, installed: before.installed + 1, removed: before.removed + 1, config: before.config + 1 });
    await server.host.enable(ID);
    for (const reader of [...logStreams, ...feeds]) expect(await reader.next('log')).toMatchObject({ pluginId: ID });
    for (const reader of feeds) expect(await reader.next('state')).toMatchObject({ pluginId: ID });
    // The warning is emitted on the next tick after the listener that crosses the limit; by now it would have come.
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  } finally {
    for (const reader of all) await reader.close();
  }
  // The server hears each client go when its connection closes: bounded, and over long before the test's timeout.
  for (let i = 0; i < 500 && JSON.stringify(listeners()) !== JSON.stringify(before); i++) await new Promise((r) => setTimeout(r, 10));
  expect(listeners()).toEqual(before);
}, 60_000);
