/**
 * @module admin/stats-snapshot
 * A figure computed at most every so often and kept in this process, so a console that
 * polls every few seconds, or ten consoles at once, cost the store one computation per
 * interval rather than one per request.
 */

import { reasonOf } from '../errors.js';
import { waitAtMost } from '../resilience/wait-at-most.js';

export interface Snapshot<T> {
  /** When the figures were taken, by the app's clock (epoch milliseconds); null before the first. */
  takenAt: number | null;
  /** How long taking them took, in milliseconds. */
  tookMs: number;
  data: T | null;
  /** Why the last attempt to refresh failed, when it did; `data` is then the previous figures. */
  error: string | null;
}

export interface SnapshotOptions {
  /** Figures younger than this are served as they are, in milliseconds. */
  maxAgeMs: number;
  /**
   * Figures that took long to compute are kept longer: at least this many times their cost,
   * so a computation never takes more than about 1/dutyFactor of the time. @default 20
   */
  dutyFactor?: number;
  /** How long a request waits for a refresh before it is answered with the older figures. @default 20 */
  waitMs?: number;
  /**
   * How long it waits instead when the figures are older than twice their lifetime (nobody
   * looked for a while): figures that old would mislead, as a reload after a revocation
   * showing its sessions still there. @default 2000
   */
  staleWaitMs?: number;
  /** The app's clock, for `takenAt`. */
  clock: () => number;
  /** Told of a failed refresh. */
  onError?: (err: unknown) => void;
}

/**
 * Serves the last figures while they are fresh; once stale, starts one refresh and waits
 * briefly for it, answering with the previous figures if it takes longer (they say when they
 * were taken); after an idle spell it waits longer (staleWaitMs). Only the first request ever
 * waits for the whole computation.
 */
export class CachedFigure<T> {
  readonly #compute: () => Promise<T>;
  readonly #opts: Required<Omit<SnapshotOptions, 'onError'>> & Pick<SnapshotOptions, 'onError'>;
  #current: Snapshot<T> = { takenAt: null, tookMs: 0, data: null, error: null };
  /** performance.now() after which the current figures are stale. */
  #staleAt = 0;
  /** performance.now() when the current figures were taken. */
  #takenPerf = 0;
  #inflight: Promise<void> | null = null;

  constructor(compute: () => Promise<T>, opts: SnapshotOptions) {
    this.#compute = compute;
    this.#opts = { dutyFactor: 20, waitMs: 20, staleWaitMs: 2_000, ...opts };
  }

  async get(): Promise<Snapshot<T>> {
    if (performance.now() < this.#staleAt) return this.#current;

    const now = performance.now();
    const old = now - this.#takenPerf > 2 * (this.#staleAt - this.#takenPerf);
    const refresh = this.#refresh();
    if (this.#current.takenAt === null) {
      await refresh;
    } else {
      await waitAtMost(refresh, old ? this.#opts.staleWaitMs : this.#opts.waitMs);
    }
    return this.#current;
  }

  /**
   * Marks the figures stale. `now` (after a repair): the next request takes them again.
   * `soon` (after a change seen elsewhere, such as a cleanup run): once they are older than
   * the maximum age, even if they were costly, so frequent changes cannot force a computation
   * per request.
   */
  invalidate(when: 'now' | 'soon' = 'now'): void {
    this.#staleAt =
      when === 'now' ? 0 : Math.min(this.#staleAt, this.#takenPerf + this.#opts.maxAgeMs);
  }

  #refresh(): Promise<void> {
    this.#inflight ??= (async () => {
      const start = performance.now();
      try {
        const data = await this.#compute();
        const tookMs = performance.now() - start;
        this.#current = { takenAt: this.#opts.clock(), tookMs, data, error: null };
        this.#takenPerf = performance.now();
        this.#staleAt =
          performance.now() + Math.max(this.#opts.maxAgeMs, tookMs * this.#opts.dutyFactor);
      } catch (err) {
        this.#opts.onError?.(err);
        this.#current = {
          ...this.#current,
          error: reasonOf(err),
        };
        // A failing store is asked again after the usual interval, not on every request.
        this.#staleAt = performance.now() + this.#opts.maxAgeMs;
      } finally {
        this.#inflight = null;
      }
    })();
    return this.#inflight;
  }
}
