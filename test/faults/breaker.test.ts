/**
 * Case C08 of shared/CASES.md: the breaker never leaves the open state. Here on a store that
 * fails on command: the breaker opens, lets one trial call through after its pause, opens again
 * when the trial fails (and schedules the next one), and closes once a trial succeeds. Also:
 * a refusal (a bug, a bad argument) is not an outage and never opens it.
 */
import { describe, expect, it } from 'vitest';
import {
  type GuardedStore,
  guardStore,
  StoreUnavailableError,
} from '../../src/resilience/guarded-store.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { sleep } from './harness.js';

const HALF_OPEN_AFTER_MS = 150;

/** A store whose ping fails while `down`, slowly when `hang` (the timeout then fires). */
function flakyStore() {
  const state = { down: false, hang: false, calls: 0 };
  const store = {
    kind: 'redis',
    async ping() {
      state.calls += 1;
      if (state.hang) await sleep(1_000);
      if (state.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6399');
      return 0.1;
    },
    async list() {
      state.calls += 1;
      if (state.hang) await sleep(1_000);
      if (state.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6399');
      return { items: [], total: 0, skipped: 0 };
    },
    async get(id: string) {
      state.calls += 1;
      throw new RangeError(`bad id ${id}`);
    },
  } as unknown as SessionStore;
  return { state, store };
}

function guarded(store: SessionStore) {
  const changes: string[] = [];
  const g = guardStore(store, {
    timeoutMs: 50,
    failuresToOpen: 3,
    halfOpenAfterMs: HALF_OPEN_AFTER_MS,
    // A trial's changes marked, as the log writes them at debug level only.
    onStateChange: (state, _at, trial) => changes.push(trial ? `(${state})` : state),
  });
  return { g, changes };
}

async function failures(g: GuardedStore, n: number) {
  for (let i = 0; i < n; i++) await expect(g.ping()).rejects.toThrow(StoreUnavailableError);
}

describe('C08 the circuit breaker', () => {
  it('C08: opens, lets one trial through per pause, reopens on a failed trial and closes on a good one', async () => {
    const { state, store } = flakyStore();
    const { g, changes } = guarded(store);

    state.down = true;
    await failures(g, 3);
    expect(g.breaker.state).toBe('open');
    const openedAt = g.breaker.since;

    // Open: calls fail at once and never reach the store.
    const before = state.calls;
    await failures(g, 20);
    expect(state.calls).toBe(before);

    // After the pause, ten calls at once: exactly one reaches the store, the trial.
    await sleep(HALF_OPEN_AFTER_MS + 20);
    const burst = await Promise.allSettled(Array.from({ length: 10 }, () => g.ping()));
    expect(state.calls).toBe(before + 1);
    expect(burst.every((r) => r.status === 'rejected')).toBe(true);
    expect(g.breaker.state).toBe('open');
    // The failed trial is part of the same outage: `since` still says when it began.
    expect(g.breaker.since).toBe(openedAt);

    // The failed trial scheduled another after a new pause, not never.
    await failures(g, 5);
    expect(state.calls).toBe(before + 1);
    await sleep(HALF_OPEN_AFTER_MS + 20);
    state.down = false;
    await expect(g.ping()).resolves.toBe(0.1);
    expect(g.breaker.state).toBe('closed');
    expect(g.breaker.since).toBeGreaterThanOrEqual(openedAt + 2 * HALF_OPEN_AFTER_MS);
    await expect(g.ping()).resolves.toBe(0.1);

    expect(changes).toEqual(['open', '(half_open)', '(open)', '(half_open)', 'closed']);
  });

  it('C08: a trial that hangs is cut by the timeout, so half-open never lasts', async () => {
    const { state, store } = flakyStore();
    const { g } = guarded(store);
    state.down = true;
    await failures(g, 3);

    state.hang = true;
    await sleep(HALF_OPEN_AFTER_MS + 20);
    const started = performance.now();
    const [trial, waiting] = await Promise.allSettled([g.ping(), g.ping()]);
    expect(performance.now() - started).toBeLessThan(400);
    expect(trial.status).toBe('rejected');
    expect(waiting.status).toBe('rejected');
    expect(g.breaker.state).toBe('open');

    state.hang = false;
    state.down = false;
    await sleep(HALF_OPEN_AFTER_MS + 20);
    await expect(g.ping()).resolves.toBe(0.1);
    expect(g.breaker.state).toBe('closed');
  });

  it('C08: a slow trial (a listing, with its longer bound) never holds the other calls', async () => {
    const { state, store } = flakyStore();
    const { g } = guarded(store);
    state.down = true;
    await failures(g, 3);

    state.hang = true;
    await sleep(HALF_OPEN_AFTER_MS + 20);
    const trial = g.list({ now: 0, offset: 0, limit: 10 });
    const started = performance.now();
    await expect(g.ping()).rejects.toThrow(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(50);
    expect(g.breaker.state).toBe('half_open');
    await expect(trial).rejects.toThrow(StoreUnavailableError);
    expect(g.breaker.state).toBe('open');
  });

  it('should give up a slow read as soon as other calls open the breaker, not at its own bound', async () => {
    const { state, store } = flakyStore();
    const { g } = guarded(store);
    // A listing (bound: 20 times the single-call bound, 1,000 ms) waits on a store that hangs…
    state.hang = true;
    const started = performance.now();
    const listing = g.list({ now: 0, offset: 0, limit: 10 });
    // …while single calls find it down and open the breaker.
    state.down = true;
    await failures(g, 3);
    expect(g.breaker.state).toBe('open');
    await expect(listing).rejects.toThrow(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('should pass a refusal through as itself, without counting it towards opening', async () => {
    const { store } = flakyStore();
    const { g, changes } = guarded(store);

    for (let i = 0; i < 10; i++) await expect(g.get('x')).rejects.toThrow(RangeError);

    expect(g.breaker.state).toBe('closed');
    expect(changes).toEqual([]);
  });
});
