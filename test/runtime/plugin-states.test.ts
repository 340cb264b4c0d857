/**
 * The plugin state table (src/runtime/plugin-states.ts): the moves it allows,
 * the ones it refuses, and the exact moves a real plugin makes through its life.
 */
import * as path from 'node:path';
import pino from 'pino';
import { PluginHost } from '../../src/runtime';
import { Errors } from '../../src/errors';
import { MOVES, PluginStates, STATES, checkMove, type Reason } from '../../src/runtime/plugin-states';
import type { PluginRecord, PluginState } from '../../src/store/store';
import type { StateChange } from '../../src/runtime/types';
import { tempDir, trackTimers, until } from '../helpers';
import { fixtureBundle } from './fixtures';

const silent = pino({ level: 'silent' });
const timers = trackTimers();

/** The moves design.md's runtime policy calls for, written out: the table must be exactly these. */
const ALLOWED: Array<[PluginState, PluginState, Reason]> = [
  ['not_running', 'starting', 'start'],
  ['failed_to_start', 'starting', 'start'],
  ['failed_to_stay_running', 'starting', 'start'],
  ['starting', 'starting', 'start'],
  ['starting', 'running', 'activated'],
  ['starting', 'failed_to_start', 'activation_failed'],
  ['running', 'starting', 'lost'],
  ['starting', 'starting', 'lost'],
  ['starting', 'starting', 'retry'],
  ['starting', 'failed_to_stay_running', 'parked'],
  ['starting', 'stopping', 'stop'],
  ['running', 'stopping', 'stop'],
  ['stopping', 'stopping', 'stop'],
  ...STATES.map((s): [PluginState, PluginState, Reason] => [s, 'not_running', 'stopped']),
];
const REASONS = [...new Set(MOVES.map((m) => m.reason))];

function record(enabled = true): PluginRecord {
  return { id: 'com.test.table', enabled, config: {} } as PluginRecord;
}

/** A PluginStates walked to `state` through allowed moves, and the changes it reported. */
function statesAt(state: PluginState, enabled = true): { states: PluginStates; changes: StateChange[] } {
  const changes: StateChange[] = [];
  const states = new PluginStates(record(true), (c) => changes.push(c));
  const path: Record<PluginState, Array<[PluginState, Reason]>> = {
    not_running: [],
    starting: [['starting', 'start']],
    running: [['starting', 'start'], ['running', 'activated']],
    failed_to_start: [['starting', 'start'], ['failed_to_start', 'activation_failed']],
    failed_to_stay_running: [['starting', 'start'], ['failed_to_stay_running', 'parked']],
    stopping: [['starting', 'start'], ['running', 'activated'], ['stopping', 'stop']],
  };
  for (const [to, reason] of path[state]) states.transition(to, reason, null);
  if (!enabled) states.changeDesired({ enabled: false });
  changes.length = 0;
  return { states, changes };
}

describe('the table', () => {
  test('allows exactly the moves of the design, each from every state it names', () => {
    const expanded = MOVES.flatMap((m) => m.from.map((from) => [from, m.to, m.reason].join(' ')));
    expect(expanded.sort()).toEqual(ALLOWED.map((a) => a.join(' ')).sort());
    for (const [from, to, reason] of ALLOWED) expect(checkMove(from, to, reason, true)).toBeNull();
  });

  test('every allowed move is made by transition() and reported with from, to, reason and generation', () => {
    for (const [from, to, reason] of ALLOWED) {
      const { states, changes } = statesAt(from);
      states.transition(to, reason, `why ${reason}`);
      expect(states.state).toBe(to);
      expect(changes).toEqual([{ pluginId: 'com.test.table', from, state: to, reason, lastError: `why ${reason}`, generation: 1 }]);
    }
  });

  test('refuses every other pair of states under every reason', () => {
    const allowed = new Set(ALLOWED.map(([from, to]) => `${from} ${to}`));
    for (const from of STATES) {
      for (const to of STATES) {
        if (allowed.has(`${from} ${to}`)) continue;
        for (const reason of REASONS) expect(checkMove(from, to, reason, true)).not.toBeNull();
      }
    }
  });

  test.each<[PluginState, PluginState, Reason, RegExp]>([
    ['not_running', 'running', 'activated', /activated leads there only from starting/],
    ['running', 'failed_to_stay_running', 'parked', /parked leads there only from starting/],
    ['stopping', 'starting', 'start', /start leads there only from not_running, failed_to_start, failed_to_stay_running, starting/],
    ['failed_to_start', 'stopping', 'stop', /stop leads there only from starting, running, stopping/],
    ['starting', 'running', 'stop', /stop leads to stopping/],
  ])('a forbidden move %s → %s (%s) throws an internal error naming plugin, from and to', (from, to, reason, why) => {
    const { states, changes } = statesAt(from);
    let thrown: unknown;
    try {
      states.transition(to, reason, null);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: Errors.ILLEGAL_TRANSITION.code, status: 500, details: { id: 'com.test.table', from, to, reason } });
    const message = (thrown as Error).message;
    expect(message).toContain(`internal error: plugin "com.test.table" cannot move from ${from} to ${to} (${reason})`);
    expect(message).toMatch(why);
    expect(states.state).toBe(from);
    expect(changes).toEqual([]);
  });

  test('start is refused while the operator does not want the plugin enabled', () => {
    const { states } = statesAt('not_running', false);
    expect(() => states.transition('starting', 'start', null)).toThrow(/start is allowed only while the plugin is enabled/);
  });

  test('a move to the same state with the same error reports nothing', () => {
    const { states, changes } = statesAt('starting');
    states.transition('starting', 'lost', 'exit 9');
    states.transition('starting', 'retry', 'exit 9');
    states.transition('starting', 'retry', 'exit 10');
    expect(changes.map((c) => [c.reason, c.lastError])).toEqual([['lost', 'exit 9'], ['retry', 'exit 10']]);
  });

  test('every desired change bumps the generation; the next move observes it', () => {
    const { states, changes } = statesAt('not_running', true);
    expect(states.desired).toEqual({ enabled: true, generation: 1 });
    states.changeDesired({ enabled: true });
    expect(states.desired.generation).toBe(2);
    expect(states.observedGeneration).toBe(1);
    states.transition('starting', 'start', null);
    states.transition('running', 'activated', null);
    expect(states.observedGeneration).toBe(2);
    states.changeDesired({ config: { greeting: 'hi' } });
    expect(states.observedGeneration).toBe(3);
    states.changeDesired({ enabled: false });
    expect(states.desired).toEqual({ enabled: false, generation: 4 });
    expect(states.observedGeneration).toBe(3);
    states.transition('stopping', 'stop', null);
    states.transition('not_running', 'stopped', null);
    expect(states.observedGeneration).toBe(4);
    expect(changes.map((c) => c.generation)).toEqual([2, 2, 4, 4]);
  });
});

describe('a real plugin', () => {
  let work: { dir: string; cleanup(): void };
  let host: PluginHost | undefined;
  let moves: string[];

  beforeEach(async () => {
    work = tempDir();
    moves = [];
  });
  afterEach(async () => {
    await host?.close();
    host = undefined;
    work.cleanup();
    expect(timers.pendingFrom('/src/')).toEqual([]);
  });

  async function open(defaults: Record<string, number> = {}): Promise<PluginHost> {
    host = await PluginHost.open({
      dataDir: path.join(work.dir, 'data'),
      logger: silent,
      defaults: { restartBackoffMs: 20, restartBackoffMaxMs: 100, healthIntervalMs: 60_000, ...defaults },
    });
    host.on('state', (c: StateChange) => moves.push(`${c.from} → ${c.state} (${c.reason}) @${c.generation}`));
    return host;
  }

  test('enable → running; crash → restart → running; disable → stopping → not_running', async () => {
    const h = await open();
    await h.install(await fixtureBundle(work.dir, { id: 'com.test.life' }));
    await h.enable('com.test.life');
    expect(moves).toEqual(['not_running → starting (start) @2', 'starting → running (activated) @2']);
    moves.length = 0;
    await expect(h.callHook('com.test.life', 'Crash', {})).rejects.toMatchObject({ code: Errors.HOOK_FAILED.code });
    await until(() => moves.length === 2, 'the restart');
    expect(moves).toEqual(['running → starting (lost) @2', 'starting → running (activated) @2']);
    expect((await h.get('com.test.life')).restarts).toBe(1);
    moves.length = 0;
    await h.disable('com.test.life');
    expect(moves).toEqual(['running → stopping (stop) @3', 'stopping → not_running (stopped) @3']);
  });

  test('repeated crashes: each restarted, then parked as failed_to_stay_running', async () => {
    const h = await open({ maxFailures: 3 });
    await h.install(await fixtureBundle(work.dir, { id: 'com.test.loop', env: { CRASH_AFTER_MS: '300' } }));
    await h.enable('com.test.loop');
    await until(async () => (await h.get('com.test.loop')).state === 'failed_to_stay_running', 'parking');
    expect(moves).toEqual([
      'not_running → starting (start) @2',
      'starting → running (activated) @2',
      'running → starting (lost) @2',
      'starting → running (activated) @2',
      'running → starting (lost) @2',
      'starting → running (activated) @2',
      'running → starting (lost) @2',
      'starting → failed_to_stay_running (parked) @2',
    ]);
    expect((await h.get('com.test.loop')).lastError).toMatch(/exited unexpectedly \(exit code 9\).*3 failures within 60 min; parked/);
  });

  test('a plugin that fails to start: starting → failed_to_start, and an upgrade bumps the generation', async () => {
    const h = await open();
    await h.install(await fixtureBundle(work.dir, { id: 'com.test.bad', env: { FAIL_ACTIVATE: '1' } }));
    await expect(h.enable('com.test.bad')).rejects.toMatchObject({ code: Errors.ACTIVATION_FAILED.code });
    expect(moves).toEqual(['not_running → starting (start) @2', 'starting → failed_to_start (activation_failed) @2']);
    moves.length = 0;
    await h.install(await fixtureBundle(work.dir, { id: 'com.test.bad', version: '1.1.0' }), { force: true });
    expect(moves).toEqual([
      'failed_to_start → not_running (stopped) @2',
      'not_running → starting (start) @3',
      'starting → running (activated) @3',
    ]);
  });
});
