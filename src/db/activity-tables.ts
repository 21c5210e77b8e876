/**
 * @module db/activity-tables
 * The analytics page's pre-aggregated tables as migration 0008 creates and backfills them:
 * sign-in activity (see users/activity.ts for what it holds), and counters of the users table
 * per day and by role and status, kept by triggers. The fill is also how `rebuildActivity` recomputes
 * them, so the two cannot disagree; a later change of these tables needs a migration of its own
 * that copies what it changes, as 0008 must keep doing what it did. Migration 0009 adds a
 * histogram of approval waits per day (kept by triggers, as the users counters) and, per day,
 * the users whose latest sign-in it is (`activity_days.latest`).
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Dialect } from './database.js';

const DAY_MS = sql.lit(86_400_000);

export async function createActivityTables(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const time = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('activity_user_days')
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('activity_user_days_pk', ['user_id', 'day'])
    .execute();
  // Distinct users of any span of days, for the one case the counters cannot answer.
  await db.schema
    .createIndex('activity_user_days_day_idx')
    .on('activity_user_days')
    .columns(['day', 'user_id'])
    .execute();
  await db.schema
    .createTable('activity_user_periods')
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('unit', 'text', (c) => c.notNull())
    .addColumn('period', 'integer', (c) => c.notNull())
    .addColumn('first_day', 'integer', (c) => c.notNull())
    .addColumn('last_day', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('activity_user_periods_pk', ['user_id', 'unit', 'period'])
    .execute();
  await db.schema
    .createTable('activity_days')
    .addColumn('day', 'integer', (c) => c.primaryKey())
    .addColumn('users', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('week_firsts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('week_lasts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('month_firsts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('month_lasts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('activity_last')
    .addColumn('user_id', 'integer', (c) => c.primaryKey())
    .addColumn('last_at', time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('activity_last_at_idx')
    .on('activity_last')
    .column('last_at')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function dropActivityTables(db: Kysely<any>): Promise<void> {
  for (const table of [
    'activity_last',
    'activity_days',
    'activity_user_periods',
    'activity_user_days',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

/** The month index (year * 12 + month - 1) of a day number, in SQL. */
function monthOf(day: RawBuilder<unknown>, dialect: Dialect): RawBuilder<unknown> {
  if (dialect === 'postgres') {
    const at = sql`(to_timestamp(cast(${day} as bigint) * 86400) at time zone 'UTC')`;
    return sql`cast(extract(year from ${at}) * 12 + extract(month from ${at}) - 1 as integer)`;
  }
  const at = sql`${day} * 86400, 'unixepoch'`;
  return sql`(cast(strftime('%Y', ${at}) as integer) * 12 + cast(strftime('%m', ${at}) as integer) - 1)`;
}

/**
 * Fills the (empty) activity tables from every `signed_in` history row: four INSERT ... SELECT,
 * so nothing is shipped to Node. Times are non-negative integers, so `/` is floor on both engines.
 */
// biome-ignore lint/suspicious/noExplicitAny: raw SQL on any Kysely schema or transaction
export async function fillActivityFromHistory(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await sql`insert into activity_user_days (user_id, day)
    select distinct user_id, cast(at / ${DAY_MS} as integer) from session_events
    where kind = 'signed_in'`.execute(db);
  const week = sql`((day - 4) / 7)`;
  await sql`insert into activity_user_periods (user_id, unit, period, first_day, last_day)
    select user_id, 'week', ${week}, min(day), max(day) from activity_user_days
    group by user_id, ${week}`.execute(db);
  const month = monthOf(sql`day`, dialect);
  await sql`insert into activity_user_periods (user_id, unit, period, first_day, last_day)
    select user_id, 'month', ${month}, min(day), max(day) from activity_user_days
    group by user_id, ${month}`.execute(db);
  await sql`insert into activity_days
    (day, users, week_firsts, week_lasts, month_firsts, month_lasts)
    select day, sum(u), sum(wf), sum(wl), sum(mf), sum(ml) from (
      select day, count(*) as u, 0 as wf, 0 as wl, 0 as mf, 0 as ml
        from activity_user_days group by day
      union all
      select first_day, 0, sum(case when unit = 'week' then 1 else 0 end), 0,
        sum(case when unit = 'month' then 1 else 0 end), 0
        from activity_user_periods group by first_day
      union all
      select last_day, 0, 0, sum(case when unit = 'week' then 1 else 0 end), 0,
        sum(case when unit = 'month' then 1 else 0 end)
        from activity_user_periods group by last_day
    ) parts group by day`.execute(db);
  await sql`insert into activity_last (user_id, last_at)
    select user_id, max(at) from session_events where kind = 'signed_in'
    group by user_id`.execute(db);
}

/**
 * When a users row left `pending`, or null while pending: the page's definition (see
 * users/analytics.ts), written for a row alias (`new`, `old`, or the table).
 */
function leftOf(r: string): string {
  return `(case when ${r}.status = 'pending' then null
    else coalesce(${r}.decided_at, ${r}.approved_at, ${r}.rejected_at, ${r}.updated_at) end)`;
}

/**
 * The `user_days` counters one users row adds to (sign 1) or takes from (-1), as a SELECT of
 * (day, registrations, approvals, rejections, pending_in, pending_out): registered that day;
 * approved or rejected that day after waiting; entered the pending queue that day (registered
 * and not decided at once); left it that day.
 */
function dayContributions(r: string, sign: 1 | -1, from = ''): string {
  const left = leftOf(r);
  const day = (column: string) => `${column} / 86400000`;
  const where = (cond: string) => `${from ? `${from} where` : 'where'} ${cond}`;
  return `select ${day(`${r}.created_at`)} as day, ${sign} as registrations, 0 as approvals,
      0 as rejections,
      case when ${left} is null or ${left} > ${r}.created_at then ${sign} else 0 end as pending_in,
      0 as pending_out ${from}
    union all select ${day(`${r}.approved_at`)}, 0, ${sign}, 0, 0, 0
      ${where(`${r}.approved_at > ${r}.created_at`)}
    union all select ${day(`${r}.rejected_at`)}, 0, 0, ${sign}, 0, 0
      ${where(`${r}.rejected_at > ${r}.created_at`)}
    union all select ${day(left)}, 0, 0, 0, 0, ${sign} ${where(`${left} > ${r}.created_at`)}`;
}

function addToUserDays(parts: string[]): string {
  const fields = ['registrations', 'approvals', 'rejections', 'pending_in', 'pending_out'];
  return `insert into user_days (day, ${fields.join(', ')})
    select day, ${fields.map((f) => `sum(${f})`).join(', ')}
    from (${parts.join(' union all ')}) c group by day
    having ${fields.map((f) => `sum(${f}) <> 0`).join(' or ')}
    order by day
    on conflict (day) do update set
      ${fields.map((f) => `${f} = user_days.${f} + excluded.${f}`).join(',\n      ')}`;
}

/** `rows`: [row alias, sign, FROM clause ('' for a trigger's row)]. */
function addToUserTotals(rows: [string, 1 | -1, string?][]): string {
  const parts = rows.flatMap(([r, sign, from = '']) => [
    `select 'role:' || ${r}.role as name, ${sign} as n ${from}`,
    `select 'status:' || ${r}.status, ${sign} ${from}`,
  ]);
  return `insert into user_totals (name, n)
    select name, sum(n) from (${parts.join(' union all ')}) t group by name
    having sum(n) <> 0 order by name
    on conflict (name) do update set n = user_totals.n + excluded.n`;
}

/** The columns whose change can move a user's counters (not last_login_at: every sign-in). */
const COUNTED_COLUMNS =
  'created_at, approved_at, rejected_at, decided_at, updated_at, status, role';

/**
 * Per-day counters of the users table and totals by role and status, kept by triggers so that
 * every writer (the application, the seeder, a tool, a test inserting rows) keeps them right,
 * and filled from the rows already there.
 */
/**
 * PostgreSQL: `<name>_insert`, `_update` and `_delete` triggers on users, once per statement,
 * calling the function `<name>()` with the statement's rows as `new_rows` / `old_rows`.
 * Transition tables allow one event per trigger and no column list.
 */
async function statementTriggersOnUsers(db: Kysely<unknown>, name: string): Promise<void> {
  const events: [string, string][] = [
    ['insert', 'new table as new_rows'],
    ['update', 'old table as old_rows new table as new_rows'],
    ['delete', 'old table as old_rows'],
  ];
  for (const [event, tables] of events) {
    await sql
      .raw(`create trigger ${name}_${event} after ${event} on users
        referencing ${tables} for each statement execute function ${name}()`)
      .execute(db);
  }
}

export async function createUserCounters(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('user_days')
    .addColumn('day', 'integer', (c) => c.primaryKey())
    .addColumn('registrations', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('approvals', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rejections', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pending_in', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pending_out', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('user_totals')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('n', 'integer', (c) => c.notNull())
    .execute();
  // The waits of approvals in a range, read from the index alone for the medians.
  await db.schema
    .createIndex('users_approval_wait_idx')
    .on('users')
    .columns(['approved_at', 'created_at'])
    .execute();

  const onInsert = [addToUserDays([dayContributions('new', 1)]), addToUserTotals([['new', 1]])];
  const onUpdate = [
    addToUserDays([dayContributions('old', -1), dayContributions('new', 1)]),
    addToUserTotals([
      ['old', -1],
      ['new', 1],
    ]),
  ];
  const onDelete = [addToUserDays([dayContributions('old', -1)]), addToUserTotals([['old', -1]])];
  if (dialect === 'postgres') {
    // Once per statement over its transition tables, not once per row: a bulk insert (the
    // seeder's) costs two upserts, not two per row. Rows are locked in key order and only when
    // a counter moves, so concurrent writers wait for each other rather than deadlock, and an
    // update that moves nothing (most do) locks nothing.
    const body = (statements: string[]) => statements.map((s) => `${s};`).join('\n');
    const onInsertRows = [
      addToUserDays([dayContributions('n', 1, 'from new_rows n')]),
      addToUserTotals([['n', 1, 'from new_rows n']]),
    ];
    const onUpdateRows = [
      addToUserDays([
        dayContributions('o', -1, 'from old_rows o'),
        dayContributions('n', 1, 'from new_rows n'),
      ]),
      addToUserTotals([
        ['o', -1, 'from old_rows o'],
        ['n', 1, 'from new_rows n'],
      ]),
    ];
    const onDeleteRows = [
      addToUserDays([dayContributions('o', -1, 'from old_rows o')]),
      addToUserTotals([['o', -1, 'from old_rows o']]),
    ];
    await sql
      .raw(`create function users_counters() returns trigger language plpgsql as $$
        begin
          if tg_op = 'INSERT' then ${body(onInsertRows)}
          elsif tg_op = 'UPDATE' then ${body(onUpdateRows)}
          else ${body(onDeleteRows)}
          end if;
          return null;
        end $$`)
      .execute(db);
    await statementTriggersOnUsers(db, 'users_counters');
  } else {
    const body = (statements: string[]) => statements.map((s) => `${s};`).join('\n');
    await sql
      .raw(`create trigger users_counters_insert after insert on users begin ${body(onInsert)} end`)
      .execute(db);
    await sql
      .raw(`create trigger users_counters_update after update of ${COUNTED_COLUMNS} on users
        begin ${body(onUpdate)} end`)
      .execute(db);
    await sql
      .raw(`create trigger users_counters_delete after delete on users begin ${body(onDelete)} end`)
      .execute(db);
  }

  await sql.raw(addToUserDays([dayContributions('users', 1, 'from users')])).execute(db);
  await sql
    .raw(`insert into user_totals (name, n)
      select 'role:' || role, count(*) from users group by role
      union all select 'status:' || status, count(*) from users group by status`)
    .execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function dropUserCounters(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') {
    for (const name of ['insert', 'update', 'delete']) {
      await sql`drop trigger if exists ${sql.raw(`users_counters_${name}`)} on users`.execute(db);
    }
    await sql`drop function if exists users_counters()`.execute(db);
  } else {
    for (const name of ['insert', 'update', 'delete']) {
      await sql`drop trigger if exists ${sql.raw(`users_counters_${name}`)}`.execute(db);
    }
  }
  await db.schema.dropIndex('users_approval_wait_idx').ifExists().execute();
  await db.schema.dropTable('user_totals').ifExists().execute();
  await db.schema.dropTable('user_days').ifExists().execute();
}

/**
 * The histogram of approval waits (migration 0009): per UTC day of approval, how many
 * approvals waited `approved_at - created_at` within each bucket. Bucket 0 holds waits under
 * a second; bucket k >= 1 starts at 1 s * 2^((k-1)/8), rounded to the millisecond, so each is
 * about 9% wider than the one before it (eight to a doubling), and the last one is open. The
 * bounds are rows of `approval_wait_buckets`, written once here: the triggers and the page
 * read the same integers, so a wait on a bound is in one bucket for both.
 */
export const WAIT_BUCKETS_PER_DOUBLING = 8;
/** 1 s to 2^30 s (34 years) in buckets of 2^(1/8), then the open last one. */
const WAIT_BUCKET_COUNT = 1 + 30 * WAIT_BUCKETS_PER_DOUBLING + 1;

function waitBucketBounds(): { bucket: number; low_ms: number }[] {
  return Array.from({ length: WAIT_BUCKET_COUNT }, (_, k) => ({
    bucket: k,
    low_ms: k === 0 ? 0 : Math.round(1000 * 2 ** ((k - 1) / WAIT_BUCKETS_PER_DOUBLING)),
  }));
}

/**
 * The `approval_waits` contributions of one users row (sign 1 or -1): its approval, on the
 * day of `approved_at`, in the bucket of its wait, when it waited (see users/analytics.ts).
 */
function waitContributions(r: string, sign: 1 | -1, from = ''): string {
  const wait = `${r}.approved_at - ${r}.created_at`;
  return `select ${r}.approved_at / 86400000 as day,
      (select bucket from approval_wait_buckets where low_ms <= ${wait}
        order by low_ms desc limit 1) as bucket,
      ${sign} as n
    ${from} where ${r}.approved_at > ${r}.created_at`;
}

function addToApprovalWaits(parts: string[]): string {
  return `insert into approval_waits (day, bucket, n)
    select day, bucket, sum(n) from (${parts.join(' union all ')}) c
    group by day, bucket having sum(n) <> 0 order by day, bucket
    on conflict (day, bucket) do update set n = approval_waits.n + excluded.n`;
}

/**
 * The approval-wait histogram, kept by triggers on `users` as the counters of 0008 are (every
 * writer keeps it right) and filled from the rows already there.
 */
export async function createApprovalWaits(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const time = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('approval_wait_buckets')
    .addColumn('bucket', 'integer', (c) => c.primaryKey())
    .addColumn('low_ms', time, (c) => c.notNull().unique())
    .execute();
  const bounds = waitBucketBounds().map((b) => `(${b.bucket}, ${b.low_ms})`);
  await sql
    .raw(`insert into approval_wait_buckets (bucket, low_ms) values ${bounds.join(', ')}`)
    .execute(db);
  await db.schema
    .createTable('approval_waits')
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('bucket', 'integer', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('approval_waits_pk', ['day', 'bucket'])
    .execute();

  const body = (statements: string[]) => statements.map((s) => `${s};`).join('\n');
  if (dialect === 'postgres') {
    // Per statement over the transition tables, as users_counters() (migration 0008).
    await sql
      .raw(`create function users_approval_waits() returns trigger language plpgsql as $$
        begin
          if tg_op = 'INSERT' then
            ${body([addToApprovalWaits([waitContributions('n', 1, 'from new_rows n')])])}
          elsif tg_op = 'UPDATE' then
            ${body([
              addToApprovalWaits([
                waitContributions('o', -1, 'from old_rows o'),
                waitContributions('n', 1, 'from new_rows n'),
              ]),
            ])}
          else
            ${body([addToApprovalWaits([waitContributions('o', -1, 'from old_rows o')])])}
          end if;
          return null;
        end $$`)
      .execute(db);
    await statementTriggersOnUsers(db, 'users_approval_waits');
  } else {
    await sql
      .raw(`create trigger users_approval_waits_insert after insert on users
        begin ${body([addToApprovalWaits([waitContributions('new', 1)])])} end`)
      .execute(db);
    await sql
      .raw(`create trigger users_approval_waits_update after update of created_at, approved_at
        on users begin ${body([
          addToApprovalWaits([waitContributions('old', -1), waitContributions('new', 1)]),
        ])} end`)
      .execute(db);
    await sql
      .raw(`create trigger users_approval_waits_delete after delete on users
        begin ${body([addToApprovalWaits([waitContributions('old', -1)])])} end`)
      .execute(db);
  }
  await fillApprovalWaits(db);
}

/**
 * `activity_days.latest` (migration 0009): per day, the users whose latest sign-in
 * (`activity_last`) falls on it, kept at each sign-in by users/activity.ts, so the page's
 * "signed in in the last N days" sums days instead of reading every such user.
 */
export async function addLatestDays(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('activity_days')
    .addColumn('latest', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await fillLatestDays(db);
}

/** Sets `activity_days.latest` from `activity_last` (every user's latest day has a row). */
// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function fillLatestDays(db: Kysely<any>): Promise<void> {
  await sql`update activity_days set latest = c.n
    from (select last_at / ${DAY_MS} as day, count(*) as n from activity_last group by 1) c
    where activity_days.day = c.day`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function dropLatestDays(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('activity_days').dropColumn('latest').execute();
}

/** Adds every users row's approval to the (empty) histogram: the backfill and the rebuild. */
// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function fillApprovalWaits(db: Kysely<any>): Promise<void> {
  await sql.raw(addToApprovalWaits([waitContributions('users', 1, 'from users')])).execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: the migration's Kysely<unknown> or the app's
export async function dropApprovalWaits(db: Kysely<any>, dialect: Dialect): Promise<void> {
  for (const name of ['insert', 'update', 'delete']) {
    const trigger = sql.raw(`users_approval_waits_${name}`);
    if (dialect === 'postgres') await sql`drop trigger if exists ${trigger} on users`.execute(db);
    else await sql`drop trigger if exists ${trigger}`.execute(db);
  }
  if (dialect === 'postgres') await sql`drop function if exists users_approval_waits()`.execute(db);
  await db.schema.dropTable('approval_waits').ifExists().execute();
  await db.schema.dropTable('approval_wait_buckets').ifExists().execute();
}
