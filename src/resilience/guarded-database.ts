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
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { isStoreFault } from './guarded-store.js';

/** The database could not answer (down, too slow, or the breaker is open). */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  constructor(op: string, cause: unknown) {
    super(
      `database unavailable during ${op}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

export type CircuitStateName = 'closed' | 'open' | 'half_open';

export interface GuardedPool extends PostgresPool {
  readonly breaker: { state: CircuitStateName; since: number };
}

export interface DatabaseGuardOptions {
  /** Bound on one query, in milliseconds. */
  timeoutMs: number;
  /** Consecutive failures that open the breaker. @default 5 */
  failuresToOpen?: number;
  /** Pause before the breaker lets a trial query through, in milliseconds. @default 2000 */
  halfOpenAfterMs?: number;
  onStateChange?: (state: CircuitStateName) => void;
}

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'open',
};

/**
 * Wraps a pg Pool for Kysely's PostgresDialect. Waiting for a connection is bounded by the
 * pool's own `connectionTimeoutMillis` (set it to the same timeout), which also gives back a
 * connection that arrives late; the breaker counts those failures too.
 */
export function guardPool(pool: pg.Pool, opts: DatabaseGuardOptions): GuardedPool {
  const breaker: CircuitBreakerPolicy = circuitBreaker(handleWhen(isStoreFault), {
    halfOpenAfter: opts.halfOpenAfterMs ?? 2_000,
    breaker: new ConsecutiveBreaker(opts.failuresToOpen ?? 5),
  });
  const status = { state: 'closed' as CircuitStateName, since: Date.now() };
  breaker.onStateChange((state) => {
    status.state = STATE_NAMES[state];
    status.since = Date.now();
    opts.onStateChange?.(status.state);
  });
  const bounded = wrap(breaker, timeout(opts.timeoutMs, TimeoutStrategy.Aggressive));

  const run = async <T>(
    op: string,
    fn: () => Promise<T>,
    policy: CircuitBreakerPolicy | typeof bounded,
  ) => {
    try {
      // One trial at a time, the others refused at once rather than held for up to the bound.
      if (status.state === 'half_open') throw new BrokenCircuitError('a trial query is under way');
      return await policy.execute(fn, new AbortController().signal);
    } catch (err) {
      throw isStoreFault(err) ? new DatabaseUnavailableError(op, err) : err;
    }
  };

  return {
    breaker: status,
    async connect(): Promise<PostgresPoolClient> {
      const client = await run('connect', () => pool.connect(), breaker);
      let broken = false;
      // A connection lost while checked out between two queries: pg emits it on the client,
      // where nobody listens (the pool listens only to idle ones), and the process would crash.
      const lost = () => {
        broken = true;
      };
      client.on('error', lost);
      const query = (text: unknown, parameters?: ReadonlyArray<unknown>) => {
        if (typeof text !== 'string') return client.query(text as pg.Submittable);
        return run('query', () => client.query(text, parameters as unknown[]), bounded).catch(
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
