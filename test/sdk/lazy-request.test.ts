/** The Request a serveHTTP handler gets: answers from the head, builds the rest on demand, and passes for a Request everywhere. */
import { requestFor } from '../../sdk/lazy-request';

const head = (over: Record<string, unknown> = {}) => ({
  method: 'POST',
  path: '/notes/7',
  query: 'x=1&y=%20',
  headers: [
    { name: 'host', values: ['example.test:8065'] },
    { name: 'x-many', values: ['a', 'b'] },
    { name: 'content-type', values: ['text/plain'] },
  ],
  remote_addr: '127.0.0.1',
  user_id: 'u1',
  ...over,
});

const bodyOf = (text: string) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });

test('it is a Request to instanceof, toString and undici, with url, method and headers from the head', async () => {
  const { request } = requestFor(head(), bodyOf('hello'));
  expect(request).toBeInstanceOf(Request);
  expect(Object.prototype.toString.call(request)).toBe('[object Request]');
  expect(request.url).toBe('http://example.test:8065/notes/7?x=1&y=%20');
  expect(request.method).toBe('POST');
  expect(request.headers.get('x-many')).toBe('a, b');
  // undici reads its own state from it: a copy, a clone and a fetch init all work.
  const copy = new Request(request);
  expect(copy.url).toBe(request.url);
  expect(copy.headers.get('content-type')).toBe('text/plain');
  expect(await copy.text()).toBe('hello');
});

test('body methods read the streamed body once; bodyUsed follows', async () => {
  const { request } = requestFor(head(), bodyOf('{"a":1}'));
  expect(request.bodyUsed).toBe(false);
  expect(await request.json()).toEqual({ a: 1 });
  expect(request.bodyUsed).toBe(true);
  await expect(request.text()).rejects.toThrow(/unusable|already/);
});

test('reading request.body directly marks it used, as on a real Request', async () => {
  const { request } = requestFor(head(), bodyOf('abc'));
  const reader = request.body!.getReader();
  expect((await reader.read()).value).toEqual(new TextEncoder().encode('abc'));
  expect(request.bodyUsed).toBe(true);
});

test('a GET has no body; an odd Host falls back to localhost; other fields come from the real Request', () => {
  const { request } = requestFor(head({ method: 'GET', headers: [{ name: 'Host', values: ['bad host/'] }], query: '' }), null);
  expect(request.body).toBeNull();
  expect(request.url).toBe('http://localhost/notes/7');
  expect(request.cache).toBe('default');
  expect(request.clone().url).toBe(request.url);
});

test('the signal aborts when the client goes away, whether it was read before or after', () => {
  const early = requestFor(head(), null);
  const signal = early.request.signal;
  expect(signal.aborted).toBe(false);
  early.abort(new Error('the client went away'));
  expect(signal.aborted).toBe(true);
  expect((signal.reason as Error).message).toBe('the client went away');

  const late = requestFor(head(), null);
  late.abort(new Error('gone'));
  expect(late.request.signal.aborted).toBe(true);
  // A materialized Request follows the same signal.
  expect(late.request.clone().signal.aborted).toBe(true);
});

test('headers read before the real Request is built are the ones it keeps', () => {
  const { request } = requestFor(head(), null);
  request.headers.set('x-added', '1');
  expect(request.headers.get('x-added')).toBe('1');
  expect(request.clone().headers.get('x-added')).toBe('1');
});
