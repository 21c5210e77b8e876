/**
 * @module sessions/store-clock
 * Deadlines come from one source of time, the store's, so instances whose clocks
 * disagree still agree on whether a session is valid. The clock measures its offset
 * from the store now and then and adds it to the local clock: reading it costs nothing.
 */

export const DEFAULT_CLOCK_SYNC_MS = 30_000;

export interface StoreClock {
  /** Store time, in epoch milliseconds. */
  now(): number;
  /** Offset from the local clock found by the last sync, in milliseconds. */
  readonly offsetMs: number;
  /** Measures the offset once; keeps the previous one if the store does not answer. */
  sync(): Promise<void>;
  stop(): void;
}

export function storeClock(
  storeTime: () => Promise<number>,
  local: () => number = Date.now,
  opts: { syncEveryMs?: number; onError?: (err: unknown) => void } = {},
): StoreClock {
  let offset = 0;
  const sync = async () => {
    try {
      const before = local();
      const remote = await storeTime();
      const after = local();
      // The store read its clock somewhere during the round trip; the middle is the best guess.
      offset = remote - (before + after) / 2;
    } catch (err) {
      opts.onError?.(err);
    }
  };
  const timer = setInterval(sync, opts.syncEveryMs ?? DEFAULT_CLOCK_SYNC_MS);
  timer.unref();

  return {
    now: () => Math.round(local() + offset),
    get offsetMs() {
      return offset;
    },
    sync,
    stop: () => clearInterval(timer),
  };
}
