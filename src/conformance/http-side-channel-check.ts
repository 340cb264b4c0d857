/**
 * The HTTP side-channel check, for plugins that list "HTTPSideChannel" beside
 * ServeHTTPStream: the host's own exchange code (http-exchange-stream.ts) with
 * side channels on, in the plugin's socket folder. A 2 MiB + 1 byte POST /
 * goes over a request channel; whatever the plugin answers must end properly,
 * and a response it sends over a channel of its own must arrive whole (EOF and
 * a matching count: a mismatch is a truncated body, and fails the check). An
 * answer that echoes the body is compared byte for byte. Then an upload
 * cancelled once the plugin is reading it: the plugin must let it go (no
 * socket file left behind, the stream still serves a GET /).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import type { ImplementedResponse__Output } from '../gen/plughost/v1/ImplementedResponse';
import type { ExchangeFailure, ExchangeReceiver, PluginHttpExchange } from '../protocol/http-exchange';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES } from '../protocol/limits';
import { raceTimeout } from '../protocol/process';
import { DEFAULT_SIDE_CHANNEL_MIN_BYTES, SIDE_CHANNEL_CAPABILITY } from '../protocol/side-channel';
import { checkStream, failureText } from './http-stream-check';
import { describe, type Session } from './session-checks';
import type { CheckResult } from './types';

const UPLOAD_BYTES = 2 * 1024 * 1024 + 1;
/** The upload that is cancelled: larger than the socket buffers, so the plugin is still reading it when the cancel comes. */
const CANCELLED_BYTES = 64 * 1024 * 1024;
const PIECE_BYTES = 256 * 1024;

type Outcome = { status: number; bytes: number; sha256: string } | { failed: string };

const head = (method: string, tag: string, length?: number) => ({
  method,
  path: '/',
  query: `conformance=${tag}`,
  headers: [{ name: 'Content-Type', values: ['application/octet-stream'] }, ...(length === undefined ? [] : [{ name: 'Content-Length', values: [String(length)] }])],
  remote_addr: '127.0.0.1',
  user_id: '',
});

export async function checkHttpSideChannel(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  const base = { id: 'http-side-channel' as const, title: `ServeHTTPStream with side channels: POST / of ${UPLOAD_BYTES} bytes, and one cancelled mid-body` };
  if (!implemented.methods.includes('ServeHTTPStream') || !implemented.methods.includes(SIDE_CHANNEL_CAPABILITY)) {
    return { ...base, status: 'skip', detail: `the plugin does not list ServeHTTPStream and ${SIDE_CHANNEL_CAPABILITY} (hosts keep bodies on the stream)` };
  }
  const dir = s.client.socketDir;
  if (!dir) return { ...base, status: 'skip', detail: 'the plugin has no socket folder (reattached)' };
  s.api.setPhase('http-side-channel');
  const expected =
    `the plugin connects to the request's channel (${dir}/<body_channel>) and reads it to EOF; its answer has a head (100-599) and an end; ` +
    `a response body over a channel of its own arrives whole (EOF, and body_channel_bytes equal to the bytes sent); ` +
    `a cancelled upload leaves no socket file, and the stream still serves GET /; within ${s.callTimeoutMs} ms`;
  const { stream, broke } = checkStream(s, DEFAULT_FLOW_CONTROL_WINDOW_BYTES, { dir, minBytes: DEFAULT_SIDE_CHANNEL_MIN_BYTES });
  const exchange = (start: (ex: PluginHttpExchange) => void): Promise<Outcome> =>
    new Promise((resolve) => {
      const hash = createHash('sha256');
      const out = { status: 0, bytes: 0 };
      const receiver: ExchangeReceiver = {
        head: (h) => (out.status = h.status),
        body: (chunk) => {
          out.bytes += chunk.length;
          hash.update(chunk);
        },
        end: () => resolve(out.status >= 100 && out.status <= 599 ? { ...out, sha256: hash.digest('hex') } : { failed: `head.status ${out.status}` }),
        fail: (f: ExchangeFailure) => resolve({ failed: failureText(f) }),
      };
      start(stream.open(receiver, () => undefined));
    });
  try {
    const run = async (): Promise<string> => {
      const body = randomBytes(UPLOAD_BYTES);
      const upload = await exchange((ex) => ex.startWithBodyChannel(head('POST', 'side-upload', body.length), Readable.from([body])));
      if ('failed' in upload) throw new Problem(`the upload: ${upload.failed}`);
      const echoed = upload.sha256 === createHash('sha256').update(body).digest('hex');
      const cancelled = await cancelMidBody(exchange);
      const files = channelFiles(dir);
      if (files.length) throw new Problem(`socket files left in the folder after the cancel: ${files.join(', ')}`);
      const after = await exchange((ex) => ex.start(head('GET', 'after-side-cancel'), undefined, true));
      if ('failed' in after) throw new Problem(`GET / after the cancel: ${after.failed}`);
      return `POST / answered ${upload.status} with ${upload.bytes} body bytes${echoed ? ' (the upload echoed byte for byte)' : ''}; ${cancelled}; GET / after it answered ${after.status}`;
    };
    const detail = await raceTimeout(run(), s.callTimeoutMs);
    if (detail === undefined) return { ...base, status: 'fail', detail: 'not every exchange ended', expected, got: `no end to every exchange within ${s.callTimeoutMs} ms${broke() ? ` (${broke()})` : ''}` };
    return { ...base, status: 'pass', detail };
  } catch (err) {
    if (err instanceof Problem) return { ...base, status: 'fail', detail: 'a side-channel exchange went wrong', expected, got: err.message };
    return { ...base, status: 'fail', detail: 'the ServeHTTPStream stream failed', expected, got: describe(err, s) };
  } finally {
    stream.close('the check is over');
  }
}

class Problem extends Error {}

/** A large upload, cancelled by its "client" once the plugin has taken a first piece from the channel. */
async function cancelMidBody(exchange: (start: (ex: PluginHttpExchange) => void) => Promise<Outcome>): Promise<string> {
  let taken = 0;
  let cancel: () => void = () => undefined;
  const body = new Readable({
    highWaterMark: PIECE_BYTES,
    read() {
      // The first read means the plugin connected and the body is flowing: the client goes away a piece later.
      if (taken === PIECE_BYTES) return cancel();
      taken += PIECE_BYTES;
      this.push(Buffer.alloc(PIECE_BYTES, 0x63));
    },
  });
  const outcome = await Promise.race([
    exchange((ex) => {
      cancel = () => {
        ex.cancel();
        body.destroy();
      };
      ex.startWithBodyChannel(head('POST', 'side-cancelled', CANCELLED_BYTES), body);
    }),
    new Promise<null>((resolve) => body.once('close', () => resolve(null))),
  ]);
  if (outcome && 'failed' in outcome) throw new Problem(`the upload to be cancelled: ${outcome.failed}`);
  return outcome ? `the upload to be cancelled was answered first (${outcome.status})` : `an upload cancelled after ${taken} of ${CANCELLED_BYTES} bytes left nothing behind`;
}

/** Socket files in the plugin's folder that look like side channels (what the SDK and the host name them). */
function channelFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^b[A-Za-z0-9_-]{16}$/.test(f));
}
