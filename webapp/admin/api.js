/**
 * The console's link to the admin API: the token (sessionStorage only: it
 * goes when the tab closes and never appears in a URL), JSON requests, the
 * bundle upload with progress, and the live event feed.
 */

const TOKEN_KEY = 'plughost.adminToken';

export const apiBase = document.querySelector('meta[name="plughost-api-base"]').content;

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An error the server sent, with its words, its code and any field problems. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the server answered HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? '';
    this.details = error?.details ?? {};
    this.problems = Array.isArray(this.details.problems) ? this.details.problems : [];
  }

  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

function errorFrom(status, text) {
  try {
    return new ApiError(status, JSON.parse(text).error);
  } catch {
    return new ApiError(status, null);
  }
}

const authorization = () => ({ authorization: `Bearer ${session.token}` });

/** `api('POST', '/plugins/x/enable')` → the parsed reply, or throws ApiError. */
export async function api(method, path, body) {
  const headers = authorization();
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(apiBase + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { message: `the server could not be reached (${err.message})` });
  }
  const text = await res.text();
  if (!res.ok) throw errorFrom(res.status, text);
  return text ? JSON.parse(text) : null;
}

/**
 * Uploads a bundle as the multipart field "plugin". XMLHttpRequest, not fetch,
 * because only it reports upload progress. `onProgress(fraction)` sees 0..1.
 */
export function uploadBundle(file, { force, onProgress }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${apiBase}/plugins${force ? '?force=true' : ''}`);
    xhr.setRequestHeader('authorization', authorization().authorization);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(errorFrom(xhr.status, xhr.responseText));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, { message: 'the upload was cut off before the server answered' })));
    const form = new FormData();
    form.append('plugin', file, file.name);
    xhr.send(form);
  });
}

/**
 * Follows the event feed: trades the token for a single-use ticket, opens an
 * EventSource with it, and after a drop does the same again (a spent ticket
 * cannot reconnect). `handlers` maps event names to functions of the data;
 * `onStatus(status)` tells 'live', 'reconnecting' or, once stopped, 'offline'.
 * `query` adds to the URL (`&logs=<id>` for a plugin's log records).
 * Returns a function that stops it.
 */
export function followEvents(handlers, onStatus = () => undefined, query = '') {
  let source = null;
  let timer = null;
  let stopped = false;
  let delay = 500;

  async function connect() {
    if (stopped) return;
    try {
      const { ticket } = await api('POST', '/events/ticket');
      if (stopped) return;
      source = new EventSource(`${apiBase}/events?ticket=${encodeURIComponent(ticket)}${query}`);
    } catch (err) {
      if (err.isAuth) handlers.unauthorized?.(err);
      else retry();
      return;
    }
    source.addEventListener('open', () => {
      delay = 500;
      onStatus('live');
    });
    source.addEventListener('error', () => {
      source.close();
      retry();
    });
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    }
  }

  function retry() {
    if (stopped) return;
    onStatus('reconnecting');
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10_000);
  }

  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
    onStatus('offline');
  };
}
