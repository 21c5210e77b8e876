/**
 * @module http/health-routes
 * Probes for load balancers and orchestrators, outside /admin, without sign-in, in JSON:
 *
 * - `GET /healthz`: the process is alive and serving. Touches no store, so a store outage
 *   never gets a healthy process restarted.
 * - `GET /readyz`: the session store and the database answer within a short bound, and the
 *   store's circuit breaker state; 503 when either does not answer. A probe while the breaker is
 *   open and its pause is over is the trial call that closes it again.
 *
 * Answers name what failed by kind only (`timeout`, `circuit_open`, `unreachable`): addresses
 * and driver messages go to the log, not to an unauthenticated client.
 */

import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import { reasonOf } from '../errors.js';
import { everyAtMost, LOG_REPEAT_MS } from '../logger.js';
import { CircuitOpenError, DeadlineError } from '../resilience/breaker.js';

/** Paths the auth hook leaves alone: probes carry no cookie and must not touch a store. */
export const PROBE_PATHS: readonly string[] = ['/healthz', '/readyz'];

/** Longest a readiness check waits for one store, in milliseconds. */
export const READY_CHECK_TIMEOUT_MS = 1_000;

type Failure = 'timeout' | 'circuit_open' | 'unreachable';

interface Check {
  ok: boolean;
  latencyMs: number | null;
  error?: Failure;
}

class CheckTimeout extends Error {}

/** Runs a check, bounded by `ms`; never throws. */
async function probe(run: () => Promise<unknown>, ms: number, onError: (err: unknown) => void) {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout()), ms);
      }),
    ]);
    return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
  } catch (err) {
    onError(err);
    return { ok: false, latencyMs: null, error: failureOf(err) } satisfies Check;
  } finally {
    clearTimeout(timer);
  }
}

function failureOf(err: unknown): Failure {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  if (cause instanceof CircuitOpenError) return 'circuit_open';
  if (cause instanceof DeadlineError || err instanceof CheckTimeout) return 'timeout';
  if (/timeout/i.test(err instanceof Error ? err.message : '')) return 'timeout';
  return 'unreachable';
}

function circuitOf(breaker: { state: string; since: number }) {
  return { state: breaker.state, since: new Date(breaker.since).toISOString() };
}

export const healthRoutes: FastifyPluginAsync = async (app) => {
  const { store, database, config } = app.warden;
  const bound = Math.min(READY_CHECK_TIMEOUT_MS, config.storeTimeoutMs * 2);
  const headers = { 'cache-control': 'no-store' };

  // Probes come every few seconds: their request lines are logged only when they fail.
  app.get('/healthz', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) =>
    reply.headers(headers).send({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }),
  );

  // A probe every few seconds while something is down: one line per LOG_REPEAT_MS for each.
  // The failure's kind and message, not its stack: a ping that failed is no bug to trace.
  const notReady = (what: string) =>
    everyAtMost(LOG_REPEAT_MS, (repeats, log: FastifyBaseLogger, err: unknown) =>
      log.warn(
        {
          event: 'not_ready',
          what,
          error: failureOf(err),
          reason: reasonOf(err),
          ...repeats,
        },
        'readiness check failed',
      ),
    );
  const storeNotReady = notReady('session store');
  const databaseNotReady = notReady('database');

  app.get('/readyz', { logLevel: 'warn', schema: { hide: true } }, async (request, reply) => {
    const [sessionStore, db] = await Promise.all([
      probe(
        () => store.ping(),
        bound,
        (err) => storeNotReady(request.log, err),
      ),
      probe(
        () => database.ping(),
        bound,
        (err) => databaseNotReady(request.log, err),
      ),
    ]);
    const ready = sessionStore.ok && db.ok;

    return reply
      .code(ready ? 200 : 503)
      .headers(headers)
      .send({
        status: ready ? 'ready' : 'not_ready',
        sessionStore: {
          kind: store.kind,
          ...sessionStore,
          circuit: circuitOf(store.breaker),
        },
        database: {
          kind: database.dialect,
          ...db,
          ...(database.breaker ? { circuit: circuitOf(database.breaker) } : {}),
        },
      });
  });
};
