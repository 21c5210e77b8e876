/**
 * @module users/analytics
 * Figures of the user base over time for the console's analytics page: registrations,
 * decisions, time to approval, the pending queue and active users. Every figure is read
 * from aggregates kept per day as users and sign-ins are written (migrations 0008 and 0009),
 * so the cost grows with the days of the range, not with the users or sign-ins.
 *
 * Every other figure is exact.
 *
 * Definitions, in one place:
 * - A *registration* is a user row created in the period.
 * - An *approval* (or *rejection*) is a first approval (the last rejection) of an account that
 *   was pending: its time is later than the account's creation. Accounts created already
 *   approved (`create-superuser`) never waited and are not approvals.
 * - *Time to approval* is `approved_at - created_at`, grouped by the period of the approval.
 *   Its medians are approximate: they are read from a histogram of waits per day (migration
 *   0009, buckets about 9% wide, eight to a doubling) rather than from every approval, so the
 *   page's cost does not grow with the approvals. Each median comes with the bounds the exact
 *   one lies within (`medianApprovalBoundsMs`: the buckets of the middle approvals); the
 *   figure itself (`medianApprovalMs`) is interpolated within them by rank.
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
 *   the window (read as `#activeSince` says). LIMITATION: a user whose latest sign-in is later
 *   than `now` (a clock set back) is not counted in them.
 */
import { type Kysely, sql } from 'kysely';
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
  /**
   * Median wait of the period's approvals, in milliseconds, approximate (see the module
   * comment); null without approvals.
   */
  medianApprovalMs: number | null;
  /** [low, high): the exact median is within; high is null past the last bucket. */
  medianApprovalBoundsMs: WaitBounds | null;
  /** Accounts pending at the end of the period (at `end`). */
  pendingAtEnd: number;
}

/** Where an exact median lies: from `low` (included) to `high` (excluded; null: no end). */
export type WaitBounds = [low: number, high: number | null];

export interface ApproximateMedian {
  ms: number;
  bounds: WaitBounds;
}

/**
 * The median of a histogram: `counts` by bucket, bucket k holding values from `lows[k]` up to
 * `lows[k + 1]` (the last one has no end). The median is the middle value, or the mean of the
 * middle two, as the exact one; each is placed within its bucket by its rank there (linearly),
 * or at the start of the last bucket. The exact median is within the bounds returned: from
 * the start of the lower middle value's bucket to the end of the upper one's, one bucket
 * unless the middle two values fall in different buckets.
 */
export function histogramMedian(
  counts: ReadonlyMap<number, number>,
  lows: readonly number[],
): ApproximateMedian | null {
  const buckets = [...counts].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const at = (rank: number) => {
    let before = 0;
    for (const [bucket, n] of buckets) {
      if (rank < before + n) {
        const low = lows[bucket];
        const high = lows[bucket + 1] ?? null;
        const ms = high === null ? low : low + ((high - low) * (rank - before + 0.5)) / n;
        return { low, high, ms };
      }
      before += n;
    }
    throw new Error('rank past the histogram');
  };
  const lower = at(Math.floor((total - 1) / 2));
  const upper = at(Math.floor(total / 2));
  // Floored, so the figure never reaches the (excluded) end of its bucket.
  return { ms: Math.floor((lower.ms + upper.ms) / 2), bounds: [lower.low, upper.high] };
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
    medianApprovalBoundsMs: WaitBounds | null;
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
  /** The start of each wait bucket, by bucket (approval_wait_buckets), once read. */
  #waitLows: Promise<number[]> | undefined;

  /** `_dialect`: every query of the page is the same on both engines now. */
  constructor(db: Kysely<DB>, _dialect: Dialect) {
    this.#db = db;
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
    // Independent reads, all at once: on PostgreSQL each has a connection of the pool.
    const [days, medians, start, totals, active, activeNow] = await Promise.all([
      this.#userDays(from, to),
      this.#medianWaits(from, to, unit),
      this.#pendingAt(from),
      sql<Row>`select name, n from user_totals`.execute(this.#db),
      this.#active(from, to),
      this.#activeSince(now),
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
        medianApprovalMs: medians.periods.get(index)?.ms ?? null,
        medianApprovalBoundsMs: medians.periods.get(index)?.bounds ?? null,
        pendingAtEnd: pending,
      };
    });
    const sum = (pick: (p: DecisionPeriod) => number) => periods.reduce((n, p) => n + pick(p), 0);

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
        medianApprovalMs: medians.overall?.ms ?? null,
        medianApprovalBoundsMs: medians.overall?.bounds ?? null,
        pendingAtStart: start,
      },
      byRole: byRole as Record<Role, number>,
      byStatus: byStatus as Record<UserStatus, number>,
      active,
      activeNow,
    };
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
   * The medians of time to approval per period and over [from, to), from the histogram of
   * waits per day (migration 0009): one read of at most a row per day and bucket of the range,
   * whatever the number of approvals. The bucket bounds are read once: 0009 wrote them for good.
   *
   * LIMITATION: a day with approvals of every kind of wait has a row per bucket in use (about
   * 85 a day in the demo seed, 2,500 rows for 30 days, 1.5 ms on SQLite): a two-year range of
   * such days reads some 60,000 rows. Bounded by the days, not the approvals, but not small.
   */
  async #medianWaits(from: number, to: number, unit: Granularity) {
    this.#waitLows ??= sql<Row>`select bucket, low_ms from approval_wait_buckets order by bucket`
      .execute(this.#db)
      .then(({ rows }) => rows.map((r) => num(r.low_ms)));
    const [lows, { rows }] = await Promise.all([
      this.#waitLows,
      sql<Row>`select day, bucket, n from approval_waits
        where day >= ${from / DAY_MS} and day < ${to / DAY_MS} and n > 0`.execute(this.#db),
    ]).catch((error) => {
      this.#waitLows = undefined; // read again next time rather than keep a failure
      throw error;
    });
    const overall = new Map<number, number>();
    const byPeriod = new Map<number, Map<number, number>>();
    for (const r of rows) {
      const bucket = num(r.bucket);
      const n = num(r.n);
      const period = periodIndex(num(r.day) * DAY_MS, unit);
      const counts = byPeriod.get(period) ?? new Map<number, number>();
      byPeriod.set(period, counts);
      counts.set(bucket, (counts.get(bucket) ?? 0) + n);
      overall.set(bucket, (overall.get(bucket) ?? 0) + n);
    }
    const periods = new Map<number, ApproximateMedian>();
    for (const [period, counts] of byPeriod) {
      const median = histogramMedian(counts, lows);
      if (median) periods.set(period, median);
    }
    return { periods, overall: histogramMedian(overall, lows) };
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
   * Users whose latest sign-in is within the last 24 hours, 7 days and 30 days: the users
   * whose latest day (activity_days.latest, migration 0009) is a whole day of a window, plus
   * those of the window's first day, cut at its start, and of today, cut at `now`, read from
   * the index on each user's latest sign-in.
   *
   * LIMITATION: that first day is read from the index for the shorter of its two parts (the
   * window's, or the one before, taken from the day's count): its cost grows with the users
   * whose latest sign-in falls in up to half a day (a day ago, a week ago, 30 days ago).
   */
  async #activeSince(now: number): Promise<AnalyticsReport['activeNow']> {
    const today = Math.floor(now / DAY_MS);
    const windows = [DAY_MS, WEEK_MS, 30 * DAY_MS];
    // Per window, the part of its first day read from the index: the shorter one, the other
    // being the day's count less it. `after` is excluded, `upTo` included.
    const parts = windows.map((ms) => {
      const start = now - ms; // excluded
      const first = Math.floor(start / DAY_MS);
      const dayStart = first * DAY_MS;
      const dayEnd = dayStart + DAY_MS;
      const inside = dayEnd - start <= start - dayStart;
      return {
        first,
        inside,
        after: inside ? start : dayStart - 1,
        upTo: inside ? dayEnd - 1 : start,
      };
    });
    // Today's users whose latest sign-in is still ahead (a clock set back) are left out.
    const ranges = [{ after: now, upTo: (today + 1) * DAY_MS - 1 }, ...parts];
    const counts = sql.join(
      ranges.map(
        (r, i) => sql`(select count(*) from activity_last
          where last_at > ${r.after} and last_at <= ${r.upTo}) as ${sql.ref(`n${i}`)}`,
      ),
    );
    const firstDay = Math.min(...parts.map((p) => p.first));
    const [days, read] = await Promise.all([
      sql<Row>`select day, latest from activity_days
        where day >= ${firstDay} and day <= ${today} and latest <> 0`.execute(this.#db),
      sql<Row>`select ${counts}`.execute(this.#db),
    ]);
    const latest = new Map(days.rows.map((r) => [num(r.day), num(r.latest)]));
    const counted = read.rows[0] ?? {};
    const [ahead, ...partCounts] = ranges.map((_, i) => num(counted[`n${i}`]));
    const [day, week, month] = parts.map((p, i) => {
      let n = (latest.get(today) ?? 0) - ahead;
      for (let d = p.first + 1; d < today; d++) n += latest.get(d) ?? 0;
      return n + (p.inside ? partCounts[i] : (latest.get(p.first) ?? 0) - partCounts[i]);
    });
    return { day, week, month };
  }
}

function isoDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
