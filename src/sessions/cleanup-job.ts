/**
 * @module sessions/cleanup-job
 * The scheduled cleanup: every CLEANUP_INTERVAL, sessions whose deadline is older than the
 * retention are removed, so expiry never depends on somebody reading the session (the SQL
 * store has no TTL; in Redis it also clears index entries that point to nothing).
 *
 * Across a fleet, one instance runs at a time: the run holds a lock (see locks.ts), and an
 * instance that takes the lock within RECENT_FRACTION of an interval after the last run
 * anywhere skips, so the fleet as a whole runs about once per interval rather than once per
 * instance. Each run writes
 * one audit row (which is also its one log line) with the count it removed; a skipped turn
 * writes nothing.
 */
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import { reasonOf } from '../errors.js';
import type { Actor, AuditLog } from '../events/audit.js';
import { StoreUnavailableError } from '../resilience/guarded-store.js';
import type { JobLock } from './locks.js';
import type { SessionService } from './session-service.js';

/** The audit action of a scheduled run (a console cleanup is `sessions.cleanup_expired`). */
export const CLEANUP_ACTION = 'sessions.scheduled_cleanup';
/** The settings row holding when the last run anywhere in the fleet started (epoch ms). */
export const LAST_RUN_SETTING = 'cleanup_last_run';
/** The audit actor of a run: nobody signed in; `trigger` in the details names the scheduler. */
const SCHEDULER: Actor = { id: null, email: null, ip: null };
/**
 * A turn this soon after the last run (as a fraction of the interval) skips. Below the 0.9 of
 * the timer's jitter, so an instance alone never skips its own next turn.
 */
const RECENT_FRACTION = 0.8;

export type CleanupOutcome =
  | { status: 'ran'; removed: number; unreadable: number; durationMs: number }
  | { status: 'failed'; error: string; durationMs: number; removed?: number }
  | { status: 'skipped'; reason: 'locked' | 'recent' | 'stopped' };

export interface CleanupJobOptions {
  sessions: Pick<SessionService, 'cleanupExpired'> &
    Partial<Pick<SessionService, 'cleanupUnreadable'>>;
  audit: Pick<AuditLog, 'write'>;
  lock: JobLock;
  db: Kysely<DB>;
  clock: () => number;
  log: Logger;
  /** Time between runs, in milliseconds; 0 means never (start() does nothing). */
  intervalMs: number;
  /** Sessions stay this long past their deadline before a run removes them, in milliseconds. */
  retentionMs: number;
}

export class CleanupJob {
  readonly #o: CleanupJobOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CleanupOutcome> | undefined;
  #stopped = false;

  constructor(options: CleanupJobOptions) {
    this.#o = options;
  }

  /** Schedules runs until stop(); the first comes one interval (±10%) from now. */
  start(): void {
    if (this.#o.intervalMs <= 0 || this.#stopped || this.#timer) return;
    this.#schedule();
  }

  /** Cancels the next run and waits for one in progress to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One turn: take the lock, remove, audit. Never throws; the outcome says what happened. */
  runOnce(): Promise<CleanupOutcome> {
    // A run that outlasts the interval is not started twice in one process.
    this.#running ??= this.#turn().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(): void {
    // Jitter keeps instances started together from reaching for the lock in lockstep.
    const delay = this.#o.intervalMs * (0.9 + Math.random() * 0.2);
    this.#timer = setTimeout(async () => {
      await this.runOnce();
      if (!this.#stopped) this.#schedule();
    }, delay);
    // Pending cleanup alone never keeps a process alive.
    this.#timer.unref();
  }

  async #turn(): Promise<CleanupOutcome> {
    if (this.#stopped) return { status: 'skipped', reason: 'stopped' };
    try {
      const locked = await this.#o.lock.tryRun(() => this.#underLock());
      const outcome: CleanupOutcome = locked.ran
        ? locked.value
        : { status: 'skipped', reason: 'locked' };
      if (outcome.status === 'skipped') {
        this.#o.log.debug({ event: 'cleanup_skipped', reason: outcome.reason }, 'cleanup skipped');
      }
      return outcome;
    } catch (err) {
      // The lock or the last-run mark could not be read (Redis or the database away): no
      // session was touched, so no audit row; the next turn tries again.
      this.#o.log.warn({ event: 'cleanup_not_run', err }, 'cleanup did not run');
      return { status: 'failed', error: reasonOf(err), durationMs: 0 };
    }
  }

  async #underLock(): Promise<CleanupOutcome> {
    const { clock, intervalMs } = this.#o;
    const startedAt = clock();
    const last = await this.#lastRun();
    // A mark in the future (a clock that jumped back) is stale, not a reason to wait.
    const sinceLast = last === null ? Number.POSITIVE_INFINITY : startedAt - last;
    if (sinceLast >= 0 && sinceLast < intervalMs * RECENT_FRACTION) {
      return { status: 'skipped', reason: 'recent' };
    }
    await this.#setLastRun(startedAt);

    const started = performance.now();
    const before = startedAt - this.#o.retentionMs;
    let outcome: CleanupOutcome;
    try {
      const removed = await this.#o.sessions.cleanupExpired(before, null);
      // Entries no reader can use are removed whatever their age (see removeUnreadable).
      const unreadable = (await this.#o.sessions.cleanupUnreadable?.()) ?? 0;
      const durationMs = Math.round(performance.now() - started);
      outcome = { status: 'ran', removed, unreadable, durationMs };
    } catch (err) {
      // A run the store cut short may have removed some first: its row says how many.
      const removed = err instanceof StoreUnavailableError ? err.counts?.removed : undefined;
      outcome = {
        status: 'failed',
        error: reasonOf(err),
        durationMs: Math.round(performance.now() - started),
        ...(removed !== undefined ? { removed } : {}),
      };
    }

    await this.#audit(outcome, before);
    return outcome;
  }

  async #audit(outcome: CleanupOutcome, before: number): Promise<void> {
    if (outcome.status === 'skipped') return;
    try {
      await this.#o.audit.write(
        SCHEDULER,
        {
          action: CLEANUP_ACTION,
          outcome: outcome.status === 'ran' ? 'success' : 'failure',
          details: {
            trigger: 'scheduler',
            before,
            ...(outcome.status === 'ran'
              ? { counts: { removed: outcome.removed, unreadable: outcome.unreadable } }
              : {
                  error: outcome.error,
                  ...(outcome.removed !== undefined
                    ? { counts: { removed: outcome.removed } }
                    : {}),
                }),
          },
          durationMs: outcome.durationMs,
        },
        this.#o.log,
      );
    } catch (err) {
      this.#o.log.error({ event: 'cleanup_audit_failed', err, ...outcome }, 'cleanup not audited');
    }
  }

  async #lastRun(): Promise<number | null> {
    const row = await this.#o.db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', LAST_RUN_SETTING)
      .executeTakeFirst();
    const at = Number(row?.value);
    return row && Number.isFinite(at) ? at : null;
  }

  async #setLastRun(at: number): Promise<void> {
    await this.#o.db
      .insertInto('settings')
      .values({ key: LAST_RUN_SETTING, value: String(at) })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(at) }))
      .execute();
  }
}
