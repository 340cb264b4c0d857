/**
 * Group commit on PostgreSQL: the KV calls of one CallStream message run in
 * one transaction on one pooled connection (BEGIN, the statements, COMMIT),
 * so a message of many writes costs one commit (one WAL flush) instead of one
 * per write. Every call's promise settles only after that COMMIT, so an
 * acknowledged write is a committed one, as with a lone statement.
 *
 * A statement the server refuses (bad data, a constraint) fails alone: the
 * transaction, which PostgreSQL has aborted, is rolled back and begun again
 * with the other calls, in order. No savepoint per call: that would be two
 * more round trips per call, and past 64 writing subtransactions in one
 * transaction PostgreSQL's subtransaction cache overflows, which slows the
 * snapshots of every other session while the transaction is open. A refusal
 * is rare; redoing the calls before it costs only then.
 *
 * An error that ends the transaction itself (a deadlock or serialization
 * failure, the session or server going away) fails that call with its own
 * error and every call that ran before it in the transaction with
 * STORE_BATCH_ROLLED_BACK, as SQLite's batch does; the calls after it run in
 * a new transaction.
 */
import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg';
import { Errors } from '../errors';

/** One KV call waiting for its batch: its statement, whether it writes, and where its outcome goes. */
interface BatchedCall {
  method: string;
  statement: QueryConfig;
  writes: boolean;
  resolve(result: QueryResult): void;
  reject(err: Error): void;
}

/** What a PostgresStore lends the batch: its pool, its name for messages, and how driver errors become ours. */
export interface BatchHost {
  pool: Pool;
  where: string;
  closed(): boolean;
  asStoreError(err: unknown): Error;
}

/** The KV calls made inside one Store.batch(); commit() runs them once batch's work has returned. */
export class KvBatch {
  private readonly calls: BatchedCall[] = [];

  constructor(private readonly host: BatchHost) {}

  /** Joins the batch: `statement` runs on the batch's connection inside its transaction. */
  add(method: string, statement: QueryConfig, writes: boolean): Promise<QueryResult> {
    return new Promise<QueryResult>((resolve, reject) => this.calls.push({ method, statement, writes, resolve, reject }));
  }

  /**
   * Runs the calls in as few transactions as their outcomes allow; settles
   * every call's promise; never rejects. A lone call, or calls that only
   * read, have no commit to share: each runs alone on the pool, as outside a
   * batch, so they cost one round trip each and run side by side.
   */
  async commit(): Promise<void> {
    if (this.calls.length === 1 || !this.calls.some((c) => c.writes)) {
      for (const call of this.calls) this.alone(call);
      return;
    }
    let pending = this.calls;
    while (pending.length > 0) {
      if (this.host.closed()) {
        for (const call of pending) call.reject(Errors.STORE_CLOSED(this.host.where, call.method));
        return;
      }
      let client: PoolClient;
      try {
        client = await this.host.pool.connect();
      } catch (err) {
        for (const call of pending) call.reject(this.host.asStoreError(err));
        return;
      }
      let broken = false;
      // The pool listens for 'error' only on idle clients; on a checked-out one a session the
      // server ends would be an unhandled 'error' event and end the process.
      const lost = (): void => { broken = true; };
      client.on('error', lost);
      try {
        while (pending.length > 0 && !broken) {
          pending = await this.attempt(client, pending, () => { broken = true; });
        }
      } finally {
        client.off('error', lost);
        client.release(broken);
      }
    }
  }

  private alone(call: BatchedCall): void {
    if (this.host.closed()) {
      call.reject(Errors.STORE_CLOSED(this.host.where, call.method));
      return;
    }
    this.host.pool.query(call.statement).then(call.resolve, (err: unknown) => call.reject(this.host.asStoreError(err)));
  }

  /** One transaction over `calls`; returns the calls still to run (none once it committed or could not end). */
  private async attempt(client: PoolClient, calls: BatchedCall[], markBroken: () => void): Promise<BatchedCall[]> {
    try {
      await client.query('BEGIN');
    } catch (err) {
      markBroken();
      for (const call of calls) call.reject(this.host.asStoreError(err));
      return [];
    }
    const results: QueryResult[] = [];
    for (let i = 0; i < calls.length; i++) {
      try {
        results.push(await client.query(calls[i].statement));
      } catch (err) {
        await client.query('ROLLBACK').catch(markBroken);
        calls[i].reject(this.host.asStoreError(err));
        if (!endsTransaction(err)) return [...calls.slice(0, i), ...calls.slice(i + 1)];
        const why = `${(err as Error).message} (a call of the batch)`;
        for (const call of calls.slice(0, i)) call.reject(Errors.STORE_BATCH_ROLLED_BACK(this.host.where, why));
        if (!isConnectionError(err)) return calls.slice(i + 1);
        // The session is gone: the calls after it take a new connection.
        markBroken();
        return calls.slice(i + 1);
      }
    }
    try {
      await client.query('COMMIT');
    } catch (err) {
      // Whether a COMMIT whose answer never came took effect is unknown: STORE_UNAVAILABLE, as for a lone statement.
      markBroken();
      for (const call of calls) call.reject(this.host.asStoreError(err));
      return [];
    }
    calls.forEach((call, i) => call.resolve(results[i]));
    return [];
  }
}

/** An SQLSTATE that rolls back the transaction or ends the session, rather than refusing one statement. */
function endsTransaction(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return isConnectionError(err) || /^(40|53|58|XX)/.test(code as string);
}

/** The session or the server went away: no SQLSTATE (the driver's own error), connection exceptions, or an administrator's shutdown. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || /^(08|57P0)/.test(code);
}
