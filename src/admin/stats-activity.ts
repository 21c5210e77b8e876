/**
 * @module admin/stats-activity
 * Sign-ins per UTC hour and per UTC day from the session history. The window is counted in
 * full once, then kept up to date from the rows added since (by id, one range read of the
 * primary key), so a refresh costs the sign-ins of the last few seconds, not of thirty days.
 */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/schema.js';

/**
 * How often the window is counted in full anyway, in milliseconds: rows that the id-based
 * reading cannot see (see counts()) are caught up within this time.
 */
const RECOUNT_MS = 60 * 60_000;

export interface PeriodCount {
  /** Start of the period, epoch milliseconds. */
  start: number;
  count: number;
}

export class SignInCounts {
  readonly #db: Kysely<DB>;
  readonly #sizeMs: number;
  readonly #periods: number;
  /** Sign-ins by period number (start / size). */
  #counts = new Map<number, number>();
  /** The highest history row id counted so far; null before the first full count. */
  #lastId: number | null = null;
  #countedAt = 0;

  constructor(db: Kysely<DB>, sizeMs: number, periods: number) {
    this.#db = db;
    this.#sizeMs = sizeMs;
    this.#periods = periods;
  }

  /**
   * The last `periods` periods, oldest first, the last one running at `now`.
   *
   * LIMITATION: the full count reads every sign-in of the window, from the (kind, at) index of
   * migration 0007 rather than the rows (about 0.2–0.5 s for a million on SQLite, on the reader
   * thread in the server, see db/sqlite-reader). Between full counts, a row whose id is below one already counted
   * (PostgreSQL can commit ids out of order) or a row deleted from the history is reflected
   * only at the next full count, within RECOUNT_MS.
   */
  async counts(now: number): Promise<PeriodCount[]> {
    const last = Math.floor(now / this.#sizeMs);
    const first = last - this.#periods + 1;

    if (this.#lastId === null || performance.now() - this.#countedAt > RECOUNT_MS) {
      const top = await this.#maxId();
      this.#counts = await this.#count({ first, last, upToId: top });
      this.#lastId = top;
      this.#countedAt = performance.now();
    } else {
      const top = await this.#maxId();
      if (top > this.#lastId) {
        const added = await this.#count({ afterId: this.#lastId, upToId: top });
        for (const [period, n] of added)
          this.#counts.set(period, (this.#counts.get(period) ?? 0) + n);
        this.#lastId = top;
      }
    }
    for (const period of this.#counts.keys()) if (period < first) this.#counts.delete(period);

    return Array.from({ length: this.#periods }, (_, i) => ({
      start: (first + i) * this.#sizeMs,
      count: this.#counts.get(first + i) ?? 0,
    }));
  }

  async #maxId(): Promise<number> {
    const row = await this.#db
      .selectFrom('session_events')
      .select((eb) => eb.fn.max<number | null>('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** Sign-ins per period number among the rows in an id range, or within periods first..last. */
  async #count(range: {
    first?: number;
    last?: number;
    afterId?: number;
    upToId: number;
  }): Promise<Map<number, number>> {
    const size = sql.lit(this.#sizeMs);
    const window =
      range.first !== undefined && range.last !== undefined
        ? sql`and at >= ${range.first * this.#sizeMs} and at < ${(range.last + 1) * this.#sizeMs}`
        : sql``;
    const after = range.afterId !== undefined ? sql`and id > ${range.afterId}` : sql``;
    // Integer division on both engines: `at` is INTEGER in SQLite and BIGINT in PostgreSQL.
    const { rows } = await sql<{ period: number | string; n: number | string }>`
      select at / ${size} as period, count(*) as n
      from session_events
      where kind = 'signed_in' and id <= ${range.upToId} ${after} ${window}
      group by at / ${size}`.execute(this.#db);
    return new Map(rows.map((r) => [Number(r.period), Number(r.n)]));
  }
}
