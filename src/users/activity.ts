/**
 * @module users/activity
 * Sign-in activity aggregated when it happens, so the analytics page reads a few hundred
 * counter rows instead of counting distinct users over the whole sign-in history.
 *
 * Tables (migration 0008):
 * - `activity_user_days (user_id, day)`: the UTC days each user signed in on (day = at / 1 day).
 * - `activity_user_periods (user_id, unit, period, first_day, last_day)`: per user and ISO week
 *   (`unit` 'week') or calendar month ('month'), the first and last day of sign-in in it.
 * - `activity_days (day, users, week_firsts, week_lasts, month_firsts, month_lasts)`: per day,
 *   the users who signed in that day, and how many users' first (last) day of sign-in in their
 *   week (month) it is. Summed over a period these give its distinct users, and summed over part
 *   of a period, the distinct users of that part when the part touches an end of the period.
 * - `activity_last (user_id, last_at)`: each user's latest sign-in, indexed for "the last N days".
 * - `activity_days.latest` (migration 0009): the users whose latest sign-in falls on that day,
 *   so "the last N days" sums whole days and reads the index for part of one day only.
 *
 * The history (`session_events`) stays the record; `rebuildActivity` recomputes these from it.
 */
import { type Kysely, sql } from 'kysely';
import { fillActivityFromHistory, fillLatestDays } from '../db/activity-tables.js';
import type { Dialect } from '../db/database.js';

const DAY_MS = 86_400_000;
/** Day 4 of the epoch, 1970-01-05, is a Monday: weeks run Monday to Sunday (ISO 8601). */
const MONDAY_DAY = 4;

export type ActivityUnit = 'week' | 'month';

/** The week (Monday-based, as analytics' periodIndex) or month index of a day number. */
export function periodOfDay(day: number, unit: ActivityUnit): number {
  if (unit === 'week') return Math.floor((day - MONDAY_DAY) / 7);
  const d = new Date(day * DAY_MS);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

interface Delta {
  users: number;
  latest: number;
  week_firsts: number;
  week_lasts: number;
  month_firsts: number;
  month_lasts: number;
}

const COUNTERS = [
  'users',
  'latest',
  'week_firsts',
  'week_lasts',
  'month_firsts',
  'month_lasts',
] as const;

/**
 * Records a sign-in of `userId` at `at` in the aggregates. Only a user's first sign-in of a UTC
 * day does more than one upsert; sign-ins may arrive in any order (a clock set back, two
 * instances at midnight) and still leave the counters exact.
 *
 * LIMITATION: every user's first sign-in of a day updates that day's one `activity_days` row,
 * so on PostgreSQL those transactions queue on its row lock for a moment (the counter update is
 * the transaction's last statement, to keep the lock short).
 */
export async function recordSignInActivity(
  // biome-ignore lint/suspicious/noExplicitAny: written with raw SQL, on any Kysely schema
  db: Kysely<any>,
  dialect: Dialect,
  userId: number,
  at: number,
): Promise<void> {
  const day = Math.floor(at / DAY_MS);
  await db.transaction().execute(async (trx) => {
    // This locks the user's row even when it does not move (PostgreSQL's ON CONFLICT DO
    // UPDATE), so one user's sign-ins take their turn from here: the latest day read below is
    // the one the previous sign-in left.
    await sql`insert into activity_last (user_id, last_at) values (${userId}, ${at})
      on conflict (user_id) do update set last_at = excluded.last_at
      where activity_last.last_at < excluded.last_at`.execute(trx);
    const added = await sql`insert into activity_user_days (user_id, day) values (${userId}, ${day})
      on conflict do nothing`.execute(trx);
    if (Number(added.numAffectedRows ?? 0) === 0) return;

    const deltas = new Map<number, Delta>();
    const bump = (d: number, field: keyof Delta, by: number) => {
      let delta = deltas.get(d);
      if (!delta) {
        delta = {
          users: 0,
          latest: 0,
          week_firsts: 0,
          week_lasts: 0,
          month_firsts: 0,
          month_lasts: 0,
        };
        deltas.set(d, delta);
      }
      delta[field] += by;
    };
    bump(day, 'users', 1);
    // A later day than any of the user's days before is their new latest day; a sign-in on a
    // day not seen yet is the only one that can move it.
    const { rows: before } = await sql<{ day: number | string | null }>`
      select max(day) as day from activity_user_days
      where user_id = ${userId} and day <> ${day}`.execute(trx);
    const previous = before[0]?.day == null ? null : Number(before[0].day);
    if (previous === null || day > previous) {
      if (previous !== null) bump(previous, 'latest', -1);
      bump(day, 'latest', 1);
    }

    for (const unit of ['week', 'month'] as const) {
      const period = periodOfDay(day, unit);
      const firsts = `${unit}_firsts` as const;
      const lasts = `${unit}_lasts` as const;
      const inserted = await sql`insert into activity_user_periods
        (user_id, unit, period, first_day, last_day)
        values (${userId}, ${unit}, ${period}, ${day}, ${day}) on conflict do nothing`.execute(trx);
      if (Number(inserted.numAffectedRows ?? 0) > 0) {
        bump(day, firsts, 1);
        bump(day, lasts, 1);
        continue;
      }
      // The row exists (perhaps just committed by another sign-in): lock it, then widen it.
      const lock = dialect === 'postgres' ? sql`for update` : sql``;
      const { rows } = await sql<{ first_day: number | string; last_day: number | string }>`
        select first_day, last_day from activity_user_periods
        where user_id = ${userId} and unit = ${unit} and period = ${period} ${lock}`.execute(trx);
      if (rows.length === 0) continue; // removed meanwhile by rebuildActivity, which recounts
      const first = Number(rows[0].first_day);
      const last = Number(rows[0].last_day);
      if (day >= first && day <= last) continue;
      if (day < first) {
        bump(first, firsts, -1);
        bump(day, firsts, 1);
      } else {
        bump(last, lasts, -1);
        bump(day, lasts, 1);
      }
      await sql`update activity_user_periods
        set first_day = ${Math.min(first, day)}, last_day = ${Math.max(last, day)}
        where user_id = ${userId} and unit = ${unit} and period = ${period}`.execute(trx);
    }

    // Days in order, so two transactions never lock the same two rows in opposite orders.
    for (const d of [...deltas.keys()].sort((a, b) => a - b)) {
      const v = deltas.get(d) as Delta;
      if (COUNTERS.every((c) => v[c] === 0)) continue;
      await sql`insert into activity_days
        (day, users, latest, week_firsts, week_lasts, month_firsts, month_lasts)
        values (${d}, ${v.users}, ${v.latest}, ${v.week_firsts}, ${v.week_lasts},
          ${v.month_firsts}, ${v.month_lasts})
        on conflict (day) do update set
          users = activity_days.users + excluded.users,
          latest = activity_days.latest + excluded.latest,
          week_firsts = activity_days.week_firsts + excluded.week_firsts,
          week_lasts = activity_days.week_lasts + excluded.week_lasts,
          month_firsts = activity_days.month_firsts + excluded.month_firsts,
          month_lasts = activity_days.month_lasts + excluded.month_lasts`.execute(trx);
    }
  });
}

/**
 * Recomputes every activity table from the sign-in history, in one transaction: for the demo
 * seeder's bulk path (which writes history rows directly), and to repair the aggregates after
 * history was written by other means. Its cost grows with the history (seconds at a million
 * sign-ins); sign-ins recorded meanwhile wait for it on SQLite, and on PostgreSQL may be lost
 * from the aggregates if they commit during it (run it when nobody signs in).
 */
export async function rebuildActivity(
  // biome-ignore lint/suspicious/noExplicitAny: written with raw SQL, on any Kysely schema
  db: Kysely<any>,
  dialect: Dialect,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const table of [
      'activity_days',
      'activity_user_periods',
      'activity_user_days',
      'activity_last',
    ]) {
      await sql`delete from ${sql.table(table)}`.execute(trx);
    }
    await fillActivityFromHistory(trx, dialect);
    await fillLatestDays(trx);
  });
}
