/**
 * The states of one plugin (design.md, "Runtime policy") and the only moves
 * between them. A supervisor changes state only through
 * `PluginStates.transition(to, reason)`, which checks the move against MOVES,
 * then hands it to the host, which logs, persists and emits it. A move that is
 * not in the table is a bug in the runtime: it throws ILLEGAL_TRANSITION.
 *
 * Beside the observed state it keeps the desired one: what the operator asked
 * for (the record's `enabled`) and a generation bumped on every change of that
 * desire (enable, disable, install or upgrade, configuration). Each move is
 * stamped with the generation it was made under (`observedGeneration`), so a
 * reconciler can tell whether what it observes answers what is asked.
 */
import { Errors } from '../errors';
import type { PluginConfig } from '../manifest';
import type { PluginRecord, PluginState } from '../store/store';
import type { StateChange } from './types';

/** Why a plugin moves: the events of the table. */
export type Reason = 'start' | 'activated' | 'activation_failed' | 'lost' | 'retry' | 'parked' | 'stop' | 'stopped';

export interface Move {
  reason: Reason;
  from: readonly PluginState[];
  to: PluginState;
  /** Only while the operator wants the plugin enabled. */
  whileEnabled?: true;
  /** What happened. */
  on: string;
}

export const STATES: readonly PluginState[] = ['not_running', 'starting', 'running', 'failed_to_start', 'failed_to_stay_running', 'stopping'];

/** Every allowed move. A move to the state a plugin is in, with the same error, changes nothing and reports nothing. */
export const MOVES: readonly Move[] = [
  { reason: 'start', from: ['not_running', 'failed_to_start', 'failed_to_stay_running', 'starting'], to: 'starting', whileEnabled: true,
    on: 'enable, host open or install of an enabled plugin (from starting: an enable while a restart waits launches at once)' },
  { reason: 'activated', from: ['starting'], to: 'running', on: 'Implemented and OnActivate answered; at once for a webapp-only plugin' },
  { reason: 'activation_failed', from: ['starting'], to: 'failed_to_start', on: 'a start failed: launch, handshake, Implemented, OnActivate, configuration or host version' },
  { reason: 'lost', from: ['running', 'starting'], to: 'starting', on: 'the process exited, its connection was lost or a health check failed; a restart follows' },
  { reason: 'retry', from: ['starting'], to: 'starting', on: 'a restart attempt failed; another follows after backoff' },
  { reason: 'parked', from: ['starting'], to: 'failed_to_stay_running', on: 'too many failures within the window; no restart until enabled again' },
  { reason: 'stop', from: ['starting', 'running', 'stopping'], to: 'stopping', on: 'disable, upgrade, removal or host close of a plugin with a process' },
  { reason: 'stopped', from: STATES, to: 'not_running', on: 'the process is gone, or there was none' },
];

const byReason = new Map(MOVES.map((m) => [m.reason, m]));

/** The move `reason` names, when it leads from `from` to `to`; otherwise why not. */
export function checkMove(from: PluginState, to: PluginState, reason: Reason, enabled: boolean): string | null {
  const move = byReason.get(reason);
  if (!move) return `no move is named ${JSON.stringify(reason)}`;
  if (move.to !== to) return `${reason} leads to ${move.to}`;
  if (!move.from.includes(from)) return `${reason} leads there only from ${move.from.join(', ')}`;
  if (move.whileEnabled && !enabled) return `${reason} is allowed only while the plugin is enabled`;
  return null;
}

/** What the operator asked for. */
export interface Desired {
  enabled: boolean;
  /** Bumped on every change of the desire. */
  generation: number;
}

/** A change of what the operator asked for: enabled or not, or a new configuration. */
export type DesiredChange = { enabled: boolean } | { config: PluginConfig };

export class PluginStates {
  private current: PluginState = 'not_running';
  private error: string | null = null;
  private desiredGeneration: number;
  private observed: number;
  private moved = false;

  /** `record` is the supervisor's: its `enabled` and `config` are the desire this class changes. */
  constructor(
    private readonly record: PluginRecord,
    private readonly report: (change: StateChange) => void,
    generation = record.generation ?? 1,
  ) {
    this.desiredGeneration = generation;
    this.observed = generation;
  }

  get state(): PluginState {
    return this.current;
  }

  /** Why the plugin last failed, or null. */
  get lastError(): string | null {
    return this.error;
  }

  get desired(): Desired {
    return { enabled: this.record.enabled, generation: this.desiredGeneration };
  }

  /** The desired generation the last move (or a desire that needed none) was made under. */
  get observedGeneration(): number {
    return this.observed;
  }

  /**
   * Records a change the operator asked for, under `generation` (the store's, when it
   * assigned one; else the next). One that needs no move (enabling a running plugin, a
   * configuration) is observed at once.
   */
  changeDesired(change: DesiredChange, generation = this.desiredGeneration + 1): void {
    if ('enabled' in change) this.record.enabled = change.enabled;
    else this.record.config = change.config;
    this.setGeneration(generation);
    if (this.settled() || 'config' in change) this.observed = this.desiredGeneration;
  }

  /** A newer generation of the same desire (nothing this node runs differs): observed at once when settled. */
  catchUp(generation: number): void {
    if (generation <= this.desiredGeneration) return;
    this.setGeneration(generation);
    if (this.settled()) this.observed = generation;
  }

  private setGeneration(generation: number): void {
    this.desiredGeneration = generation;
    this.record.generation = generation;
  }

  private settled(): boolean {
    return this.record.enabled ? this.current === 'running' : this.current === 'not_running';
  }

  /**
   * The state and error found when the host opened, before any move (a plugin
   * folder that could not be placed is failed_to_start). Not a move: nothing is reported.
   */
  restored(lastError: string, initial: 'not_running' | 'failed_to_start' = this.current as 'not_running'): void {
    if (this.moved) throw Errors.ILLEGAL_TRANSITION(this.record.id, this.current, initial, 'restored', 'the plugin has already moved');
    this.current = initial;
    this.error = lastError;
  }

  /** The only way the state changes: checked against MOVES, then reported (logged, persisted, emitted by the host). */
  transition(to: PluginState, reason: Reason, lastError: string | null): void {
    const from = this.current;
    const refused = checkMove(from, to, reason, this.record.enabled);
    if (refused) throw Errors.ILLEGAL_TRANSITION(this.record.id, from, to, reason, refused);
    this.moved = true;
    this.observed = this.desiredGeneration;
    if (from === to && lastError === this.error) return;
    this.current = to;
    this.error = lastError;
    this.report({ pluginId: this.record.id, from, state: to, reason, lastError, generation: this.desiredGeneration });
  }
}
