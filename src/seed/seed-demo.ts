/**
 * @module seed/seed-demo
 * A realistic demo fleet: users who registered over the past weeks (most approved, some
 * pending, rejected or disabled), and sessions of the approved ones, live and expired, each
 * with its sign-in in the session history.
 *
 * Built for size (100,000 users and 1,000,000 sessions in well under a minute): one password
 * hash shared by every demo user; every session drawn first, so each user row goes in with
 * its last sign-in and the history is written in time order (see SessionPlan); multi-row
 * INSERTs of INSERT_ROWS rows, the sessions in one transaction on SQLite (TRANSACTION_ROWS
 * elsewhere); and for Redis concurrent script calls that node-redis pipelines, beside the
 * history's inserts rather than in turns with them.
 */
import { randomBytes } from 'node:crypto';
import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { Database, Dialect } from '../db/database.js';
import type { DB, NewUserRow, Role, UserRow, UserStatus } from '../db/schema.js';
import { type SessionRecord, type SessionStore, statusOf } from '../sessions/session-store.js';
import { toRow } from '../sessions/sql-store.js';
import { rebuildActivity } from '../users/activity.js';
import { normalizeEmail } from '../users/email.js';
import { hashPassword } from '../users/passwords.js';
import {
  DEMO_EMAIL_DOMAIN,
  docAddress,
  FIRST_NAMES,
  LAST_NAMES,
  mix32,
  pick,
  USER_AGENTS,
  weighted,
} from './demo-data.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Demo users registered within this span before the seed runs, in milliseconds. */
export const DEMO_SPAN_MS = 8 * 7 * DAY;
/** Rows per INSERT statement: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters. */
export const INSERT_ROWS = 1_000;
/**
 * Rows per SQL transaction on PostgreSQL (users, and sessions with their history). Some
 * indexes take rows all over (users' emails, the history's user ids), and fewer, larger
 * commits write each page fewer times. On SQLite the sessions go in one transaction, whose
 * pages the seed's page cache holds until the commit writes each once: at 1,000,000 sessions
 * (2 shared cores, load average 8) 122 s against 150 s in 50,000-row transactions, 83 s of
 * CPU against 90.
 *
 * LIMITATION: that transaction holds SQLite's write lock to the end of the seed, so a server
 * on the same file waits for it, and its writes (sign-ins) fail after its 5 s busy timeout;
 * seed before starting the server, as the bench does.
 */
export const TRANSACTION_ROWS = 50_000;
/** Share of sessions still live when the seed runs; the rest are expired. */
const ACTIVE_SHARE = 0.7;
/** Mean time a signed-in person stays active, in milliseconds (exponentially spread). */
const MEAN_ACTIVITY_MS = 40 * MINUTE;
/** Share of a user's sign-ins from their usual device and from their usual address. */
const USUAL_DEVICE_SHARE = 0.75;
const USUAL_ADDRESS_SHARE = 0.65;
// Page cache of the seeding connection, in KiB (SQLite's default is 2 MiB): a transaction's
// dirty index pages stay in memory until its commit instead of spilling to the WAL early, and
// later transactions find the pages of earlier ones. 1,000,000 sessions make a file of about
// 0.9 GiB, all of which fits; the cache grows only as pages are read.
const SQLITE_CACHE_KIB = 2 * 1024 * 1024;

const pickRole = weighted<Role>([
  { value: 'user', weight: 90 },
  { value: 'admin', weight: 8 },
  { value: 'superuser', weight: 2 },
]);

const pickStatus = weighted<UserStatus>([
  { value: 'approved', weight: 85 },
  { value: 'pending', weight: 7 },
  { value: 'rejected', weight: 3 },
  { value: 'disabled', weight: 5 },
]);

const pickUserAgent = weighted(USER_AGENTS.map((e) => ({ value: e.ua, weight: e.weight })));

/** The parts of the session policy that decide which demo sessions are live or expired. */
export interface SeedPolicy {
  idleTimeoutMs: number;
  absoluteLifetimeMs: number;
  retentionMs: number;
}

export interface SeedProgress {
  phase: 'users' | 'sessions';
  done: number;
  total: number;
}

export interface SeedOptions {
  users: number;
  sessions: number;
  /** Every demo user's password (hashed once). */
  password: string;
  policy: SeedPolicy;
  /** The time the fleet is built around. @default Date.now() */
  now?: number;
  onProgress?: (progress: SeedProgress) => void;
}

export interface SeedReport {
  /** Users inserted (an email already taken is skipped, not overwritten). */
  users: number;
  skippedUsers: number;
  byRole: Record<Role, number>;
  byStatus: Record<UserStatus, number>;
  sessions: number;
  expiredSessions: number;
}

/** Approved demo users: who may own sessions, and from when. */
interface Owners {
  ids: number[];
  approvedAt: number[];
}

/**
 * Seeds `options.users` users and `options.sessions` sessions (spread over the approved
 * ones) into the database and the store, with a `signed_in` event per session.
 * @example await seedDemo(runtime, { users: 1000, sessions: 5000, password, policy: config })
 */
export async function seedDemo(
  target: { database: Database; store: SessionStore },
  options: SeedOptions,
): Promise<SeedReport> {
  const now = options.now ?? Date.now();
  const { db, dialect } = target.database;
  if (dialect === 'sqlite') {
    await sql`pragma cache_size = ${sql.lit(-SQLITE_CACHE_KIB)}`.execute(db);
    // No fsync at each commit and checkpoint while seeding: a crash part-way loses demo rows
    // only (the WAL keeps the file consistent), and the seed can be run again.
    await sql`pragma synchronous = off`.execute(db);
  }
  try {
    return await seed(target, options, now);
  } finally {
    if (dialect === 'sqlite') await sql`pragma synchronous = normal`.execute(db);
  }
}

async function seed(
  target: { database: Database; store: SessionStore },
  options: SeedOptions,
  now: number,
): Promise<SeedReport> {
  const { db, dialect } = target.database;

  const report: SeedReport = {
    users: 0,
    skippedUsers: 0,
    byRole: { user: 0, admin: 0, superuser: 0 },
    byStatus: { pending: 0, approved: 0, rejected: 0, disabled: 0 },
    sessions: 0,
    expiredSessions: 0,
  };
  const users = await planUsers(db, options, now);
  // The sessions are drawn before the users are written, so each user row goes in with its
  // last sign-in: setting it afterwards rewrote every owner's row and all ten of its indexes
  // on PostgreSQL (about 15 s for 85,000 owners).
  let plan = planSessions(users.owners, options, now);
  setLastLogins(users.rows, users.owners, plan);
  const owners = await insertUsers(db, dialect, users.rows, options, report);
  // Some planned owners were not inserted (their email was taken): draw the sessions again
  // over the owners that were, and set those owners' last sign-ins afterwards.
  const replanned = owners.ids.length < users.owners.ids.length;
  if (replanned) plan = planSessions(owners, options, now);
  if (owners.ids.length > 0 && options.sessions > 0) {
    await seedSessions(target, owners, plan, options, now, report);
    if (replanned) await recordLastLogins(db, dialect, lastLoginsOf(owners, plan));
    await rebuildActivity(db, dialect); // the analytics aggregates, from the history just written
  }
  if (dialect === 'postgres') {
    // Fresh statistics and visibility map for the rows just loaded, as autovacuum would give
    // them a little later: until then the planner guesses, and an index-only scan (the role
    // filter's first users, by id) still reads every row it returns from the table.
    await sql`vacuum analyze users, sessions, session_events`.execute(db);
  }

  return report;
}

/** Users who are neither demo users nor superusers: a guard against seeding a real database. */
export async function countNonDemoUsers(db: Kysely<DB>): Promise<number> {
  const row = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '!=', 'superuser')
    .where('email_normalized', 'not like', `%@${DEMO_EMAIL_DOMAIN}`)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The users to insert, in order, and which of them are approved (the planned owners). */
interface PlannedUsers {
  rows: NewUserRow[];
  /** Positions in `rows` of the approved users, in order, with their approval times. */
  owners: Owners;
}

async function planUsers(db: Kysely<DB>, options: SeedOptions, now: number): Promise<PlannedUsers> {
  const passwordHash = await hashPassword(options.password);
  const last = await db
    .selectFrom('users')
    .select((eb) => eb.fn.max('id').as('max'))
    .executeTakeFirst();
  // Numbers in the emails continue after the highest id, so a second run adds new people.
  const serial = Number(last?.max ?? 0) + 1;

  const rows: NewUserRow[] = [];
  const owners: Owners = { ids: [], approvedAt: [] };
  for (let j = 0; j < options.users; j++) {
    // The first user is always approved, so any run has someone to own sessions.
    const row = demoUser(serial + j, j === 0, passwordHash, now);
    rows.push(row);
    if (row.status === 'approved' && row.approved_at != null) {
      owners.ids.push(j);
      owners.approvedAt.push(row.approved_at);
    }
  }
  return { rows, owners };
}

/** Each planned owner's latest sign-in, into its row's last_login_at. */
function setLastLogins(rows: NewUserRow[], owners: Owners, plan: SessionPlan): void {
  for (const [position, at] of lastLoginsOf(owners, plan)) rows[position].last_login_at = at;
}

/** Each owner's (by owners.ids) latest sign-in in the plan; null for an owner without one. */
function lastLoginsOf(owners: Owners, plan: SessionPlan): Map<number, number | null> {
  const latest = new Float64Array(owners.ids.length).fill(-1);
  for (let k = 0; k < plan.owner.length; k++) {
    const o = plan.owner[k];
    if (plan.createdAt[k] > latest[o]) latest[o] = plan.createdAt[k];
  }
  const out = new Map<number, number | null>();
  for (let o = 0; o < latest.length; o++) out.set(owners.ids[o], latest[o] >= 0 ? latest[o] : null);
  return out;
}

const USER_COLUMNS = [
  'email',
  'email_normalized',
  'password_hash',
  'role',
  'status',
  'created_at',
  'approved_at',
  'approved_by',
  'rejected_at',
  'rejected_by',
  'decided_at',
  'last_login_at',
  'updated_at',
] as const satisfies readonly (keyof NewUserRow)[];

/** Inserts the planned users; answers the approved ones inserted, as owners (by user id). */
async function insertUsers(
  db: Kysely<DB>,
  dialect: Dialect,
  rows: readonly NewUserRow[],
  options: SeedOptions,
  report: SeedReport,
): Promise<Owners> {
  const insert = rowInserter(dialect);
  const owners: Owners = { ids: [], approvedAt: [] };
  for (let done = 0; done < rows.length; ) {
    const end = Math.min(rows.length, done + TRANSACTION_ROWS);
    const inserted = await db.transaction().execute(async (trx) => {
      await fastCommits(trx, dialect);
      const added: Pick<UserRow, 'id' | 'role' | 'status' | 'approved_at'>[] = [];
      for (let i = done; i < end; i += INSERT_ROWS) {
        const batch = rows.slice(i, Math.min(end, i + INSERT_ROWS));
        const values = batch.map((u) => USER_COLUMNS.map((c) => u[c] ?? null) as Row);
        const result = await insert(trx, 'users', USER_COLUMNS, values, {
          suffix:
            'on conflict (email_normalized) do nothing returning id, role, status, approved_at',
        });
        added.push(...(result.rows as typeof added));
      }
      // Ids follow the insertion order on both engines, RETURNING's rows need not: in id order,
      // the n-th approved user inserted is the n-th planned, when none was skipped.
      return added.sort((a, b) => a.id - b.id);
    });

    for (const u of inserted) {
      report.byRole[u.role] += 1;
      report.byStatus[u.status] += 1;
      if (u.status === 'approved' && u.approved_at !== null) {
        owners.ids.push(u.id);
        owners.approvedAt.push(u.approved_at);
      }
    }
    report.users += inserted.length;
    report.skippedUsers += end - done - inserted.length;
    done = end;
    options.onProgress?.({ phase: 'users', done, total: rows.length });
  }
  return owners;
}

/**
 * For the seed's own transactions on PostgreSQL: a commit does not wait for its WAL to reach
 * the disk. A crash may lose the last commits (demo rows only, and the database stays
 * consistent); the seed can be run again.
 */
async function fastCommits(trx: Kysely<DB>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`set local synchronous_commit = off`.execute(trx);
}

/**
 * Every session's owner (a position in Owners) and times, drawn before anything is written and
 * ordered by sign-in time: the history is then written as it would have happened, so the
 * indexes on its time (and the SQL store's on creation) grow at one end instead of taking
 * inserts all over their pages, which at a million rows no longer fit PostgreSQL's buffers.
 *
 * LIMITATION: the plan takes 24 bytes a session (24 MB at a million; 2.4 GB at the command's
 * maximum of 100 million, where the earlier batch-by-batch drawing needed none).
 */
interface SessionPlan {
  owner: Uint32Array;
  createdAt: Float64Array;
  /** The deadlines follow from these two and the policy (`deadlines`). */
  lastSeenAt: Float64Array;
  /** Positions of the above in sign-in order. */
  order: Uint32Array;
}

function planSessions(owners: Owners, options: SeedOptions, now: number): SessionPlan {
  const n = owners.ids.length === 0 ? 0 : options.sessions;
  const plan: SessionPlan = {
    owner: new Uint32Array(n),
    createdAt: new Float64Array(n),
    lastSeenAt: new Float64Array(n),
    order: new Uint32Array(0),
  };
  for (let k = 0; k < n; k++) {
    // Skewed towards long-standing users, who collect more sessions.
    const owner = Math.floor(owners.ids.length * Math.random() ** 1.5);
    const times = sessionTimes(owners.approvedAt[owner], options.policy, now);
    plan.owner[k] = owner;
    plan.createdAt[k] = times.createdAt;
    plan.lastSeenAt[k] = times.lastSeenAt;
  }
  plan.order = byCreation(plan.createdAt);
  return plan;
}

/**
 * Positions of `created` in ascending order: spread into up to 65,536 buckets by time, then
 * each bucket sorted (a comparator sort of a million positions took about twice as long).
 */
function byCreation(created: Float64Array): Uint32Array {
  const n = created.length;
  const order = new Uint32Array(n);
  if (n === 0) return order;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < n; k++) {
    min = Math.min(min, created[k]);
    max = Math.max(max, created[k]);
  }
  const buckets = Math.max(1, Math.min(n >>> 4, 1 << 16));
  const scale = buckets / (max - min + 1);
  const bucketOf = (k: number) => Math.floor((created[k] - min) * scale);
  // next[b]: where bucket b's next position goes; bounds[b]: where bucket b starts.
  const next = new Uint32Array(buckets + 1);
  for (let k = 0; k < n; k++) next[bucketOf(k) + 1] += 1;
  for (let b = 1; b <= buckets; b++) next[b] += next[b - 1];
  const bounds = next.slice();
  for (let k = 0; k < n; k++) order[next[bucketOf(k)]++] = k;
  const earlier = (a: number, b: number) => created[a] - created[b];
  for (let b = 0; b < buckets; b++) {
    if (bounds[b + 1] - bounds[b] > 1) order.subarray(bounds[b], bounds[b + 1]).sort(earlier);
  }
  return order;
}

/** How many INSERT_ROWS batches of sessions may be in a store's hands, not yet answered. */
const STORE_BATCHES_IN_FLIGHT = 2;

async function seedSessions(
  target: { database: Database; store: SessionStore },
  owners: Owners,
  plan: SessionPlan,
  options: SeedOptions,
  now: number,
  report: SeedReport,
): Promise<void> {
  const { db, dialect } = target.database;
  const { store } = target;
  const insert = rowInserter(dialect);
  const total = plan.order.length;
  // Another store (Redis) is written beside the history, not in turns with it: each batch
  // goes to it and the SQL insert starts at once; only a third batch waits for the first.
  const inFlight = new InFlight(STORE_BATCHES_IN_FLIGHT);

  const perTransaction = dialect === 'sqlite' ? total : TRANSACTION_ROWS;
  for (let done = 0; done < total; ) {
    const end = Math.min(total, done + perTransaction);
    await db.transaction().execute(async (trx) => {
      await fastCommits(trx, dialect);
      for (let i = done; i < end; i += INSERT_ROWS) {
        const batch = demoSessions(plan, owners, options.policy, i, Math.min(INSERT_ROWS, end - i));
        if (store.kind !== 'sql') {
          await inFlight.add(
            store.createMany
              ? store.createMany(batch)
              : Promise.all(batch.map((s) => store.create(s))),
          );
        }
        await insert(trx, 'session_events', EVENT_COLUMNS, batch.map(signedInValues));
        // The SQL store's table is written directly, in the same transaction as the history;
        // any other store gets its own createMany() (or create(), whose calls node-redis
        // pipelines).
        if (store.kind === 'sql') {
          await insert(trx, 'sessions', SESSION_COLUMNS, batch.map(sessionValues));
        }
        for (const s of batch) if (statusOf(s, now) === 'expired') report.expiredSessions += 1;
        const written = i + batch.length;
        // Written, not yet committed: the last report comes after the commit.
        if (written < end)
          options.onProgress?.({ phase: 'sessions', done: written, total: options.sessions });
      }
      // History is committed only for sessions the store has taken, as when the two went in
      // turns.
      await inFlight.drain();
    });

    report.sessions += end - done;
    done = end;
    options.onProgress?.({ phase: 'sessions', done, total: options.sessions });
  }
}

/**
 * At most `limit` promises pending; the first failure is thrown by the next add() or drain(),
 * and no rejection goes unhandled meanwhile.
 */
class InFlight {
  readonly #pending = new Set<Promise<unknown>>();
  #failure: { error: unknown } | null = null;
  constructor(readonly limit: number) {}

  async add(work: Promise<unknown>): Promise<void> {
    const tracked = work.then(
      () => {
        this.#pending.delete(tracked);
      },
      (error) => {
        this.#pending.delete(tracked);
        this.#failure ??= { error };
      },
    );
    this.#pending.add(tracked);
    while (this.#pending.size > this.limit) await Promise.race(this.#pending);
    this.#check();
  }

  async drain(): Promise<void> {
    await Promise.all(this.#pending);
    this.#check();
  }

  #check(): void {
    if (this.#failure) throw this.#failure.error;
  }
}

/**
 * Sets each seeded owner's last sign-in, known from the sessions just written, INSERT_ROWS
 * users per statement (reading it back from the history would cost a lookup per event): only
 * when some planned users were skipped, since the others went in with theirs.
 */
async function recordLastLogins(
  db: Kysely<DB>,
  dialect: Dialect,
  lastLogins: ReadonlyMap<number, number | null>,
): Promise<void> {
  const entries = [...lastLogins];
  // PostgreSQL types a VALUES list from its first row; SQLite needs no casts.
  const pair = (k: number) =>
    dialect === 'postgres' ? `($${2 * k + 1}::integer, $${2 * k + 2}::bigint)` : '(?, ?)';
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < entries.length; i += INSERT_ROWS) {
      const chunk = entries.slice(i, i + INSERT_ROWS);
      const values = chunk.map((_, k) => pair(k)).join(', ');
      await trx.executeQuery(
        CompiledQuery.raw(
          `update users set last_login_at = v.column2 from (values ${values}) as v
           where users.id = v.column1`,
          chunk.flat(),
        ),
      );
    }
  });
}

type Row = readonly (string | number | null)[];

const SESSION_COLUMNS = [
  'id',
  'user_id',
  'created_at',
  'last_seen_at',
  'idle_expires_at',
  'absolute_expires_at',
  'expires_at',
  'ip',
  'user_agent',
] as const;

const EVENT_COLUMNS = ['session_id', 'user_id', 'kind', 'at', 'ip', 'user_agent'] as const;

/**
 * Multi-row INSERTs of plain values, their SQL text built once per table and row count: a
 * query builder spends more time on a thousand rows' syntax tree than the database on them.
 */
function rowInserter(dialect: Dialect) {
  const texts = new Map<string, string>();
  return (
    trx: Kysely<DB>,
    table: string,
    columns: readonly string[],
    rows: readonly Row[],
    { suffix = '' } = {},
  ) => {
    const key = `${table}:${rows.length}:${suffix}`;
    let text = texts.get(key);
    if (text === undefined) {
      let n = 0;
      const one = () =>
        `(${columns.map(() => (dialect === 'postgres' ? `$${++n}` : '?')).join(', ')})`;
      text = `insert into ${table} (${columns.join(', ')}) values ${rows.map(one).join(', ')} ${suffix}`;
      texts.set(key, text);
    }
    return trx.executeQuery(CompiledQuery.raw(text, rows.flat()));
  };
}

function sessionValues(s: SessionRecord): Row {
  const r = toRow(s);
  return [
    r.id,
    r.user_id,
    r.created_at,
    r.last_seen_at,
    r.idle_expires_at,
    r.absolute_expires_at,
    r.expires_at,
    r.ip,
    r.user_agent,
  ];
}

function demoUser(
  n: number,
  forceApproved: boolean,
  passwordHash: string,
  now: number,
): NewUserRow {
  const email = `${pick(FIRST_NAMES)}.${pick(LAST_NAMES)}${n}@${DEMO_EMAIL_DOMAIN}`;
  const role = pickRole();
  // A superuser who was never approved could not have become one.
  const status = forceApproved || role === 'superuser' ? 'approved' : pickStatus();
  // More recent registrations than old ones: a growing service.
  const createdAt = now - 15 * MINUTE - Math.floor(DEMO_SPAN_MS * Math.random() ** 1.5);

  // The decision columns as the console's approval workflow writes them (user-repo.ts), so
  // the analytics page's approvals, rejections, waits and pending queue are exact: every
  // decision comes at least a minute after the registration it decides.
  let approvedAt: number | null = null;
  let rejectedAt: number | null = null;
  let updatedAt = createdAt;
  if (status === 'approved' || status === 'disabled') {
    const wait = MINUTE + Math.floor(-Math.log(1 - Math.random()) * 6 * HOUR);
    approvedAt = Math.min(createdAt + wait, now - 10 * MINUTE);
    updatedAt = approvedAt;
    if (status === 'disabled') updatedAt += Math.floor(Math.random() * (now - approvedAt));
  } else if (status === 'rejected') {
    rejectedAt = Math.min(createdAt + MINUTE + Math.floor(Math.random() * DAY), now - MINUTE);
    updatedAt = rejectedAt;
  }

  return {
    email,
    email_normalized: normalizeEmail(email),
    password_hash: passwordHash,
    role,
    status,
    created_at: createdAt,
    approved_at: approvedAt,
    // Decided by nobody who can be named: crediting the first superuser put in their name
    // approvals from before their account existed, with no audit row behind them.
    approved_by: null,
    rejected_at: rejectedAt,
    rejected_by: null,
    // A disabled account left `pending` when it was approved.
    decided_at: approvedAt ?? rejectedAt,
    last_login_at: null,
    updated_at: updatedAt,
  };
}

/**
 * Sessions `from` to `from + count - 1` of the plan, in sign-in order. Ids are random 64-digit
 * hex, the shape of a token's digest, but no token was ever drawn: no cookie can ever match a
 * demo session. Their first 8 digits rise with the position in the plan (a random point in
 * the position's own 1/n of the range), so the history's and the SQL store's indexes on the
 * id also grow at one end; each id is still uniform over the whole range.
 */
function demoSessions(
  plan: SessionPlan,
  owners: Owners,
  policy: SeedPolicy,
  from: number,
  count: number,
): SessionRecord[] {
  const { idleTimeoutMs: idle, absoluteLifetimeMs: absolute } = policy;
  const total = plan.order.length;
  const tails = randomBytes(28 * count).toString('hex');
  const sessions: SessionRecord[] = [];
  for (let j = 0; j < count; j++) {
    const k = plan.order[from + j];
    const head = Math.floor(((from + j + Math.random()) / total) * 2 ** 32);
    const userId = owners.ids[plan.owner[k]];
    const usual = mix32(userId);
    sessions.push({
      id: head.toString(16).padStart(8, '0') + tails.slice(j * 56, j * 56 + 56),
      userId,
      ...deadlines(plan.createdAt[k], plan.lastSeenAt[k], idle, absolute),
      ip: docAddress(Math.random() < USUAL_ADDRESS_SHARE ? usual : randomBits()),
      userAgent: pickUserAgent(
        Math.random() < USUAL_DEVICE_SHARE ? mix32(usual) / 2 ** 32 : Math.random(),
      ),
    });
  }
  return sessions;
}

type SessionTimes = Pick<
  SessionRecord,
  'createdAt' | 'lastSeenAt' | 'idleExpiresAt' | 'absoluteExpiresAt'
>;

/**
 * Times of one session signed in after `approvedAt`. A live one was created within the
 * absolute lifetime and seen within the idle timeout. An expired one ended inside the
 * retention window, where the console still lists it (and the Redis key still lives).
 */
function sessionTimes(approvedAt: number, policy: SeedPolicy, now: number): SessionTimes {
  const { idleTimeoutMs: idle, absoluteLifetimeMs: absolute, retentionMs } = policy;
  // Margins scale down with short test policies (an idle timeout of seconds).
  const margin = Math.min(MINUTE, Math.floor(idle / 10));
  const retentionSlack = Math.min(HOUR, Math.floor(retentionMs / 10));

  const earliestExpired = Math.max(approvedAt, now - retentionMs + retentionSlack);
  const latestExpired = now - idle - margin;
  if (Math.random() >= ACTIVE_SHARE && earliestExpired < latestExpired) {
    const createdAt = between(earliestExpired, latestExpired);
    const activity = Math.floor(-Math.log(1 - Math.random()) * MEAN_ACTIVITY_MS);
    // Past the latest allowed, a time drawn before it: clamped, about 1% of a fleet's sessions
    // would end at the same millisecond, a tie no real fleet has, which the expired listing
    // (latest first, ties by id) sorts whole on its first page.
    const seen =
      createdAt + activity > latestExpired
        ? between(createdAt, latestExpired)
        : createdAt + activity;
    const lastSeenAt = Math.min(seen, createdAt + absolute);
    return deadlines(createdAt, lastSeenAt, idle, absolute);
  }

  const createdAt = between(Math.max(approvedAt, now - absolute + margin), now - margin);
  const lastSeenAt = between(Math.max(createdAt, now - idle + margin), now);
  return deadlines(createdAt, lastSeenAt, idle, absolute);
}

function deadlines(createdAt: number, lastSeenAt: number, idle: number, absolute: number) {
  const absoluteExpiresAt = createdAt + absolute;
  const idleExpiresAt = Math.min(lastSeenAt + idle, absoluteExpiresAt);
  return { createdAt, lastSeenAt, idleExpiresAt, absoluteExpiresAt };
}

/** A whole number in [lo, hi]; lo when the range is empty. */
function between(lo: number, hi: number): number {
  return hi <= lo ? lo : lo + Math.floor(Math.random() * (hi - lo + 1));
}

function randomBits(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

function signedInValues(s: SessionRecord): Row {
  return [s.id, s.userId, 'signed_in', s.createdAt, s.ip, s.userAgent];
}
