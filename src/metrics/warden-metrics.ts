/**
 * @module metrics/warden-metrics
 * What Warden counts about itself for Prometheus: sign-ins and their failures, sign-outs,
 * revocations by reason, cleanups, the latency of every session-store call (fed by the
 * guarded store's `onCall`), the breaker's state, and the session counts read at scrape time.
 * Counters are this process's own, as Prometheus expects: it sums instances itself.
 */
import type { GuardedStore, StoreCallEvent } from '../resilience/guarded-store.js';
import type { SessionChange } from '../sessions/session-service.js';
import { Counter, Gauge, Histogram, Registry } from './registry.js';

/** Store-call latency buckets, in seconds: sub-millisecond Redis up to the 500 ms timeout. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Reasons a sign-in is refused, as label values; anything else counts as `other`. */
const FAILURE_REASONS: Record<string, string> = {
  WARDEN_AUTH_INVALID_CREDENTIALS: 'invalid_credentials',
  WARDEN_AUTH_NOT_APPROVED: 'not_approved',
  WARDEN_AUTH_SESSION_LIMIT: 'session_limit',
  WARDEN_RATE_LIMITED: 'rate_limited',
  WARDEN_VALIDATION: 'invalid_request',
  WARDEN_STORE_UNAVAILABLE: 'store_unavailable',
};

const BREAKER_STATES = ['closed', 'half_open', 'open'] as const;

export class WardenMetrics {
  readonly #registry = new Registry();
  readonly #signIns = this.#registry.add(
    new Counter('warden_sign_ins_total', 'Sessions started by a successful sign-in.'),
  );
  readonly #signInFailures = this.#registry.add(
    new Counter('warden_sign_in_failures_total', 'Sign-ins refused, by reason.', ['reason']),
  );
  readonly #signOuts = this.#registry.add(
    new Counter('warden_sign_outs_total', 'Sessions ended by their own sign-out.'),
  );
  readonly #revocations = this.#registry.add(
    new Counter(
      'warden_session_revocations_total',
      'Live sessions ended by someone else, by reason (revoked, user_disabled, role_changed ...).',
      ['reason'],
    ),
  );
  readonly #cleaned = this.#registry.add(
    new Counter('warden_sessions_cleaned_total', 'Expired sessions removed by cleanup.'),
  );
  readonly #storeCalls = this.#registry.add(
    new Histogram(
      'warden_store_call_duration_seconds',
      'Session-store calls through the timeout and breaker, by operation and outcome.',
      LATENCY_BUCKETS_S,
      ['op', 'outcome'],
    ),
  );

  /** For the guarded store's `onCall`: one observation per call. */
  storeCall(event: StoreCallEvent): void {
    this.#storeCalls.observe(
      { op: event.op, outcome: event.ok ? 'ok' : 'error' },
      event.durationMs / 1000,
    );
  }

  /** For the session service's `onChange`. */
  sessionChange(change: SessionChange): void {
    if (change.type === 'signed_in') this.#signIns.inc();
    else if (change.type === 'signed_out') this.#signOuts.inc();
    else if (change.type === 'revoked') {
      this.#revocations.inc({ reason: change.reason }, change.sessionIds.length);
    } else if (change.type === 'cleaned_up') this.#cleaned.inc({}, change.count);
  }

  /** A refused sign-in, by the code of the error it was refused with. */
  signInFailed(code: string): void {
    this.#signInFailures.inc({ reason: FAILURE_REASONS[code] ?? 'other' });
  }

  /**
   * The exposition text. Session counts are read from the store now (two index counts);
   * when it cannot answer, `warden_store_up` says 0 and the counts are left out rather than
   * shown as zero.
   */
  async render(store: GuardedStore, now: number): Promise<string> {
    let counts: { active: number; expired: number } | null = null;
    try {
      counts = await store.counts(now);
    } catch {
      counts = null;
    }
    const { state, since } = store.breaker;
    const memory = store.memoryStats?.();
    // Read at scrape time from the cache's own running totals, so exposed as counters anew.
    const memoryReads = new Counter(
      'warden_session_cache_reads_total',
      'Validations that looked for their session in memory, by result (hit or miss).',
      ['result'],
    );
    if (memory) {
      memoryReads.inc({ result: 'hit' }, memory.hits);
      memoryReads.inc({ result: 'miss' }, memory.misses);
    }

    const scrape = [
      new Gauge(
        'warden_store_up',
        'Whether the session store answered this scrape (1) or not (0).',
        () => [{ labels: { store: store.kind }, value: counts ? 1 : 0 }],
      ),
      new Gauge('warden_sessions', 'Stored sessions by status, at scrape time.', () =>
        counts
          ? [
              { labels: { status: 'active' }, value: counts.active },
              { labels: { status: 'expired' }, value: counts.expired },
            ]
          : [],
      ),
      new Gauge(
        'warden_store_circuit_state',
        "The session store breaker's state: 1 for the current one.",
        () => BREAKER_STATES.map((s) => ({ labels: { state: s }, value: s === state ? 1 : 0 })),
      ),
      memoryReads,
      new Gauge(
        'warden_session_cache_entries',
        'Sessions kept in memory for validation (SESSION_CACHE_MAX at most).',
        () => (memory ? [{ value: memory.size }] : []),
      ),
      new Gauge(
        'warden_store_circuit_changed_timestamp_seconds',
        'When the breaker last opened or closed (or this process started), in Unix seconds.',
        () => [{ value: since / 1000 }],
      ),
    ];
    return this.#registry.render(scrape);
  }
}
