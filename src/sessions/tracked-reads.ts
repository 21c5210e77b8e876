/**
 * @module sessions/tracked-reads
 * Values read from Redis on a connection with CLIENT TRACKING on (RESP3), kept in memory until
 * Redis says they changed.
 *
 * Validation reads the same session hash and the users' change counter on every request of a
 * signed-in client, and both change rarely: the hash about once a minute when its idle deadline
 * slides, the counter when a user is disabled or changes role. Redis remembers which keys this
 * connection read and, when any client writes or deletes one (or it expires), pushes an
 * invalidation on the same connection. So a value held here is the one Redis holds for as long
 * as that connection has been up and answering:
 *
 * - every connection event (error, end, reconnect, ready) empties the cache, since tracking
 *   starts afresh on a new connection and invalidations sent to the old one are lost;
 * - nothing is served from memory once the connection has been silent for `staleMs` (a paused
 *   Redis sends no invalidations either); a heartbeat PING keeps an idle connection heard;
 * - a read whose key is invalidated while its reply is on the way is not kept (ReadCache): the
 *   parser hands over the reply and then the invalidation behind it before the reply's promise
 *   resolves.
 *
 * Another instance's revocation reaches this one as the invalidation Redis writes in the same
 * event-loop turn as the revoker's reply, so it is in this process's socket before any request
 * that follows the revocation can arrive. This process's own writes also forget the key at once.
 */

import { waitAtMost } from '../resilience/wait-at-most.js';
import { ReadCache, type ReadCacheStats } from './read-cache.js';

/** How long a fence waits for its PING before the revocation is reported anyway. */
const FENCE_WAIT_MS = 20;

/**
 * Returns once the invalidations of a write just made have left Redis for every instance that
 * keeps the keys in memory (tracked-reads.ts). Redis sends them in the same pass over its
 * clients as the write's reply, but may write the reply first; a PING answered afterwards proves
 * that pass ended, so they are in those instances' sockets before this one answers and anyone
 * can send the next request. About 0.1 ms, on revocations and user changes only. A PING that
 * fails or takes longer than FENCE_WAIT_MS (Redis paused or gone right after the write) does
 * not fail the write: its pass had begun, and a confirmed revocation must be reported as one.
 */
export async function invalidationFence(client: { ping(): Promise<unknown> }): Promise<void> {
  await waitAtMost(
    client.ping().catch(() => {}),
    FENCE_WAIT_MS,
  );
}

/** The slice of a node-redis v5 RESP3 client with `emitInvalidate: true` this uses. */
export interface TrackingClient {
  readonly isReady: boolean;
  get(key: string): Promise<string | null>;
  hGetAll(key: string): Promise<Record<string, string>>;
  ping(): Promise<string>;
  on(event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown;
  on(event: 'error' | 'end' | 'reconnecting' | 'connect' | 'ready', listener: () => void): unknown;
}

export const DEFAULT_STALE_MS = 500;

export interface TrackedReadsOptions {
  /** Most values kept; the oldest is dropped beyond it. @default 100_000 */
  maxEntries?: number;
  /**
   * Serve nothing from memory after this long without a reply: the most a revocation can lag
   * on an instance cut off from Redis while others still reach it. @default 500
   */
  staleMs?: number;
  /** How often an otherwise idle connection is pinged. @default 100 */
  heartbeatMs?: number;
}

/** What the cache did since it started. */
export interface TrackedReadsStats extends ReadCacheStats {
  invalidations: number;
}

export class TrackedReads {
  readonly client: TrackingClient;
  readonly #cache: ReadCache;
  readonly #staleMs: number;
  #heardAt = Number.NEGATIVE_INFINITY;
  #pinging = false;
  #invalidations = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(client: TrackingClient, options: TrackedReadsOptions = {}) {
    this.client = client;
    this.#cache = new ReadCache(options.maxEntries ?? 100_000);
    this.#staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    client.on('invalidate', (key) => {
      this.#invalidations += 1;
      if (key === null) this.#cache.reset();
      else this.#cache.forget(typeof key === 'string' ? key : key.toString('latin1'));
    });
    for (const event of ['error', 'end', 'reconnecting', 'connect', 'ready'] as const) {
      client.on(event, () => this.#cache.reset());
    }
    this.#timer = setInterval(() => this.#heartbeat(), options.heartbeatMs ?? 100);
    this.#timer.unref();
  }

  /** Whether reads can go over the tracking connection now; else callers use their own. */
  get ready(): boolean {
    return this.client.isReady;
  }

  /** The value read for `key` if Redis has not changed it since; undefined when not known. */
  peek<T>(key: string, counted = true): T | undefined {
    if (!this.client.isReady || performance.now() - this.#heardAt >= this.#staleMs) {
      if (counted) this.#cache.missed();
      return undefined;
    }
    return this.#cache.peek<T>(key, counted);
  }

  /**
   * Reads `key` on the tracking connection and keeps the answer when `keep` says so (a missing
   * or unreadable record is not worth keeping). Values kept must not be mutated by callers.
   */
  load<T>(
    key: string,
    fetch: (client: TrackingClient) => Promise<T>,
    keep: (value: T) => boolean,
  ): Promise<T> {
    return this.#cache.load(
      key,
      async () => {
        const value = await fetch(this.client);
        this.#heardAt = performance.now();
        return value;
      },
      keep,
    );
  }

  /** Drops what is known of `key`, including a read of it on the way. */
  forget(key: string): void {
    this.#cache.forget(key);
  }

  /**
   * Resolves once every change Redis made before this call has reached the cache: a PING on
   * the tracking connection is answered after the invalidations queued ahead of it.
   */
  async sync(): Promise<void> {
    await this.client.ping();
    this.#heardAt = performance.now();
  }

  stats(): TrackedReadsStats {
    return { ...this.#cache.stats(), invalidations: this.#invalidations };
  }

  /** Stops the heartbeat; the caller closes the client. */
  close(): void {
    clearInterval(this.#timer);
    this.#cache.reset();
  }

  #heartbeat(): void {
    if (this.#pinging || !this.client.isReady) return;
    this.#pinging = true;
    this.client.ping().then(
      () => {
        this.#heardAt = performance.now();
        this.#pinging = false;
      },
      () => {
        this.#pinging = false;
      },
    );
  }
}
