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
 *   The counts are read from aggregates kept at each sign-in (users/activity.ts, migration
 *   0008), not from the history rows, so they cost the same at any number of sign-ins.
 * - The rolling "last 24 hours / 7 / 30 days" counts are users whose latest sign-in falls in
 *   the window. LIMITATION: a user whose latest sign-in is later than `now` (a clock set back)
 *   is not counted in them.
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
    const [days, medians, overall, start] = await Promise.all([
      this.#userDays(from, to),
      this.#medianWait(this.#bucket(sql`approved_at`, unit), from, to),
      this.#medianWait(sql`0`, from, to),
      this.#pendingAt(from),
    ]);
    const perPeriod = (field: string) => {
      const out = new Map<number, number>();
      for (const r of days) {
        const k = periodIndex(num(r.day) * DAY_MS, unit);
        out.set(k, (out.get(k) ?? 0) + num(r[field]));
      }
      return out;
    };
    const registrations = perPeriod('registrations');
    const arrivals = perPeriod('pending_in');
    const departures = perPeriod('pending_out');
    const approvals = perPeriod('approvals');
    const rejections = perPeriod('rejections');

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

    const [totals, active, activeNow] = await Promise.all([
      sql<Row>`select name, n from user_totals`.execute(this.#db),
      this.#active(from, to),
      this.#activeSince(now),
    ]);
    const total = new Map(totals.rows.map((r) => [String(r.name), num(r.n)]));
    const byRole = Object.fromEntries(ROLES.map((k) => [k, total.get(`role:${k}`) ?? 0]));
    const byStatus = Object.fromEntries(
      USER_STATUSES.map((k) => [k, total.get(`status:${k}`) ?? 0]),
    );

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
      byRole: byRole as Record<Role, number>,
      byStatus: byStatus as Record<UserStatus, number>,
      active,
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

  /**
   * The users counters (migration 0008, kept by triggers on `users`) of the days in
   * [from, to): at most MAX_RANGE_DAYS rows, whatever the number of users.
   */
  async #userDays(from: number, to: number): Promise<Row[]> {
    const { rows } = await sql<Row>`
      select day, registrations, approvals, rejections, pending_in, pending_out from user_days
      where day >= ${from / DAY_MS} and day < ${to / DAY_MS}`.execute(this.#db);
    return rows;
  }

  /**
   * The median of `approved_at - created_at` per key, for approvals in [from, to): the middle
   * wait, or the mean of the middle two. Each engine's own median aggregate does it (SQLite's
   * built-in `median()`, 3.47+ as better-sqlite3 bundles it; PostgreSQL's `percentile_cont`),
   * several times faster than numbering the rows with window functions, and no wait leaves the
   * database.
   *
   * LIMITATION: the only figure of the page not read from counters: it reads and sorts every
   * approval of the range (from the index on (approved_at, created_at), twice: per period and
   * over the range), so its cost grows with the approvals in the range (about 30 ms for each of
   * the two on SQLite at 100,000 users). Bounding it needs a histogram of waits per day kept by
   * the users triggers, which makes the median approximate to the histogram's buckets (a
   * change of definition the page would have to state).
   */
  async #medianWait(key: RawBuilder<unknown>, from: number, to: number) {
    const wait = sql`approved_at - created_at`;
    const median =
      this.#dialect === 'postgres'
        ? sql`percentile_cont(0.5) within group (order by ${wait})`
        : sql`median(${wait})`;
    const { rows } = await sql<Row>`
      select ${key} as k, ${median} as m from users
      where approved_at >= ${from} and approved_at < ${to} and approved_at > created_at
      group by 1`.execute(this.#db);
    return new Map(rows.map((r) => [num(r.k), Math.round(num(r.m))]));
  }

  /**
   * Accounts created before `at` (a day's start) that had not left `pending` by then: those
   * that entered the queue on an earlier day less those that left it on one. Reads one counter
   * row per day since the first account.
   */
  async #pendingAt(at: number): Promise<number> {
    const { rows } = await sql<Row>`
      select sum(pending_in) - sum(pending_out) as n from user_days
      where day < ${at / DAY_MS}`.execute(this.#db);
    return num(rows[0]?.n);
  }

  /**
   * Distinct users who signed in, per day, week and month within [from, to), from the
   * per-day counters of users/activity.ts: one read of the counter rows of the days the
   * periods span (at most about 800), whatever the number of users or sign-ins.
   */
  async #active(from: number, to: number): Promise<AnalyticsReport['active']> {
    const units = ['day', 'week', 'month'] as const;
    const periods = Object.fromEntries(
      units.map((unit) => [unit, periodsOf(from, to, unit).map((p) => ({ ...p, unit }))]),
    ) as Record<PeriodUnit, (Period & { index: number; unit: PeriodUnit })[]>;
    const full = (p: { index: number; unit: PeriodUnit }) => ({
      start: periodStart(p.index, p.unit) / DAY_MS,
      end: periodStart(p.index + 1, p.unit) / DAY_MS,
    });
    const all = units.flatMap((u) => periods[u]);
    const firstDay = Math.min(...all.map((p) => full(p).start));
    const endDay = Math.max(...all.map((p) => full(p).end));
    const { rows } = await sql<Row>`
      select day, users, week_firsts, week_lasts, month_firsts, month_lasts from activity_days
      where day >= ${firstDay} and day < ${endDay}`.execute(this.#db);
    const byDay = new Map(rows.map((r) => [num(r.day), r]));
    const sum = (field: string, start: number, end: number) => {
      let n = 0;
      for (let d = start; d < end; d++) n += num(byDay.get(d)?.[field]);
      return n;
    };

    const count = async (p: Period & { index: number; unit: PeriodUnit }): Promise<number> => {
      const a = p.start / DAY_MS;
      const b = p.end / DAY_MS;
      if (p.unit === 'day') return sum('users', a, b);
      const whole = full(p);
      const firsts = `${p.unit}_firsts`;
      const lasts = `${p.unit}_lasts`;
      // A user is active in [a, b) of their period if their first day in it is before b and
      // the period starts at a, or their last day is from a on and the period ends at b; a
      // side with no sign-in at all counts as an end.
      if (a === whole.start || sum('users', whole.start, a) === 0) {
        return sum(firsts, whole.start, b);
      }
      if (b === whole.end || sum('users', b, whole.end) === 0) return sum(lasts, a, whole.end);
      // LIMITATION: a range inside one week or month, with sign-ins on both sides of it in
      // that period, is counted from the user-day rows of the range: its cost grows with the
      // users active in the range (fewer than a month of days).
      const { rows } = await sql<Row>`
        select count(distinct user_id) as n from activity_user_days
        where day >= ${a} and day < ${b}`.execute(this.#db);
      return num(rows[0]?.n);
    };

    const out = {} as AnalyticsReport['active'];
    for (const unit of units) {
      out[unit] = await Promise.all(
        periods[unit].map(async (p) => {
          const { index: _index, unit: _unit, ...period } = p;
          return { ...period, users: await count(p) };
        }),
      );
    }
    return out;
  }

  /**
   * Users whose latest sign-in is within the last 24 hours, 7 days and 30 days: one range
   * read of the index on each user's latest sign-in.
   */
  async #activeSince(now: number): Promise<AnalyticsReport['activeNow']> {
    const { rows } = await sql<Row>`
      select
        sum(case when last_at > ${now - DAY_MS} then 1 else 0 end) as day,
        sum(case when last_at > ${now - WEEK_MS} then 1 else 0 end) as week,
        count(*) as month
      from activity_last where last_at > ${now - 30 * DAY_MS} and last_at <= ${now}`.execute(
      this.#db,
    );
    return { day: num(rows[0]?.day), week: num(rows[0]?.week), month: num(rows[0]?.month) };
  }
}

function isoDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
