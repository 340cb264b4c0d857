/**
 * The ServeHTTPStream check, for plugins that list it: exchanges interleaved
 * on one stream as a host sends them (three GET / at once, one cancelled by
 * its "client" right after its head, then one more GET / after the cancel),
 * with the smallest credit window a host may use, so that a plugin sending
 * more response body than it was granted is caught. Every exchange must get a
 * head with a status from 100 to 599 and its end, apart from the cancelled
 * one, which must not stop the others.
 */
import type { ImplementedResponse__Output } from '../gen/plughost/v1/ImplementedResponse';
import type { ExchangeFailure, ExchangeReceiver } from '../protocol/http-exchange';
import { HttpExchangeStream, type SideChannelOptions } from '../protocol/http-exchange-stream';
import { MIN_FLOW_CONTROL_WINDOW_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from '../protocol/limits';
import { raceTimeout } from '../protocol/process';
import { describe, type Session } from './session-checks';
import type { CheckResult } from './types';

/** What one exchange came to. */
type Outcome = { status: number; bytes: number } | { failed: string };

const head = (tag: string) => ({
  method: 'GET',
  path: '/',
  query: `conformance=${tag}`,
  headers: [{ name: 'Accept', values: ['*/*'] }],
  remote_addr: '127.0.0.1',
  user_id: '',
});

export async function checkHttpStream(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  const base = { id: 'http-stream' as const, title: 'ServeHTTPStream: GET / three times at once, one cancelled, then once more' };
  if (!implemented.methods.includes('ServeHTTPStream')) return { ...base, status: 'skip', detail: 'the plugin does not list ServeHTTPStream (hosts use ServeHTTP)' };
  s.api.setPhase('http-stream');
  const expected =
    `for each exchange a first HTTPResponseFrame with head.status 100-599, body only within the credit granted ` +
    `(65536 bytes at first, more in credit frames), then a frame with end, within ${s.callTimeoutMs} ms; ` +
    `a cancelled exchange must not hold up the others`;
  const { stream, broke } = checkStream(s, MIN_FLOW_CONTROL_WINDOW_BYTES);
  try {
    const exchange = (tag: string, cancel = false): Promise<Outcome> =>
      new Promise((resolve) => {
        const out = { status: 0, bytes: 0 };
        const receiver: ExchangeReceiver = {
          head: (h) => (out.status = h.status),
          body: (chunk) => (out.bytes += chunk.length),
          end: () => resolve(out.status >= 100 && out.status <= 599 ? out : { failed: `head.status ${out.status}` }),
          fail: (f) => resolve({ failed: failureText(f) }),
        };
        const ex = stream.open(receiver, () => undefined);
        ex.start(head(tag), undefined, true);
        if (cancel) {
          ex.cancel();
          resolve(out);
        }
      });
    const run = async (): Promise<Outcome[]> => {
      const first = await Promise.all([exchange('a'), exchange('b'), exchange('cancelled', true), exchange('c')]);
      return [...first.filter((_, i) => i !== 2), await exchange('after-cancel')];
    };
    const outcomes = await raceTimeout(run(), s.callTimeoutMs);
    if (!outcomes) {
      return { ...base, status: 'fail', detail: 'not every exchange ended', expected, got: `no end to every exchange within ${s.callTimeoutMs} ms${broke() ? ` (${broke()})` : ''}` };
    }
    const failed = outcomes.map((o, i) => ('failed' in o ? `exchange ${['a', 'b', 'c', 'after-cancel'][i]}: ${o.failed}` : null)).filter((x) => x !== null);
    if (failed.length) return { ...base, status: 'fail', detail: 'an exchange failed', expected, got: failed.join('; ') };
    const answers = (outcomes as Array<{ status: number; bytes: number }>).map((o) => `${o.status} with ${o.bytes} body bytes`);
    return { ...base, status: 'pass', detail: `${answers.join(', ')}; the cancelled exchange held up nothing` };
  } catch (err) {
    return { ...base, status: 'fail', detail: 'the ServeHTTPStream stream failed', expected, got: describe(err, s) };
  } finally {
    stream.close('the check is over');
  }
}

/** The host's own exchange code on the plugin's ServeHTTPStream, as a check drives it; broke() says how the stream broke, if it did. */
export function checkStream(s: Session, windowBytes: number, sideChannel?: SideChannelOptions): { stream: HttpExchangeStream; broke: () => string | null } {
  let broke: string | null = null;
  const stream = new HttpExchangeStream({
    open: () => s.hooks.ServeHTTPStream(),
    windowBytes,
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    onBroken: (message) => (broke = message),
    sideChannel,
  });
  return { stream, broke: () => broke };
}

/** An exchange's failure as a check reports it. */
export function failureText(f: ExchangeFailure): string {
  if (f.kind === 'headless') return 'a body frame before any head';
  if (f.kind === 'ended-headless') return 'the end before any head';
  return f.message;
}
