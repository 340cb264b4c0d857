/**
 * The Request a serveHTTP handler receives, built on demand. A Fetch Request
 * with its Headers and an AbortSignal it follows costs tens of microseconds,
 * more than a small handler takes; most handlers read the URL, the method and
 * a header or two. So the handler gets a LazyRequest: an object whose
 * prototype chain includes Request.prototype (instanceof Request holds) and
 * which answers url and method from the request head, builds headers and
 * signal on first access, and builds the real Request (once) for anything
 * else: body methods, clone(), the other fields, and undici's own reads when
 * it is passed to fetch() or new Request(). Where this Node's Fetch cannot
 * take such an object (checked once), handlers get a real Request as before.
 */
import * as nodeStream from 'node:stream';
import type { HTTPHeader__Output } from '../src/gen/plughost/v1/HTTPHeader';
import type { HTTPRequestHead__Output } from '../src/gen/plughost/v1/HTTPRequestHead';
import { fromHeaderList } from './http-stream';

/** A handler's request, and how the SDK aborts its signal when the client goes away. */
export interface RequestHandle {
  readonly request: Request;
  abort(reason: Error): void;
}

/** Builds the request handle for `head`, with `body` as its body stream (null for none). */
export function requestFor(head: HTTPRequestHead__Output, body: ReadableStream<Uint8Array> | null): RequestHandle {
  lazySupported ??= probeLazy();
  return lazySupported ? new LazyRequest(head, body) : new EagerRequest(head, body);
}

/** Request fields answered without building anything. */
const OWN = new Set(['constructor', 'url', 'method', 'headers', 'signal', 'body', 'bodyUsed']);

class LazyRequest implements RequestHandle {
  private real: Request | undefined;
  private builtHeaders: Headers | undefined;
  private controller: AbortController | undefined;
  private abortedWith: Error | undefined;
  private builtUrl: string | undefined;

  constructor(
    private readonly head: HTTPRequestHead__Output,
    private readonly bodyStream: ReadableStream<Uint8Array> | null,
  ) {}

  get request(): Request {
    return this as unknown as Request;
  }

  abort(reason: Error): void {
    if (this.abortedWith) return;
    this.abortedWith = reason;
    this.controller?.abort(reason);
  }

  get url(): string {
    this.builtUrl ??= requestUrl(this.head);
    return this.builtUrl;
  }

  get method(): string {
    return this.head.method || 'GET';
  }

  get headers(): Headers {
    if (!this.builtHeaders) this.builtHeaders = this.real ? this.real.headers : fromHeaderList(this.head.headers);
    return this.builtHeaders;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith);
    }
    return this.controller.signal;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.real ? this.real.body : this.bodyStream;
  }

  get bodyUsed(): boolean {
    if (this.real) return this.real.bodyUsed;
    return this.bodyStream !== null && isDisturbed(this.bodyStream);
  }

  /** The real Request, built once from what the handler may have touched already. */
  materialize(): Request {
    this.real ??= new Request(this.url, {
      method: this.method,
      headers: this.builtHeaders ?? fromHeaderList(this.head.headers),
      signal: this.signal,
      body: this.bodyStream,
      duplex: 'half',
    } as RequestInit);
    return this.real;
  }
}

// Everything else a Request has is the real one's, built on first use.
Object.setPrototypeOf(LazyRequest.prototype, Request.prototype);
for (const key of Reflect.ownKeys(Request.prototype)) {
  if (typeof key === 'string' && OWN.has(key)) continue;
  const d = Object.getOwnPropertyDescriptor(Request.prototype, key)!;
  if (d.get) {
    Object.defineProperty(LazyRequest.prototype, key, { get(this: LazyRequest) { return Reflect.get(this.materialize(), key); }, configurable: true });
  } else if (typeof d.value === 'function') {
    const method = d.value as (...args: unknown[]) => unknown;
    Object.defineProperty(LazyRequest.prototype, key, { value(this: LazyRequest, ...args: unknown[]) { return method.apply(this.materialize(), args); }, configurable: true, writable: true });
  }
}
// undici reads its own state through symbols on the instance (fetch(request), new Request(request)).
for (const key of Object.getOwnPropertySymbols(new Request('http://localhost/'))) {
  Object.defineProperty(LazyRequest.prototype, key, { get(this: LazyRequest) { return Reflect.get(this.materialize(), key); }, configurable: true });
}

/** The real Request at once, as handlers got before LazyRequest. */
class EagerRequest implements RequestHandle {
  readonly request: Request;
  private readonly controller = new AbortController();

  constructor(head: HTTPRequestHead__Output, body: ReadableStream<Uint8Array> | null) {
    const init = { method: head.method || 'GET', headers: fromHeaderList(head.headers), signal: this.controller.signal, body, duplex: 'half' };
    this.request = new Request(requestUrl(head), init as RequestInit);
  }

  abort(reason: Error): void {
    this.controller.abort(reason);
  }
}

let lazySupported: boolean | undefined;
/** node:stream's isDisturbed (Node 16.8+; not in @types/node 20): whether a web stream has been read from, as undici's bodyUsed asks. */
const isDisturbed = (nodeStream as unknown as { isDisturbed(stream: unknown): boolean }).isDisturbed;

/** Whether this Node's Fetch takes a LazyRequest where it takes a Request. */
function probeLazy(): boolean {
  try {
    const head = { method: 'POST', path: '/probe', query: 'a=1', headers: [{ name: 'x-probe', values: ['1'] }], remote_addr: '', user_id: '' };
    const lazy = new LazyRequest(head, null);
    const copy = new Request(lazy.request);
    const clone = lazy.request.clone();
    return copy.url === lazy.url && copy.method === 'POST' && copy.headers.get('x-probe') === '1' && clone instanceof Request && lazy.request instanceof Request;
  } catch {
    return false;
  }
}

function requestUrl(head: HTTPRequestHead__Output): string {
  const path = head.path.startsWith('/') ? head.path : `/${head.path}`;
  return `http://${safeHost(hostOf(head.headers))}${path}${head.query ? `?${head.query}` : ''}`;
}

function hostOf(list: readonly HTTPHeader__Output[]): string | null {
  for (const h of list) if (h.name.length === 4 && h.name.toLowerCase() === 'host') return h.values[0] ?? null;
  return null;
}

function safeHost(host: string | null): string {
  return host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : 'localhost';
}
