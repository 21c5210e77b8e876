/**
 * @module resilience/breaker
 * What both guards (session store, PostgreSQL) put around a call: a deadline, and a breaker
 * that opens after consecutive faults, lets one trial call through after a pause, closes when
 * the trial succeeds and opens again when it fails. While a trial runs, every other call fails
 * at once: held calls would wait up to the trial's bound (seconds for a listing), far past the
 * single-call bound their requests were promised.
 *
 * Written here rather than taken from cockatiel, which this replaced: session validation goes
 * through it on every request, and cockatiel's per-call AbortController, the DOMException of
 * aborting it when the call ended and its layers of promises and events were about a tenth of
 * a validation's CPU. Here a call in the closed state is one promise and one timer.
 */

export type CircuitStateName = 'closed' | 'open' | 'half_open';

/** The breaker refused the call without trying it. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
}

/** The call did not settle within its deadline (it may still complete; its answer is dropped). */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

export interface BreakerOptions {
  /** Consecutive faults that open the breaker. @default 5 */
  failuresToOpen?: number;
  /** Pause before the breaker lets a trial call through, in milliseconds. @default 2000 */
  halfOpenAfterMs?: number;
  /** Which errors mean the dependency failed (the others are its answers, e.g. a refusal). */
  isFault: (error: unknown) => boolean;
  /**
   * Told of each change; `trial` for the changes an outage's trials make (half open, and open
   * again after a failed trial), which come every `halfOpenAfterMs` while it lasts.
   */
  onStateChange?: (state: CircuitStateName, at: number, trial: boolean) => void;
}

export class Breaker {
  /**
   * Current state, and when the breaker last opened or closed: the trials of an outage do not
   * move `since`, so that it says when the outage began. Read by callers that must not wait.
   */
  readonly status: { state: CircuitStateName; since: number } = {
    state: 'closed',
    since: Date.now(),
  };
  readonly #failuresToOpen: number;
  readonly #halfOpenAfterMs: number;
  readonly #isFault: (error: unknown) => boolean;
  readonly #onStateChange: BreakerOptions['onStateChange'];
  #failures = 0;
  /** When the current state began, trials included: the pause before a trial counts from it. */
  #enteredAt = Date.now();
  /** Calls that give up when the breaker opens (see run's `abandonOnOpen`). */
  readonly #abandonable = new Set<() => void>();

  constructor(opts: BreakerOptions) {
    this.#failuresToOpen = opts.failuresToOpen ?? 5;
    this.#halfOpenAfterMs = opts.halfOpenAfterMs ?? 2_000;
    this.#isFault = opts.isFault;
    this.#onStateChange = opts.onStateChange;
  }

  /**
   * Runs `work` under the breaker, rejecting with DeadlineError after `deadlineMs` if given.
   * With `abandonOnOpen` (a read, whose answer nobody needs once the caller has given up), it
   * also rejects with CircuitOpenError as soon as the breaker opens, rather than waiting out
   * a long bound behind a dependency that other calls have just found down.
   */
  run<T>(work: () => Promise<T>, deadlineMs?: number, abandonOnOpen = false): Promise<T> {
    const { state } = this.status;
    if (state === 'half_open') {
      return Promise.reject(new CircuitOpenError('a trial call is under way'));
    }
    if (state === 'open') {
      if (Date.now() - this.#enteredAt < this.#halfOpenAfterMs) {
        return Promise.reject(new CircuitOpenError('the circuit is open'));
      }
      this.#enter('half_open');
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const abandon = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new CircuitOpenError('the circuit opened while waiting'));
      };
      if (abandonOnOpen) this.#abandonable.add(abandon);
      const timer =
        deadlineMs === undefined
          ? undefined
          : setTimeout(() => {
              settled = true;
              this.#abandonable.delete(abandon);
              this.#failed(true);
              reject(new DeadlineError(`no answer in ${deadlineMs} ms`));
            }, deadlineMs);
      const succeed = (value: T) => {
        if (settled) return;
        settled = true;
        this.#abandonable.delete(abandon);
        clearTimeout(timer);
        this.#succeeded();
        resolve(value);
      };
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        this.#abandonable.delete(abandon);
        clearTimeout(timer);
        const fault = this.#isFault(error);
        // A refusal is an answer: the dependency is there, so a trial that meets one closes.
        if (fault) this.#failed(true);
        else this.#succeeded();
        reject(error);
      };
      try {
        work().then(succeed, fail);
      } catch (error) {
        fail(error);
      }
    });
  }

  #succeeded(): void {
    // While open, a late answer to a call from before is no trial: the pause still runs.
    if (this.status.state === 'open') return;
    this.#failures = 0;
    if (this.status.state === 'half_open') this.#enter('closed');
  }

  #failed(fault: boolean): void {
    if (!fault) return;
    this.#failures += 1;
    const trialFailed = this.status.state === 'half_open';
    if (trialFailed || (this.status.state === 'closed' && this.#failures >= this.#failuresToOpen)) {
      this.#enter('open');
    }
  }

  #enter(state: CircuitStateName): void {
    const opened = this.status.state === 'closed';
    this.status.state = state;
    this.#enteredAt = Date.now();
    const trial = !opened && state !== 'closed';
    if (!trial) this.status.since = this.#enteredAt;
    this.#onStateChange?.(state, this.#enteredAt, trial);
    if (state !== 'open') return;
    const waiting = [...this.#abandonable];
    this.#abandonable.clear();
    for (const abandon of waiting) abandon();
  }
}

/**
 * `work`, or a DeadlineError when it has not settled within `ms`, without a breaker: for calls
 * that only need the bound. The work itself goes on; its late answer is dropped.
 */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError(`no answer in ${ms} ms`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
