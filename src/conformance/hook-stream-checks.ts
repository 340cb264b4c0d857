/**
 * The hook stream checks, for plugins that list them: RunHookStream (one call
 * a message) and RunHookBatchStream (several calls a message, answers batched
 * as the plugin likes). Both put the stream through the same paces as a host
 * does: calls of every hook interleaved, each to be answered exactly once
 * under its call_id (a response, or an error with a message); a call whose
 * deadline (timeout_ms 1) passes before the plugin can answer, after which the
 * stream must still answer; and a half-close that the plugin answers by
 * ending the stream with OK.
 */
import * as grpc from '@grpc/grpc-js';
import type { ImplementedResponse__Output } from '../gen/plughost/v1/ImplementedResponse';
import type { RunHookStreamRequest } from '../gen/plughost/v1/RunHookStreamRequest';
import type { RunHookStreamResponse__Output } from '../gen/plughost/v1/RunHookStreamResponse';
import { jsonBytes } from '../protocol/contract';
import type { Session } from './session-checks';
import type { CheckResult } from './types';

/** Calls per hook sent at once, interleaved across hooks. */
const STREAM_CALLS_PER_HOOK = 8;
/** Calls per RunHookBatch message in the batch check: several, and not a multiple of the hooks, so a batch mixes hooks. */
const BATCH_SIZE = 5;

/** How one of the two streams is opened, written and read. */
interface StreamKind {
  id: 'hook-stream' | 'hook-batch-stream';
  method: 'RunHookStream' | 'RunHookBatchStream';
  title: string;
  /** Calls per message: 1 for RunHookStream. */
  batchSize: number;
  open(s: Session): grpc.ClientDuplexStream<unknown, unknown>;
  write(duplex: grpc.ClientDuplexStream<unknown, unknown>, calls: RunHookStreamRequest[]): void;
  /** The answers one incoming message carries. */
  answers(message: unknown): RunHookStreamResponse__Output[];
}

const SINGLE: StreamKind = {
  id: 'hook-stream',
  method: 'RunHookStream',
  title: 'RunHookStream: interleaved calls, a call past its deadline, half-close',
  batchSize: 1,
  open: (s) => s.hooks.RunHookStream() as grpc.ClientDuplexStream<unknown, unknown>,
  write: (duplex, calls) => {
    for (const c of calls) duplex.write(c);
  },
  answers: (message) => [message as RunHookStreamResponse__Output],
};

const BATCHED: StreamKind = {
  id: 'hook-batch-stream',
  method: 'RunHookBatchStream',
  title: `RunHookBatchStream: interleaved calls ${BATCH_SIZE} a message, a call past its deadline in a batch, half-close`,
  batchSize: BATCH_SIZE,
  open: (s) => s.hooks.RunHookBatchStream() as grpc.ClientDuplexStream<unknown, unknown>,
  write: (duplex, calls) => {
    duplex.write({ calls });
  },
  answers: (message) => (message as { results: RunHookStreamResponse__Output[] }).results,
};

/** Hooks.RunHookStream, when the plugin lists it. */
export function checkHookStream(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  return checkStream(s, implemented, SINGLE);
}

/** Hooks.RunHookBatchStream, when the plugin lists it: the same paces, with calls batched as a host batches them. */
export function checkHookBatchStream(s: Session, implemented: ImplementedResponse__Output): Promise<CheckResult> {
  return checkStream(s, implemented, BATCHED);
}

async function checkStream(s: Session, implemented: ImplementedResponse__Output, kind: StreamKind): Promise<CheckResult> {
  const base = { id: kind.id, title: kind.title };
  if (!implemented.methods.includes(kind.method)) {
    return { ...base, status: 'skip', detail: `the plugin does not list ${kind.method}; hosts call its hooks another way (${kind.method === 'RunHookBatchStream' ? 'RunHookStream or ' : ''}unary RunHook), which is fine` };
  }
  if (!implemented.hooks.length) return { ...base, status: 'skip', detail: `the plugin lists ${kind.method} but no hooks to call over it` };
  s.api.setPhase('hook');
  const hooks = implemented.hooks.slice(0, 4);
  const duplex = kind.open(s);
  const answers = new Map<number, number>();
  const expected = new Set<number>();
  const unknown: number[] = [];
  const bad: string[] = [];
  let messages = 0;
  let status: grpc.StatusObject | undefined;
  duplex.on('error', () => undefined);
  duplex.on('status', (st: grpc.StatusObject) => {
    status = st;
  });
  duplex.on('data', (message: unknown) => {
    messages++;
    for (const msg of kind.answers(message)) {
      const id = Number(msg.call_id);
      answers.set(id, (answers.get(id) ?? 0) + 1);
      if (!expected.has(id)) unknown.push(id);
      if (msg.error !== undefined && msg.error !== '' && msg.response) bad.push(`call ${id} carries both a response and an error`);
    }
  });
  let nextId = 0;
  const call = (hook: string, timeoutMs: number): RunHookStreamRequest => {
    const id = ++nextId;
    expected.add(id);
    return { call_id: id, timeout_ms: timeoutMs, request: { hook, payload: jsonBytes({}), context: { request_id: `conformance-${id}`, user_id: '', values: {} } } };
  };
  const send = (calls: RunHookStreamRequest[]) => {
    for (let i = 0; i < calls.length; i += kind.batchSize) kind.write(duplex, calls.slice(i, i + kind.batchSize));
  };
  const waitFor = async (done: () => boolean, ms: number) => {
    for (const until = Date.now() + ms; !done() && Date.now() < until && !status;) await new Promise((r) => setTimeout(r, 10));
    return done();
  };
  const ended = () => (status ? `the stream ended: ${grpc.status[status.code]} ${status.details}` : undefined);
  const per = kind.batchSize > 1 ? ` (${kind.batchSize} a message)` : '';
  try {
    const interleaved: RunHookStreamRequest[] = [];
    for (let round = 0; round < STREAM_CALLS_PER_HOOK; round++) for (const hook of hooks) interleaved.push(call(hook, s.callTimeoutMs));
    send(interleaved);
    if (!(await waitFor(() => interleaved.every((c) => answers.has(Number(c.call_id))), s.callTimeoutMs))) {
      const missing = interleaved.map((c) => Number(c.call_id)).filter((i) => !answers.has(i));
      return {
        ...base,
        status: 'fail',
        detail: `${missing.length} of ${interleaved.length} interleaved calls${per} got no answer`,
        expected: `one RunHookStreamResponse per call_id${kind.batchSize > 1 ? ', for every call of every RunHookBatch,' : ''} within ${s.callTimeoutMs} ms`,
        got: ended() ?? `no answer for call_id ${missing.slice(0, 10).join(', ')}`,
      };
    }
    // A call whose deadline is over before the plugin can act: the host gives up on it; the stream must stay usable.
    // Batched, it shares its message with the call after it.
    const late = call(hooks[0], 1);
    const after = call(hooks[0], s.callTimeoutMs);
    send([late, after]);
    if (!(await waitFor(() => answers.has(Number(after.call_id)), s.callTimeoutMs))) {
      return {
        ...base,
        status: 'fail',
        detail: `after a call with timeout_ms 1, the next call${kind.batchSize > 1 ? ' (in the same RunHookBatch)' : ''} got no answer`,
        expected: 'calls past their deadline answered late, with an error, or not at all, and the stream kept answering',
        got: ended() ?? 'no answer',
      };
    }
    const twice = [...answers].filter(([, n]) => n > 1).map(([i]) => i);
    if (unknown.length || twice.length || bad.length) {
      return {
        ...base,
        status: 'fail',
        detail: 'answers do not match the calls',
        expected: 'each call_id answered once, with a response or an error',
        got: [unknown.length ? `unknown call_id ${unknown.slice(0, 5).join(', ')}` : '', twice.length ? `call_id answered twice: ${twice.slice(0, 5).join(', ')}` : '', ...bad.slice(0, 3)].filter(Boolean).join('; '),
      };
    }
    duplex.end();
    if (!(await waitFor(() => status !== undefined, s.graceMs + s.callTimeoutMs)) || status!.code !== grpc.status.OK) {
      return {
        ...base,
        status: 'fail',
        detail: 'the half-close was not answered by ending the stream',
        expected: `the plugin answers what is in flight, then ends the stream with OK, within ${s.graceMs + s.callTimeoutMs} ms`,
        got: status ? `${grpc.status[status.code]}: ${status.details}` : 'the stream stayed open',
      };
    }
    const notes = [answers.has(Number(late.call_id)) ? 'the call past its deadline was answered anyway (hosts ignore a late answer)' : 'the call past its deadline was not answered (fine: hosts fail it at its deadline)'];
    if (kind.batchSize > 1) notes.push(`${nextId} calls came back in ${messages} RunHookBatchResult messages`);
    return {
      ...base,
      status: 'pass',
      detail: `OK; ${interleaved.length} interleaved calls of ${hooks.join(', ')}${per} each answered once, the stream kept answering after a call past its deadline, and ended with OK after the half-close`,
      notes,
    };
  } finally {
    if (!status) duplex.cancel();
  }
}
