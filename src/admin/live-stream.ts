/**
 * @module admin/live-stream
 * The server side of the console's live updates: one hub per instance that turns LiveBus
 * events into Server-Sent Events for every open console. What a console receives:
 *
 *   event: session   a sign-in, sign-out, revocation or cleanup (a LiveEvent, digests only)
 *   event: count     { active }: the active sessions right after a change (coalesced)
 *   event: store     { up }: the session store went away or came back
 *   event: resync    changes may have been missed: re-read the table
 *   event: bye       { reason }: this stream's own session ended; the browser stops
 *   : keep-alive     a comment every HEARTBEAT_MS, so proxies keep the connection open
 *
 * The hub costs nothing while nobody watches: it subscribes to the bus, pings the store and
 * beats the heart only while at least one stream is open.
 */
import { PassThrough } from 'node:stream';
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { UserRow } from '../db/schema.js';
import type { LiveBus, LiveEvent } from '../events/live.js';
import { type SessionStore, statusOf } from '../sessions/session-store.js';

export const HEARTBEAT_MS = 15_000;
/** How often the store is pinged while a console watches, in milliseconds. */
export const STORE_CHECK_MS = 2_000;
/** Changes within this many milliseconds share one count (a burst of revocations, one read). */
export const COUNT_DELAY_MS = 200;
/**
 * The most of the process's time the live count may take. Where counting is a scan (SQLite's
 * exact count reads the whole deadline index: about 100 ms at a million sessions), the next
 * count waits in proportion to the last one's cost, so a steady stream of sign-ins with a
 * console open cannot keep SQLite busy counting; the count then lags by up to 20 times its cost.
 */
export const COUNT_SHARE = 0.05;
/** The browser waits this long before reconnecting after the stream ends, in milliseconds. */
export const RETRY_MS = 1_000;
/** A console that reads slower than this much buffered output is dropped (it reconnects). */
const MAX_BUFFERED_BYTES = 256 * 1024;

export interface Viewer {
  sessionId: string;
  userId: number;
}

export interface LiveHubOptions {
  bus: LiveBus;
  store: Pick<SessionStore, 'counts' | 'ping' | 'get' | 'settled'>;
  users: { findById(id: number): Promise<UserRow | null | undefined> };
  clock: () => number;
  log: Logger;
  heartbeatMs?: number;
  storeCheckMs?: number;
}

interface Stream {
  out: PassThrough;
  viewer: Viewer;
}

/** One SSE message; JSON.stringify never writes a raw newline, so one data line suffices. */
export function sseMessage(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class LiveHub {
  readonly #o: LiveHubOptions;
  readonly #streams = new Set<Stream>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #storeCheck: NodeJS.Timeout | undefined;
  #countTimer: NodeJS.Timeout | undefined;
  /** What the next count waits by (see COUNT_SHARE): the cheaper of the last two counts, ms. */
  #countCostMs = 0;
  /** How long the last count took, in milliseconds (none yet: the first stands alone). */
  #lastCountMs = Number.POSITIVE_INFINITY;
  #counting = false;
  /** A change arrived while a count ran: count again after it. */
  #countAgain = false;
  #storeUp = true;
  #checking = false;

  constructor(options: LiveHubOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Opens a stream for a signed-in superuser; the caller sends it as the response body. */
  open(viewer: Viewer): PassThrough {
    const out = new PassThrough();
    const stream: Stream = { out, viewer };
    this.#streams.add(stream);
    out.once('close', () => this.#remove(stream));
    const woken = this.#streams.size === 1;
    if (woken) this.#wake();

    // The first bytes flush the headers, so the browser knows at once it is connected.
    out.write(`retry: ${RETRY_MS}\n: connected\n\n`);
    const tell = () => this.#write(stream, sseMessage('store', { up: this.#storeUp }));
    // Asleep, the hub did not watch the store: what it remembers (down, when the last console
    // closed during an outage) may be stale, so a woken hub asks the store before it tells.
    if (woken) void this.#checkStore().then(tell);
    else tell();
    this.#scheduleCount();
    return out;
  }

  /** Ends every stream (on shutdown): browsers reconnect to whichever instance answers. */
  closeAll(): void {
    for (const s of this.#streams) s.out.end();
  }

  #wake(): void {
    this.#unsubscribe = this.#o.bus.subscribe((event) => this.#onEvent(event));
    this.#heartbeat = setInterval(() => this.#beat(), this.#o.heartbeatMs ?? HEARTBEAT_MS);
    this.#storeCheck = setInterval(
      () => this.#checkStore(),
      this.#o.storeCheckMs ?? STORE_CHECK_MS,
    );
    this.#heartbeat.unref();
    this.#storeCheck.unref();
  }

  #sleep(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    clearInterval(this.#storeCheck);
    clearTimeout(this.#countTimer);
    this.#countTimer = undefined;
    this.#countAgain = false;
  }

  #remove(stream: Stream): void {
    if (!this.#streams.delete(stream)) return;
    if (this.#streams.size === 0) this.#sleep();
  }

  #write(stream: Stream, chunk: string): void {
    const { out } = stream;
    if (out.destroyed || out.writableEnded) return;
    if (out.writableLength > MAX_BUFFERED_BYTES) {
      this.#o.log.info({ event: 'live_stream_dropped' }, 'slow console stream dropped');
      out.destroy();
      return;
    }
    out.write(chunk);
  }

  #broadcast(chunk: string): void {
    for (const s of this.#streams) this.#write(s, chunk);
  }

  #bye(stream: Stream, reason: string): void {
    this.#write(stream, sseMessage('bye', { reason }));
    stream.out.end();
  }

  #onEvent(event: LiveEvent): void {
    if (event.type === 'resync') {
      this.#broadcast(sseMessage('resync', { at: event.at }));
    } else {
      this.#broadcast(sseMessage('session', event));
      const ended =
        event.type === 'signed_out'
          ? new Set([event.sessionId])
          : event.type === 'revoked'
            ? new Set(event.sessionIds)
            : null;
      // A console whose own session just ended stops at once, on every instance.
      for (const s of this.#streams) {
        if (ended?.has(s.viewer.sessionId)) this.#bye(s, 'session_ended');
      }
    }
    this.#scheduleCount();
  }

  #scheduleCount(): void {
    // A change during a count is counted after it, once its cost is known: scheduled at once,
    // it would wait by the cost of the count before (none, at first), and two slow counts would
    // run almost back to back.
    if (this.#counting) {
      this.#countAgain = true;
      return;
    }
    if (this.#countTimer) return;
    this.#countTimer = setTimeout(
      async () => {
        this.#countTimer = undefined;
        if (this.#streams.size === 0) return;
        this.#counting = true;
        try {
          // Not the count's cost: on Redis, up to 2 s for what a revocation set aside, which
          // counted as cost held the next count 40 s.
          await this.#o.store.settled?.();
          const started = performance.now();
          const { active } = await this.#o.store.counts(this.#o.clock());
          // The cheaper of the last two: one count that waited on a store pausing for a moment
          // is no cost of counting, and taken as one it held the header 20 times the pause.
          // A store whose counts are slow makes both slow.
          const cost = performance.now() - started;
          this.#countCostMs = Math.min(cost, this.#lastCountMs);
          this.#lastCountMs = cost;
          this.#broadcast(sseMessage('count', { active }));
        } catch {
          this.#setStoreUp(false);
        } finally {
          this.#counting = false;
        }
        if (this.#countAgain) {
          this.#countAgain = false;
          this.#scheduleCount();
        }
      },
      Math.max(COUNT_DELAY_MS, this.#countCostMs / COUNT_SHARE),
    );
  }

  async #checkStore(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      await this.#o.store.ping();
      this.#setStoreUp(true);
    } catch {
      this.#setStoreUp(false);
    } finally {
      this.#checking = false;
    }
  }

  #setStoreUp(up: boolean): void {
    if (up === this.#storeUp) return;
    this.#storeUp = up;
    this.#broadcast(sseMessage('store', { up }));
    if (!up) return;
    // While the store was away, changes may have gone unannounced.
    this.#broadcast(sseMessage('resync', { at: this.#o.clock() }));
    this.#scheduleCount();
  }

  /**
   * Keeps idle connections open and checks, without touching the session (an open console
   * must not keep its session alive), that each viewer is still a signed-in superuser. While
   * the store cannot answer, streams stay open: they are how the console learns it is back.
   */
  async #beat(): Promise<void> {
    this.#broadcast(': keep-alive\n\n');
    const now = this.#o.clock();
    for (const s of [...this.#streams]) {
      try {
        const session = await this.#o.store.get(s.viewer.sessionId);
        if (!session || statusOf(session, now) === 'expired') {
          this.#bye(s, 'session_ended');
          continue;
        }
        const user = await this.#o.users.findById(s.viewer.userId);
        if (user?.status !== 'approved' || user.role !== 'superuser') this.#bye(s, 'forbidden');
      } catch {
        // Store or database away: the store check reports it.
      }
    }
  }
}
