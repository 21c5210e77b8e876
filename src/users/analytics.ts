/**
 * @module users/analytics
 * Figures of the user base over time for the console's analytics page: registrations,
 * decisions, time to approval, the pending queue and active users. Every figure is
 * aggregated in SQL (GROUP BY a period key computed per dialect), so the cost grows with
 * the number of periods returned, not with the users shipped to Node.
 *
 * Definitions, in one place:
 * - A *registration* is a user row created in the period.
 * - An *approval* (or *rejection*) is a first approval (the last rejection) of an account that
 *   was pending: its time is later than the account's creation. Accounts created already
 *   approved (`create-superuser`) never waited and are not approvals.
 * - *Time to approval* is `approved_at - created_at`, grouped by the period of the approval.
 * - The *pending queue* at the end of a period counts accounts created before that moment
 *   that had not left `pending` yet (`decided_at`, see migration 0002).
 * - An *active user* of a period signed in at least once in it (a `signed_in` history row).
 *   History is in SQL whichever store holds the sessions; last-seen times are not, so they
 *   are not used. LIMITATION: a session that spans a period boundary counts only for the
 *   period it began in; as a session lives at most ABSOLUTE_LIFETIME (12 h by default), a
 *   person who uses Warden every day signs in every day. Removing this needs activity rows.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import { type DB, ROLES, type Role, USER_STATUSES, type UserStatus } from '../db/schema.js';

export const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05, the first Monday after the epoch: weeks run Monday to Sunday (ISO 8601). */
const MONDAY_OFFSET_MS = 4 * DAY_MS;

export type Granularity = 'day' | 'week';
export type PeriodUnit = Granularity | 'month';

/** A period of a series, clipped to the range asked for; `end` is exclusive. */
export interface Period {
  /** `2026-03-02` (the day, or the Monday of the week) or `2026-03` (the month). */
  key: string;
  start: number;
  end: number;
}

export interface DecisionPeriod extends Period {
  registrations: number;
  approvals: number;
  rejections: number;
  /** Median wait of the period's approvals, in milliseconds; null without approvals. */
  medianApprovalMs: number | null;
  /** Accounts pending at the end of the period (at `end`). */
  pendingAtEnd: number;
}

export interface ActivePeriod extends Period {
  users: number;
}

export interface AnalyticsReport {
  /** First day and last day (inclusive), `YYYY-MM-DD`, UTC. */
  from: string;
  to: string;
  granularity: Granularity;
  generatedAt: number;
  periods: DecisionPeriod[];
  totals: {
    registrations: number;
    approvals: number;
    rejections: number;
    medianApprovalMs: number | null;
    pendingAtStart: number;
  };
  /** Every user now, whenever they registered. */
  byRole: Record<Role, number>;
  byStatus: Record<UserStatus, number>;
  active: Record<PeriodUnit, ActivePeriod[]>;
  /** Distinct users who signed in in the last 24 hours, 7 days and 30 days. */
  activeNow: { day: number; week: number; month: number };
}

/** The key of the period holding `at`; the same number the SQL expression computes. */
export function periodIndex(at: number, unit: PeriodUnit): number {
  if (unit === 'day') return Math.floor(at / DAY_MS);
  if (unit === 'week') return Math.floor((at - MONDAY_OFFSET_MS) / WEEK_MS);
  const d = new Date(at);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

function periodStart(index: number, unit: PeriodUnit): number {
  if (unit === 'day') return index * DAY_MS;
  if (unit === 'week') return index * WEEK_MS + MONDAY_OFFSET_MS;
  return Date.UTC(Math.floor(index / 12), index % 12, 1);
}

/** Every period that meets [from, to), clipped to it, oldest first. */
export function periodsOf(
  from: number,
  to: number,
  unit: PeriodUnit,
): (Period & { index: number })[] {
  const out: (Period & { index: number })[] = [];
  for (let i = periodIndex(from, unit); periodStart(i, unit) < to; i++) {
    const start = periodStart(i, unit);
    const key = new Date(start).toISOString().slice(0, unit === 'month' ? 7 : 10);
    out.push({
      index: i,
      key,
      start: Math.max(start, from),
      end: Math.min(periodStart(i + 1, unit), to),
    });
  }
  return out;
}

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v ?? 0);

export class UserAnalytics {
  readonly #db: Kysely<DB>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<DB>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  /**
   * The report for the UTC days [from, to), `to` exclusive (the day after the last one).
   * `now` anchors the rolling "active now" windows.
   */
  async report(
    range: { from: number; to: number; granularity: Granularity },
    now: number,
  ): Promise<AnalyticsReport> {
    const { from, to, granularity: unit } = range;
    const [registrations, arrivals, departures, approvals, rejections, medians, overall, start] =
      await Promise.all([
        this.#countBy(sql`created_at`, unit, from, to),
        this.#countBy(
          sql`created_at`,
          unit,
          from,
          to,
          sql`(${LEFT} is null or ${LEFT} > created_at)`,
        ),
        this.#countBy(LEFT, unit, from, to, sql`${LEFT} > created_at`),
        this.#countBy(sql`approved_at`, unit, from, to, sql`approved_at > created_at`),
        this.#countBy(sql`rejected_at`, unit, from, to, sql`rejected_at > created_at`),
        this.#medianWait(this.#bucket(sql`approved_at`, unit), from, to),
        this.#medianWait(sql`0`, from, to),
        this.#pendingAt(from),
      ]);

    let pending = start;
    const periods = periodsOf(from, to, unit).map(({ index, ...p }) => {
      pending += (arrivals.get(index) ?? 0) - (departures.get(index) ?? 0);
      return {
        ...p,
        registrations: registrations.get(index) ?? 0,
        approvals: approvals.get(index) ?? 0,
        rejections: rejections.get(index) ?? 0,
        medianApprovalMs: medians.get(index) ?? null,
        pendingAtEnd: pending,
      };
    });
    const sum = (pick: (p: DecisionPeriod) => number) => periods.reduce((n, p) => n + pick(p), 0);

    const [byRole, byStatus, activeDay, activeWeek, activeMonth, activeNow] = await Promise.all([
      this.#groupCount('role', ROLES),
      this.#groupCount('status', USER_STATUSES),
      this.#active('day', from, to),
      this.#active('week', from, to),
      this.#active('month', from, to),
      this.#activeSince(now),
    ]);

    return {
      from: isoDay(from),
      to: isoDay(to - DAY_MS),
      granularity: unit,
      generatedAt: now,
      periods,
      totals: {
        registrations: sum((p) => p.registrations),
        approvals: sum((p) => p.approvals),
        rejections: sum((p) => p.rejections),
        medianApprovalMs: overall.get(0) ?? null,
        pendingAtStart: start,
      },
      byRole,
      byStatus,
      active: { day: activeDay, week: activeWeek, month: activeMonth },
      activeNow,
    };
  }

  /** The period key of a time column, as an integer: see `periodIndex`. */
  #bucket(column: RawBuilder<unknown>, unit: PeriodUnit): RawBuilder<unknown> {
    // Times are non-negative integers, so integer division is floor in both dialects.
    if (unit === 'day') return sql`(${column} / ${sql.lit(DAY_MS)})`;
    if (unit === 'week') {
      return sql`((${column} - ${sql.lit(MONDAY_OFFSET_MS)}) / ${sql.lit(WEEK_MS)})`;
    }
    if (this.#dialect === 'postgres') {
      const at = sql`(to_timestamp(${column} / 1000) at time zone 'UTC')`;
      return sql`cast(extract(year from ${at}) * 12 + extract(month from ${at}) - 1 as integer)`;
    }
    const at = sql`${column} / 1000, 'unixepoch'`;
    return sql`(cast(strftime('%Y', ${at}) as integer) * 12 + cast(strftime('%m', ${at}) as integer) - 1)`;
  }

  /** How many users have `column` in [from, to), per period of `column`. */
  async #countBy(
    column: RawBuilder<unknown>,
    unit: PeriodUnit,
    from: number,
    to: number,
    extra: RawBuilder<unknown> = sql`1 = 1`,
  ): Promise<Map<number, number>> {
    const { rows } = await sql<Row>`
      select ${this.#bucket(column, unit)} as k, count(*) as n from users
      where ${column} >= ${from} and ${column} < ${to} and ${extra}
      group by 1`.execute(this.#db);
    return new Map(rows.map((r) => [num(r.k), num(r.n)]));
  }

  /**
   * The median of `approved_at - created_at` per key, for approvals in [from, to). Window
   * functions run alike on SQLite (3.25+) and PostgreSQL: the middle one or two rows of each
   * group are averaged, so no wait leaves the database.
   */
  async #medianWait(key: RawBuilder<unknown>, from: number, to: number) {
    const { rows } = await sql<Row>`
      select k, avg(w) as m from (
        select k, w, row_number() over (partition by k order by w) as rn,
          count(*) over (partition by k) as c
        from (
          select ${key} as k, approved_at - created_at as w from users
          where approved_at >= ${from} and approved_at < ${to} and approved_at > created_at
        ) waits
      ) ranked
      where rn = (c + 1) / 2 or rn = (c + 2) / 2
      group by k`.execute(this.#db);
    return new Map(rows.map((r) => [num(r.k), Math.round(num(r.m))]));
  }

  /** Accounts created before `at` that had not left `pending` by then. */
  async #pendingAt(at: number): Promise<number> {
    const { rows } = await sql<Row>`
      select count(*) as n from users
      where created_at < ${at} and (${LEFT} is null or ${LEFT} >= ${at})`.execute(this.#db);
    return num(rows[0]?.n);
  }

  async #groupCount<K extends string>(
    column: 'role' | 'status',
    keys: readonly K[],
  ): Promise<Record<K, number>> {
    const rows = await this.#db
      .selectFrom('users')
      .select([column, (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(column)
      .execute();
    const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
    for (const r of rows) {
      const key = (r as Row)[column] as K;
      if (key in out) out[key] = num(r.n);
    }
    return out;
  }

  /** Distinct users who signed in, per period of `unit` within [from, to). */
  async #active(unit: PeriodUnit, from: number, to: number): Promise<ActivePeriod[]> {
    const { rows } = await sql<Row>`
      select ${this.#bucket(sql`at`, unit)} as k, count(distinct user_id) as n
      from session_events
      where kind = 'signed_in' and at >= ${from} and at < ${to}
      group by 1`.execute(this.#db);
    const byKey = new Map(rows.map((r) => [num(r.k), num(r.n)]));
    return periodsOf(from, to, unit).map(({ index, ...p }) => ({
      ...p,
      users: byKey.get(index) ?? 0,
    }));
  }

  async #activeSince(now: number): Promise<AnalyticsReport['activeNow']> {
    const since = async (ms: number) => {
      const row = await this.#db
        .selectFrom('session_events')
        .select((eb) => eb.fn.count<number>('user_id').distinct().as('n'))
        .where('kind', '=', 'signed_in')
        .where('at', '>', now - ms)
        .where('at', '<=', now)
        .executeTakeFirstOrThrow();
      return num(row.n);
    };
    const [day, week, month] = await Promise.all([
      since(DAY_MS),
      since(WEEK_MS),
      since(30 * DAY_MS),
    ]);
    return { day, week, month };
  }
}

/**
 * When an account left `pending`, or null while it is pending. Rows written before migration
 * 0002 (or by tools that set only `approved_at`) fall back to the best time known.
 */
const LEFT = sql`(case when status = 'pending' then null
  else coalesce(decided_at, approved_at, rejected_at, updated_at) end)`;

function isoDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
