/**
 * @module sessions/read-cache
 * Values read from a store, kept in memory until whoever knows of changes says to forget them:
 * Redis's invalidations (tracked-reads.ts), or on SQLite the store's own writes and another
 * process's commits (sql-store.ts). The part both share is getting the races right:
 *
 * - a read whose key is forgotten while the read is on the way is not kept (its answer may
 *   predate the change);
 * - `reset` forgets everything, including every read on the way;
 * - at most `maxEntries` values, the oldest dropped first.
 */

/**
 * For `load`'s `keep` with session reads: a record that was there and readable is kept, and
 * frozen, as every request that peeks it shares it; a miss or an unreadable entry is not.
 */
export function keepRecord(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  Object.freeze(value);
  return true;
}

/** What a cache did since it started. */
export interface ReadCacheStats {
  hits: number;
  misses: number;
  resets: number;
  size: number;
}

export class ReadCache {
  readonly #max: number;
  readonly #values = new Map<string, unknown>();
  /** Keys with reads on the way, and how many. */
  readonly #inflight = new Map<string, number>();
  /** Keys forgotten while a read of theirs was on the way: that read's answer is not kept. */
  readonly #spoiled = new Set<string>();
  #epoch = 0;
  readonly #stats = { hits: 0, misses: 0, resets: 0 };

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /**
   * The value kept for `key`; undefined when none is. Values are shared: never mutate one.
   * `counted` (default): the look-up shows in the hits and misses, which count validations.
   */
  peek<T>(key: string, counted = true): T | undefined {
    const value = this.#values.get(key) as T | undefined;
    if (counted) {
      if (value === undefined) this.#stats.misses += 1;
      else this.#stats.hits += 1;
    }
    return value;
  }

  /** A look-up that could not be made (the source cannot vouch for memory now) is a miss. */
  missed(): void {
    this.#stats.misses += 1;
  }

  /** Reads `key` with `fetch` and keeps the answer when `keep` says so and nothing intervened. */
  async load<T>(key: string, fetch: () => Promise<T>, keep: (value: T) => boolean): Promise<T> {
    const epoch = this.#epoch;
    this.#inflight.set(key, (this.#inflight.get(key) ?? 0) + 1);
    try {
      const value = await fetch();
      if (epoch === this.#epoch && !this.#spoiled.has(key) && keep(value)) {
        if (this.#values.size >= this.#max && !this.#values.has(key)) {
          this.#values.delete(this.#values.keys().next().value as string);
        }
        this.#values.set(key, value);
      }
      return value;
    } finally {
      const left = (this.#inflight.get(key) ?? 1) - 1;
      if (left > 0) this.#inflight.set(key, left);
      else {
        this.#inflight.delete(key);
        this.#spoiled.delete(key);
      }
    }
  }

  /** Drops what is known of `key`, including a read of it on the way. */
  forget(key: string): void {
    this.#values.delete(key);
    if (this.#inflight.has(key)) this.#spoiled.add(key);
  }

  /** Drops everything, including every read on the way. */
  reset(): void {
    this.#epoch += 1;
    this.#stats.resets += 1;
    this.#values.clear();
    for (const key of this.#inflight.keys()) this.#spoiled.add(key);
  }

  stats(): ReadCacheStats {
    return { ...this.#stats, size: this.#values.size };
  }
}
