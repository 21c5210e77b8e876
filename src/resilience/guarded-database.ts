/**
 * @module resilience/guarded-database
 * Bounds every PostgreSQL query by a timeout and sends it through a circuit breaker, as the
 * session store's calls are (guarded-store.ts): a database that stops answering turns into
 * fast 503s (WARDEN_DATABASE_UNAVAILABLE) instead of requests hanging on it, and the pool
 * heals by itself when it answers again.
 *
 * A query that timed out leaves its connection with an answer still owed, so that connection
 * is destroyed on release rather than handed to the next query. Streams (cursors) pass
 * through unbounded: an export may rightly run for minutes, and its reader has its own limits.
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { reasonOf } from '../errors.js';
import { Breaker, type BreakerOptions, type CircuitStateName } from './breaker.js';
import { isStoreFault } from './guarded-store.js';

/** The database could not answer (down, too slow, or the breaker is open). */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  constructor(op: string, cause: unknown) {
    super(`database unavailable during ${op}: ${reasonOf(cause)}`, { cause });
  }
}

export interface GuardedPool extends PostgresPool {
  readonly breaker: { state: CircuitStateName; since: number };
}

export interface DatabaseGuardOptions extends Omit<BreakerOptions, 'isFault'> {
  /** Bound on one query, in milliseconds. */
  timeoutMs: number;
}

/**
 * Wraps a pg Pool for Kysely's PostgresDialect. Waiting for a connection is bounded by the
 * pool's own `connectionTimeoutMillis` (set it to the same timeout), which also gives back a
 * connection that arrives late; the breaker counts those failures too.
 */
export function guardPool(pool: pg.Pool, opts: DatabaseGuardOptions): GuardedPool {
  const breaker = new Breaker({ ...opts, isFault: isStoreFault });
  const status = breaker.status;

  /** `bounded`: the query gets the timeout; waiting for a connection has the pool's own. */
  const run = <T>(op: string, fn: () => Promise<T>, bounded: boolean): Promise<T> =>
    breaker.run(fn, bounded ? opts.timeoutMs : undefined).catch((err: unknown) => {
      throw isStoreFault(err) ? new DatabaseUnavailableError(op, err) : err;
    });

  return {
    breaker: status,
    async connect(): Promise<PostgresPoolClient> {
      const client = await run('connect', () => pool.connect(), false);
      let broken = false;
      // A connection lost while checked out between two queries: pg emits it on the client,
      // where nobody listens (the pool listens only to idle ones), and the process would crash.
      const lost = () => {
        broken = true;
      };
      client.on('error', lost);
      const query = (text: unknown, parameters?: ReadonlyArray<unknown>) => {
        if (typeof text !== 'string') return client.query(text as pg.Submittable);
        return run('query', () => client.query(text, parameters as unknown[]), true).catch(
          (err: unknown) => {
            if (err instanceof DatabaseUnavailableError) broken = true;
            throw err;
          },
        );
      };
      return {
        query: query as unknown as PostgresPoolClient['query'],
        release: (destroy?: boolean) => {
          client.off('error', lost);
          client.release(broken || destroy === true);
        },
      };
    },
    end: () => pool.end(),
  };
}
