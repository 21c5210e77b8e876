/**
 * @module events/session-events
 * Session history in SQL: sign-in, sign-out, revocation (by whom), cleanup. It outlives
 * the sessions, whichever store holds them.
 */
import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { DB, SessionEventKind, SessionEventRow } from '../db/schema.js';
import { waitAtMost } from '../resilience/wait-at-most.js';
import type { SessionRecord } from '../sessions/session-store.js';

export interface SessionEvent {
  kind: SessionEventKind;
  reason?: string | null;
  actorId?: number | null;
}

// Rows per INSERT: 8 parameters each keeps a statement under SQLite's 32,766 and PostgreSQL's
// 65,535 parameters, and one statement per thousand endings is what lets cleanup keep up.
const INSERT_CHUNK = 1_000;
// On PostgreSQL the rows travel as eight arrays (one parameter per column, not per value), so
// a statement may be larger: parsing and binding cost next to nothing per row.
const PG_INSERT_CHUNK = 5_000;

// How much earlier than its sign-in a session's end may read (see ofSessions): another
// instance, whose clock is behind, may have written it.
const CLOCK_SKEW_MS = 3_600_000;

// The longest a revocation's history rows wait for its answer to be sent (see follow).
const FOLLOW_WAIT_MS = 1_000;

type Ended = Pick<SessionRecord, 'id' | 'userId' | 'ip' | 'userAgent'>;

/** One history row to write: the session and what happened to it. */
export interface EventEntry {
  session: Ended;
  event: SessionEvent;
  at: number;
}

export class SessionEvents {
  readonly #db: Kysely<DB>;
  readonly #reads: Kysely<DB>;
  readonly #postgres: boolean;
  readonly #onLost: (error: unknown, rows: number) => void;
  readonly #onIncomplete: (error: unknown, rows: number) => void;
  readonly #followWaitMs: number;
  /** Flushes of writers handed to `follow`, until each ends. */
  readonly #trailing = new Set<Promise<void>>();

  /**
   * `onLost`: told when rows handed to `follow` could not be written (the sessions they record
   * stay ended); it must not throw. @default nothing is told
   * `onIncomplete`: told of rows written without what their sessions were (see `incomplete`);
   * it must not throw. @default nothing is told
   * `followWaitMs`: the longest followed rows wait for the answer to be sent. @default 1000
   * `reads` (Database.reads): where long reads of the history go (the Ended tab's count, an
   * export), on SQLite the server's reader thread. @default db
   */
  constructor(
    db: Kysely<DB>,
    options: {
      onLost?: (error: unknown, rows: number) => void;
      onIncomplete?: (error: unknown, rows: number) => void;
      followWaitMs?: number;
      reads?: Kysely<DB>;
    } = {},
  ) {
    this.#db = db;
    this.#reads = options.reads ?? db;
    this.#postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    this.#onLost = options.onLost ?? (() => {});
    this.#onIncomplete = options.onIncomplete ?? (() => {});
    this.#followWaitMs = options.followWaitMs ?? FOLLOW_WAIT_MS;
  }

  /** One row per session, all with the same kind, reason and actor. */
  async record(sessions: readonly Ended[], event: SessionEvent, at: number): Promise<void> {
    await this.recordEach(sessions.map((session) => ({ session, event, at })));
  }

  /** One row per entry, kinds and times mixed, in one INSERT per thousand rows. */
  async recordEach(entries: readonly EventEntry[]): Promise<void> {
    if (this.#postgres) {
      for (let i = 0; i < entries.length; i += PG_INSERT_CHUNK) {
        await this.#insertArrays(entries.slice(i, i + PG_INSERT_CHUNK));
      }
      return;
    }
    for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
      const rows = entries.slice(i, i + INSERT_CHUNK).map(({ session: s, event, at }) => ({
        session_id: s.id,
        user_id: s.userId,
        kind: event.kind,
        reason: event.reason ?? null,
        actor_id: event.actorId ?? null,
        at,
        ip: s.ip,
        user_agent: s.userAgent,
      }));
      await this.#db.insertInto('session_events').values(rows).execute();
    }
  }

  /**
   * A writer for a long run of endings (a bulk revocation, a cleanup): rows added while an
   * INSERT is under way go together in the next one, so one statement is in flight at a time
   * and the store's deletes never wait for the database. An INSERT starts on the event loop's
   * next turn, never inside the `add` of the request that ended the sessions.
   *
   * With `batched` (a revocation, handed to `follow` once its sessions are gone), rows are held
   * up to a statement's worth: a revocation of up to a thousand on SQLite, or five thousand on
   * PostgreSQL, is written after its answer, and neither database competes with the store's
   * deletes for the machine meanwhile (on Redis + PostgreSQL, the takes of a revocation of 1,000
   * took 28 to 40 ms beside its INSERTs, 25 to 30 ms without). A longer one writes as it goes, so
   * what it holds stays bounded. A cleanup keeps its INSERTs short, so the requests
   * between its batches wait less.
   */
  writer(options: { batched?: boolean } = {}): HistoryWriter {
    const hold = options.batched ? (this.#postgres ? PG_INSERT_CHUNK : INSERT_CHUNK) : 0;
    return new HistoryWriter((entries) => this.recordEach(entries), hold);
  }

  /**
   * Lets a writer's remaining rows be written after the caller has moved on: a revocation
   * answers once its sessions are ended, and their history follows within milliseconds, once
   * `after` settles (the answer is sent) when given, or after `followWaitMs` at most; `fill`
   * (which must not throw) runs first and adds the rows that had to wait for the answer. Every
   * history read of this process (`ofSessions`, the console's through `settled`)
   * waits for these rows first, and so does closing. Rows that fail are reported to `onLost`.
   *
   * LIMITATION: another Warden process reading the history in those milliseconds does not see
   * the rows yet, and a process that dies before they are written loses them (as it would
   * between a store's delete and its INSERT before: the two are never one transaction on Redis).
   */
  follow(writer: HistoryWriter, after?: PromiseLike<unknown>, fill?: () => Promise<void>): void {
    // `fill` adds the rows only readable after the answer (a revocation's set-aside sessions).
    const flush = async () => {
      await fill?.();
      await writer.flush();
    };
    // A client that does not read a large answer leaves it unsent, and every history read of
    // the process waits for these rows: they wait for the answer only so long.
    const sent = after === undefined ? Promise.resolve() : waitAtMost(after, this.#followWaitMs);
    const done = sent
      .then(flush, flush)
      .catch((error: unknown) => this.#onLost(error, writer.lost))
      .finally(() => this.#trailing.delete(done));
    this.#trailing.add(done);
  }

  /**
   * Tells `onIncomplete` that `rows` history rows were written without their sessions' address
   * and browser, which could not be read back (why: `error`).
   */
  incomplete(error: unknown, rows: number): void {
    this.#onIncomplete(error, rows);
  }

  /**
   * The database and its dialect, once every row handed to `follow` so far is written: how the
   * console's history readers (admin/ended-query) reach the rows, so none can forget the wait.
   */
  async readable(): Promise<{ db: Kysely<DB>; dialect: Dialect; reads: Kysely<DB> }> {
    await this.settled();
    return { db: this.#db, dialect: this.#postgres ? 'postgres' : 'sqlite', reads: this.#reads };
  }

  /** Resolves once every row handed to `follow` so far is written (or reported lost). */
  async settled(): Promise<void> {
    while (this.#trailing.size > 0) await Promise.all(this.#trailing);
  }

  /**
   * The sign-in rows of these sessions, read at once: for a revocation's own follow-up, which
   * `ofSessions` would wait for.
   */
  async signInsOf(ids: readonly string[]): Promise<SessionEventRow[]> {
    const rows: SessionEventRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      rows.push(...(await this.#signIns(ids.slice(i, i + 500))));
    }
    return rows;
  }

  /**
   * The sign-in rows of these sessions, through the index of sign-ins. The kind is a literal,
   * not a parameter: only then may SQLite (or a generic PostgreSQL plan) use a partial index.
   * SQLite is also told the index by name: with no statistics (Warden runs no ANALYZE) it took
   * the index on (kind, at) for two ids or more, and read every sign-in row (60 to 100 ms at
   * 300,000, in Warden's own thread).
   */
  async #signIns(ids: readonly string[]): Promise<SessionEventRow[]> {
    const from = this.#postgres
      ? sql`session_events`
      : sql`session_events indexed by session_events_signed_in_idx`;
    const { rows } = await sql<SessionEventRow>`select * from ${from}
      where kind = 'signed_in' and session_id in (${sql.join(ids)})`.execute(this.#db);
    return rows;
  }

  /**
   * One INSERT … SELECT FROM unnest(arrays): PostgreSQL only.
   *
   * LIMITATION: 1,000 rows cost 10 to 12 ms on a 2-core machine with every page in memory
   * (each row goes into four indexes; 14 to 16 ms with the fifth, on its random session id,
   * that migration 0012 replaced), more when pages must be read first. That is a good part of a
   * revocation of 1,000 on Redis + PostgreSQL, which is why its rows follow its answer.
   */
  async #insertArrays(entries: readonly EventEntry[]): Promise<void> {
    const column = <T>(pick: (e: EventEntry) => T) => entries.map(pick);
    await sql`insert into session_events
      (session_id, user_id, kind, reason, actor_id, at, ip, user_agent)
      select * from unnest(
        ${column((e) => e.session.id)}::text[],
        ${column((e) => e.session.userId)}::integer[],
        ${column((e) => e.event.kind)}::text[],
        ${column((e) => e.event.reason ?? null)}::text[],
        ${column((e) => e.event.actorId ?? null)}::integer[],
        ${column((e) => e.at)}::bigint[],
        ${column((e) => e.session.ip)}::text[],
        ${column((e) => e.session.userAgent)}::text[]
      )`.execute(this.#db);
  }

  /**
   * What the history holds of these sessions: each one's sign-in row and, for a sign-in after
   * `since`, the rows written after it about that session (how it ended). Sign-ins are the only
   * rows indexed by session id (migration 0012): every other row is found among its user's
   * rows from the sign-in on, so ending a session costs no write at a random place of an index.
   * A session whose sign-in was never recorded has no rows here.
   */
  async ofSessions(
    ids: readonly string[],
    options: { since?: number } = {},
  ): Promise<SessionEventRow[]> {
    await this.settled();
    const since = options.since ?? Number.NEGATIVE_INFINITY;
    const rows: SessionEventRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const signIns = await this.#signIns(ids.slice(i, i + 500));
      rows.push(...signIns);
      const open = signIns.filter((r) => Number(r.at) > since);
      if (open.length === 0) continue;
      const from = Math.min(...open.map((r) => Number(r.at))) - CLOCK_SKEW_MS;
      rows.push(
        ...(await this.#db
          .selectFrom('session_events')
          .selectAll()
          .where('user_id', 'in', [...new Set(open.map((r) => r.user_id))])
          .where('at', '>=', from)
          .where('kind', '!=', 'signed_in')
          .where(
            'session_id',
            'in',
            open.map((r) => r.session_id),
          )
          .execute()),
      );
    }
    return rows;
  }
}

/**
 * Rows waiting for their INSERT (see SessionEvents.writer). After a failed INSERT the writer
 * keeps the error, drops what it holds and refuses more; `flush()` throws it.
 */
export class HistoryWriter {
  readonly #write: (entries: readonly EventEntry[]) => Promise<void>;
  readonly #hold: number;
  #pending: EventEntry[] = [];
  #running: Promise<void> | undefined;
  #error: unknown;
  #failed = false;
  #lost = 0;

  /** `hold`: rows kept before an INSERT starts ahead of the flush (0: every add starts one). */
  constructor(write: (entries: readonly EventEntry[]) => Promise<void>, hold = 0) {
    this.#write = write;
    this.#hold = hold;
  }

  /** The error of a failed INSERT, once one failed. */
  get failure(): { error: unknown } | undefined {
    return this.#failed ? { error: this.#error } : undefined;
  }

  /** Rows added that will never be written: those of the failed INSERT and every one after. */
  get lost(): number {
    return this.#lost;
  }

  add(sessions: readonly Ended[], event: SessionEvent, at: number): void {
    if (this.#failed) {
      this.#lost += sessions.length;
      return;
    }
    if (sessions.length === 0) return;
    for (const session of sessions) this.#pending.push({ session, event, at });
    if (this.#pending.length > this.#hold) this.#start();
  }

  /** Waits until every row added so far is written; throws if an INSERT failed. */
  async flush(): Promise<void> {
    if (this.#pending.length > 0) this.#start();
    while (this.#running) await this.#running;
    if (this.#failed) throw this.#error;
  }

  #start(): void {
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  async #drain(): Promise<void> {
    // The next turn: the INSERT (synchronous on SQLite) never runs inside the add that asked
    // for it, so a request that has its answer sends it first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#pending.length > 0 && !this.#failed) {
      const batch = this.#pending;
      this.#pending = [];
      try {
        await this.#write(batch);
      } catch (error) {
        this.#failed = true;
        this.#error = error;
        this.#lost += batch.length + this.#pending.length;
        this.#pending = [];
      }
    }
  }
}
