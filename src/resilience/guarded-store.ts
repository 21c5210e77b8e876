/**
 * @module resilience/guarded-store
 * Wraps a SessionStore so every call is bounded by a timeout and goes through a
 * circuit breaker: while the store is down, calls fail fast with StoreUnavailableError
 * instead of piling up, and the breaker probes again by itself.
 */

import { ErrorReply } from 'redis';
import { reasonOf } from '../errors.js';
import type { SessionStore } from '../sessions/session-store.js';
import {
  Breaker,
  type BreakerOptions,
  type CircuitStateName,
  DeadlineError,
  withDeadline,
} from './breaker.js';

/** The session store could not answer (down, timed out, or the breaker is open). */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  /**
   * What the operation the call was part of had done before it (a cleanup's removals so far):
   * the 503's answer and its audit row say it, so a run cut short does not read as none.
   */
  counts?: Record<string, number>;
  constructor(
    readonly op: string,
    cause: unknown,
  ) {
    super(`session store unavailable during ${op}: ${reasonOf(cause)}`, {
      cause,
    });
  }
}

/** What the guard reports for every call; metrics and logs subscribe to it. */
export interface StoreCallEvent {
  op: string;
  durationMs: number;
  ok: boolean;
  error?: string;
}

/** A bulk call's bound, as a multiple of a single-session call's (see GuardOptions). */
export const BULK_TIMEOUT_FACTOR = 20;

export interface GuardOptions extends Omit<BreakerOptions, 'isFault'> {
  /** Bound on a single-session call, in milliseconds. */
  timeoutMs: number;
  /** Bound on calls whose size grows with their input (lists, bulk deletes), in milliseconds. */
  bulkTimeoutMs?: number;
  /** Bound on a repair walk of every index, in milliseconds. @default 120 × timeoutMs */
  repairTimeoutMs?: number;
  onCall?: (event: StoreCallEvent) => void;
}

/**
 * Bulk reads: a page or a figure waiting up to the bulk bound behind a Redis that other calls
 * have found down answers 503 once the breaker opens, not 10 s later (seen on a user's page
 * right after a revocation, Redis paused). Bulk writes keep their bound: what they did must be
 * known before they are reported.
 */
const ABANDONABLE_OPS = new Set([
  'userSessionIds',
  'list',
  'listIds',
  'listExpired',
  'listByUser',
  'counts',
  'sample',
  'countsByRole',
  'topUsers',
  'healthReport',
]);

const BULK_OPS = new Set([
  'deleteMany',
  'takeMany',
  'takeOfUser',
  'collectSetAside',
  'takeExpired',
  ...ABANDONABLE_OPS,
]);

/** Walks of the whole store, run on an operator's request; bounded by `repairTimeoutMs`. */
const REPAIR_OPS = new Set(['repairIndexes', 'removeUnreadable']);

export interface GuardedStore extends SessionStore {
  readonly breaker: { state: CircuitStateName; since: number };
}

// Redis replies that mean "not now" rather than "wrong request": loading its data after a
// restart, a script hogging it, a replica cut off from its primary, a full memory.
const TRANSIENT_REPLY_RE = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|OOM)\b/;
// SQLSTATE classes of a statement the database understood and refused: data exception,
// integrity constraint, syntax or access rule. A bug to fix, not an outage to wait out.
const SQL_REFUSAL_RE = /^(22|23|42)[0-9A-Z]{3}$/;
const SQLITE_REFUSAL_RE = /^SQLITE_(CONSTRAINT|MISMATCH|RANGE|ERROR$)/;

/**
 * True when an error says the store could not answer (down, slow, overloaded), false when it
 * answered and refused (a bug, a bad argument, a constraint). Only the first kind counts
 * towards opening the breaker and becomes a 503: a request that trips over a bug must not
 * take the store away from everybody else. Unknown errors count as faults, so the doubt
 * fails closed.
 */
export function isStoreFault(error: unknown): boolean {
  if (error instanceof ErrorReply) return TRANSIENT_REPLY_RE.test(error.message);
  if (
    error instanceof RangeError ||
    error instanceof TypeError ||
    error instanceof SyntaxError ||
    error instanceof ReferenceError
  ) {
    return false;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (SQL_REFUSAL_RE.test(code) || SQLITE_REFUSAL_RE.test(code))) {
    return false;
  }
  return true;
}

export function guardStore(inner: SessionStore, opts: GuardOptions): GuardedStore {
  const breaker = new Breaker({ ...opts, isFault: isStoreFault });
  const status = breaker.status;
  const bulkMs = opts.bulkTimeoutMs ?? opts.timeoutMs * BULK_TIMEOUT_FACTOR;
  const repairMs = opts.repairTimeoutMs ?? opts.timeoutMs * 120;
  const boundOf = (op: string) =>
    REPAIR_OPS.has(op) ? repairMs : BULK_OPS.has(op) ? bulkMs : opts.timeoutMs;

  const call = <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    return breaker.run(fn, boundOf(op), ABANDONABLE_OPS.has(op)).then(
      (result) => {
        opts.onCall?.({ op, durationMs: performance.now() - start, ok: true });
        return result;
      },
      (err: unknown) => {
        const error = isStoreFault(err) ? new StoreUnavailableError(op, err) : err;
        const message = reasonOf(error);
        opts.onCall?.({ op, durationMs: performance.now() - start, ok: false, error: message });
        throw error;
      },
    );
  };

  return {
    kind: inner.kind,
    bulkChunk: inner.bulkChunk,
    bulkWindow: inner.bulkWindow,
    breaker: status,
    create: (s, options) => call('create', () => inner.create(s, options)),
    get: (id) => call('get', () => inner.get(id)),
    // Synchronous and never waits; while the breaker is not closed it knows nothing, so an open
    // breaker answers 503 as before.
    ...(inner.peek
      ? { peek: (id: string) => (status.state === 'closed' ? inner.peek!(id) : undefined) }
      : {}),
    memoryStats: () => inner.memoryStats?.(),
    touch: (id, at, idle) => call('touch', () => inner.touch(id, at, idle)),
    delete: (id) => call('delete', () => inner.delete(id)),
    deleteMany: (ids) => call('deleteMany', () => inner.deleteMany(ids)),
    takeMany: (ids) => call('takeMany', () => inner.takeMany(ids)),
    userSessionIds: (userId) => call('userSessionIds', () => inner.userSessionIds(userId)),
    takeOfUser: (userId, ids) => call('takeOfUser', () => inner.takeOfUser(userId, ids)),
    // A fence never fails the write before it (see invalidationFence): no breaker, no bound.
    ...(inner.fence ? { fence: () => inner.fence!() } : {}),
    ...(inner.collectSetAside
      ? {
          collectSetAside: (ids: readonly string[]) =>
            call('collectSetAside', () => inner.collectSetAside!(ids)),
        }
      : {}),
    // Told after the fact, from the store's own timer: nothing to bound or count.
    ...(inner.onLateCollection
      ? { onLateCollection: (listener) => inner.onLateCollection!(listener) }
      : {}),
    // A wait on this process's own follow-ups, bounded by the store itself.
    ...(inner.settled ? { settled: () => inner.settled!() } : {}),
    takeExpired: (before, limit, options) =>
      call('takeExpired', () => inner.takeExpired(before, limit, options)),
    listByUser: (userId) => call('listByUser', () => inner.listByUser(userId)),
    list: (q) => call('list', () => inner.list(q)),
    listIds: (q) => call('listIds', () => inner.listIds(q)),
    listExpired: (before, limit) => call('listExpired', () => inner.listExpired(before, limit)),
    counts: (now) => call('counts', () => inner.counts(now)),
    ping: () => call('ping', () => inner.ping()),
    time: () => call('time', () => inner.time()),
    sample: (limit) => call('sample', () => inner.sample(limit)),
    countsByRole: (now) => call('countsByRole', () => inner.countsByRole(now)),
    topUsers: (limit) => call('topUsers', () => inner.topUsers(limit)),
    healthReport: (now, edges) => call('healthReport', () => inner.healthReport(now, edges)),
    repairIndexes: () => call('repairIndexes', () => inner.repairIndexes()),
    removeUnreadable: () => call('removeUnreadable', () => inner.removeUnreadable()),
    info: () => call('info', () => inner.info()),
    close: () => inner.close(),
  };
}

/**
 * Makes every method of `target` fail at once while the session store's breaker is not closed,
 * and (with `timeoutMs`) give up after that long otherwise: for helpers that call the same Redis
 * directly (the sign-in attempt counter, the users' change counter). Without it each of their
 * calls would wait in the client's queue for as long as a paused Redis stays paused, one more
 * per request: the unbounded queue of case C07.
 */
export function failFastWhileOpen<T extends object>(
  target: T,
  store: GuardedStore,
  timeoutMs?: number,
): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      // A peek is synchronous and never waits: while the breaker is not closed it knows nothing.
      if (prop === 'peek') {
        return (...args: unknown[]) =>
          store.breaker.state === 'closed' ? value.apply(obj, args) : undefined;
      }
      return (...args: unknown[]) => {
        // Half-open too: then the store gets the breaker's one trial call and nothing else.
        if (store.breaker.state !== 'closed') {
          return Promise.reject(new StoreUnavailableError(String(prop), 'the breaker is open'));
        }
        const call = Promise.resolve(value.apply(obj, args));
        if (timeoutMs === undefined) return call;
        return withDeadline(call, timeoutMs).catch((err: unknown) => {
          throw err instanceof DeadlineError ? new StoreUnavailableError(String(prop), err) : err;
        });
      };
    },
  });
}
