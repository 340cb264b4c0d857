/** serveHTTP through ServeHTTP: Fetch Request/Response, bodies streamed both ways, flushed chunk by chunk. */
import { createHash } from 'node:crypto';
import { createTestHost, type TestHost } from '../../sdk/testing';
import { DEFAULT_MAX_MESSAGE_BYTES, bodyPartBytes } from '../../src/protocol/limits';
import { fixture } from '../helpers';

let host: TestHost;
beforeAll(async () => {
  host = await createTestHost(fixture('sdk/kitchen-sink.js'));
});
afterAll(() => host.close());

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

test('method, path, query, headers and user reach the Request', async () => {
  const res = await host.fetch('/count?a=1&b=2', { method: 'POST', body: 'abc', userId: 'user-7' });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  expect(await res.json()).toEqual({ bytes: 3, query: '?a=1&b=2', user: 'user-7' });
});

test('a large request body streams in and back out unchanged', async () => {
  const size = 8 * 1024 * 1024 + 123;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
  let offset = 0;
  // Fed 1 MiB at a time, so the request is streamed rather than buffered by the caller.
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= size) return controller.close();
      controller.enqueue(data.subarray(offset, offset + 1024 * 1024));
      offset += 1024 * 1024;
    },
  });
  const res = await host.fetch('/echo', { method: 'PUT', body, headers: { 'content-type': 'application/x-test' } });
  expect(res.headers.get('x-method')).toBe('PUT');
  expect(res.headers.get('content-type')).toBe('application/x-test');
  const back = new Uint8Array(await res.arrayBuffer());
  expect(back.byteLength).toBe(size);
  expect(sha(back)).toBe(sha(data));
});

test('a large response body streams out in parts of at most the part size (1 MiB under the default message limit)', async () => {
  const res = await host.fetch('/big?size=5000000');
  const reader = res.body!.getReader();
  let total = 0;
  let chunks = 0;
  let largest = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    largest = Math.max(largest, value.byteLength);
    chunks++;
  }
  expect(total).toBe(5_000_000);
  expect(largest).toBeLessThanOrEqual(bodyPartBytes(DEFAULT_MAX_MESSAGE_BYTES));
  expect(chunks).toBeGreaterThanOrEqual(Math.ceil(5_000_000 / bodyPartBytes(DEFAULT_MAX_MESSAGE_BYTES)));
});

test('server-sent events arrive one by one, as the plugin flushes them', async () => {
  const res = await host.fetch('/sse?n=4');
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const arrivals: Array<{ text: string; at: number }> = [];
  const start = Date.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push({ text: decoder.decode(value), at: Date.now() - start });
  }
  expect(arrivals.map((a) => a.text)).toEqual([0, 1, 2, 3].map((i) => `data: tick ${i}\n\n`));
  // Each event is produced 100 ms after the previous one; buffering would deliver them together at the end.
  expect(arrivals[3].at - arrivals[0].at).toBeGreaterThanOrEqual(250);
});

test('a client that goes away cancels the stream, and the plugin keeps serving', async () => {
  const abort = new AbortController();
  const res = await host.fetch('/sse?n=1000', { signal: abort.signal });
  const reader = res.body!.getReader();
  await reader.read();
  abort.abort();
  await expect(reader.read()).rejects.toThrow();
  const ok = await host.fetch('/count', { method: 'POST', body: 'x' });
  expect(await ok.json()).toMatchObject({ bytes: 1 });
});

test('a null-body status keeps its headers, Set-Cookie included', async () => {
  const res = await host.fetch('/empty');
  expect(res.status).toBe(204);
  expect(res.headers.getSetCookie()).toEqual(['a=1']);
  expect(res.body).toBeNull();
});

test('a throwing handler answers 500 and logs the error through the API', async () => {
  const res = await host.fetch('/throw');
  expect(res.status).toBe(500);
  expect(await res.text()).toBe('internal error in plugin');
  expect(host.logs.some((l) => l.level === 'error' && String(l.fields.error).includes('handler exploded'))).toBe(true);
});

test('unknown routes are the plugin\'s own 404', async () => {
  const res = await host.fetch('/nope');
  expect(res.status).toBe(404);
  expect(await res.text()).toBe('not found');
});
