/**
 * @module resilience/pending-deletes
 * Sessions that may exist although nobody holds their token: a sign-in whose create timed out
 * (the write can still land when a paused store resumes, or was carried out just before the
 * store died) or that failed after its create. The sign-in was answered with an error, so the
 * session must not stay. Each id is deleted as soon as the store answers a delete for it.
 *
 * A delete's answer is enough: on Redis it travels the same connection as the create, behind
 * it, and a create reaching either store after its `notAfter` writes nothing (see
 * CreateOptions), so once a delete has been answered the create can no longer land.
 *
 * LIMITATION: the list lives in this process. A process that dies before the store returns
 * leaves such a session until its deadlines pass; it authenticates nobody (its token was never
 * sent), it only shows in the console.
 */
import type { SessionStore } from '../sessions/session-store.js';
import { waitAtMost } from './wait-at-most.js';

/** Most ids kept; past it the oldest is dropped (and logged), so an outage cannot grow it without bound. */
export const PENDING_DELETES_MAX = 10_000;
/** How often the list is retried while it holds ids, in milliseconds. */
const RETRY_INTERVAL_MS = 1_000;
/** Ids sent per delete call. */
const CHUNK = 200;

export interface PendingDeletesOptions {
  store: Pick<SessionStore, 'deleteMany'>;
  /** The store's clock: an id whose session deadline passed is dropped, it cannot authenticate. */
  clock: () => number;
  /** Told when an id is dropped unfinished (list full), and when a retry round ends. */
  onDrop?: (id: string) => void;
  onFlush?: (result: { deleted: number; left: number }) => void;
  max?: number;
  intervalMs?: number;
}

export class PendingDeletes {
  readonly #o: PendingDeletesOptions;
  /** id -> the session's last deadline (epoch ms), after which there is nothing to undo. */
  readonly #ids = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #stopped = false;

  constructor(options: PendingDeletesOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#ids.size;
  }

  /** Remembers a session to delete; retried until the store answers or `until` passes. */
  add(id: string, until: number): void {
    this.#ids.delete(id);
    this.#ids.set(id, until);
    const max = this.#o.max ?? PENDING_DELETES_MAX;
    while (this.#ids.size > max) {
      const oldest = this.#ids.keys().next().value as string;
      this.#ids.delete(oldest);
      this.#o.onDrop?.(oldest);
    }
    this.#arm();
  }

  /** One round: deletes what it can now; ids the store did not answer for stay. */
  flush(): Promise<void> {
    this.#flushing ??= this.#round().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Stops retrying after one last round, given at most `lastRoundMs` (a shutdown waits on it). */
  async stop(lastRoundMs = 1_000): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#ids.size === 0) return;
    await waitAtMost(this.flush(), lastRoundMs);
  }

  async #round(): Promise<void> {
    const now = this.#o.clock();
    for (const [id, until] of this.#ids) if (until <= now) this.#ids.delete(id);

    let deleted = 0;
    const ids = [...this.#ids.keys()];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      let outcomes: Map<string, string>;
      try {
        outcomes = await this.#o.store.deleteMany(chunk);
      } catch {
        break;
      }
      for (const [id, outcome] of outcomes) {
        this.#ids.delete(id);
        if (outcome === 'deleted') deleted += 1;
      }
      if (outcomes.size < chunk.length) break;
    }
    // Told of progress only: a round the store refused (every second while it is down) says
    // nothing new.
    const answered = ids.length - this.#ids.size;
    if (answered > 0) this.#o.onFlush?.({ deleted, left: this.#ids.size });
  }

  #arm(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      await this.flush();
      if (this.#ids.size > 0) this.#arm();
    }, this.#o.intervalMs ?? RETRY_INTERVAL_MS);
    // Pending deletes alone never keep a process alive.
    this.#timer.unref();
  }
}
