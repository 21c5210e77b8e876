/**
 * @module sessions/sql-store
 * Sessions in a `sessions` table beside the users, so user filters are one indexed join.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type Expression,
  type ExpressionBuilder,
  type Kysely,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import { countMatches } from '../db/capped-count.js';
import type { Dialect, WalLog } from '../db/database.js';
import { idSet } from '../db/id-set.js';
import { type DB, ROLES, type Role, type SessionRow } from '../db/schema.js';
import { emailMatch } from '../users/email-filter.js';
import { keepRecord, ReadCache, type ReadCacheStats } from './read-cache.js';
import {
  type CreateOptions,
  type DeleteOutcome,
  type ExpiredBatch,
  expiresAt,
  type HealthReport,
  LateTakeError,
  LateWriteError,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionStore,
  type SessionTally,
  type Taken,
  type TakeOptions,
  type TopUsers,
  type UserFilter,
} from './session-store.js';

// Keeps every statement's parameter count well under SQLite's and PostgreSQL's limits.
const ID_CHUNK = 500;
// Rows per statement of removeUnreadable's walk on SQLite: about half a millisecond.
const CHECK_CHUNK = 1_000;
// Log pages past which bulk removals wait for the checkpointer (see #betweenChunks): half the
// bound at which a commit would copy the log in this thread (a chunk adds up to 2,500).
const SETTLE_PAGES = 5_000;
// Ids per take call of a bulk revocation (see SessionStore.bulkChunk). On SQLite a DELETE of
// 500 ids at a million sessions takes about 25 ms in this thread; 250 halves that, at one commit
// more per 500 (chunks of 50 were 20 commits for 1,000, each writing its pages).
const WIRE_BULK_CHUNK = 50;
const SQLITE_BULK_CHUNK = 250;
// Take calls in flight at once on PostgreSQL (see SessionStore.bulkWindow).
const WIRE_BULK_WINDOW = 4;
/**
 * Most users a user filter may match and still be resolved to their ids (bound parameters,
 * well under both databases' limits); past it, to a subquery (see SqlSessionStore#plan).
 */
const USER_SET_LIMIT = 500;
// See SqlSessionStore#broadAt.
const BROAD_USERS = 2_000;
/** Most matches a page reads through the index that counted them and sorts, rather than walk. */
const SORT_LIMIT = 2_000;

type Filters = Omit<SessionQuery, 'offset' | 'limit'>;

/** The shapes of one query on `sessions` (see SqlSessionStore#plan). */
interface Plan {
  counting: SelectQueryBuilder<DB, 'sessions', object>;
  walking: SelectQueryBuilder<DB, 'sessions', object>;
}

/**
 * The session a row holds, or null when the row cannot be read: SQLite keeps whatever value a
 * column is given (text in a time column, a blob for the address), and a PostgreSQL bigint
 * past 2^53 has no exact JavaScript number.
 */
function toRecord(row: SessionRow): SessionRecord | null {
  const numbers = [
    row.user_id,
    row.created_at,
    row.last_seen_at,
    row.idle_expires_at,
    row.absolute_expires_at,
  ];
  if (!numbers.every(Number.isSafeInteger)) return null;
  if (typeof row.id !== 'string' || typeof row.ip !== 'string') return null;
  if (typeof row.user_agent !== 'string') return null;
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    ip: row.ip,
    userAgent: row.user_agent,
  };
}

/** The `sessions` row of a session (the seed writes rows in bulk with it). */
export function toRow(s: SessionRecord): SessionRow {
  return {
    id: s.id,
    user_id: s.userId,
    created_at: s.createdAt,
    last_seen_at: s.lastSeenAt,
    idle_expires_at: s.idleExpiresAt,
    absolute_expires_at: s.absoluteExpiresAt,
    expires_at: expiresAt(s),
    ip: s.ip,
    user_agent: s.userAgent,
  };
}

function readable(rows: readonly SessionRow[]): SessionRecord[] {
  return rows.map(toRecord).filter((r) => r !== null);
}

// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const NUMBER_COLUMNS = [
  'user_id',
  'created_at',
  'last_seen_at',
  'idle_expires_at',
  'absolute_expires_at',
  'expires_at',
] as const;

/** A session whose user no longer exists (NOT IN: one pass over the user index). */
function orphaned(eb: ExpressionBuilder<DB, 'sessions'>) {
  return eb('user_id', 'not in', eb.selectFrom('users').select('users.id'));
}

interface SqliteMemory {
  cache: ReadCache;
  dataVersion: () => number;
  /** The data_version the memory was last checked against. */
  seen: number;
}

export class SqlSessionStore implements SessionStore {
  readonly kind = 'sql';
  readonly bulkChunk: number;
  readonly bulkWindow: number;
  readonly #db: Kysely<DB>;
  readonly #dialect: Dialect;

  readonly #userSetLimit: number;
  readonly #broadUsers: number;
  readonly #countsRunning = new Map<number, Promise<{ active: number; expired: number }>>();
  readonly #memory: SqliteMemory | undefined;
  /** Present with `memory` only, so validation does not look for what cannot be there. */
  readonly peek?: (id: string) => SessionRecord | undefined;
  readonly #log: WalLog | undefined;
  readonly #reads: Kysely<DB>;

  /**
   * `userSetLimit`: how many users a user filter may match and still be answered through
   * their ids (see #plan); `broadUsers`, the least past which an email filter is tested on each
   * session's owner on SQLite (#broadAt). The contract tests lower them to cover every way.
   * `memory` (SQLite, the server's one connection): keep sessions read by `get` until this
   * store writes them or another process commits (`PRAGMA data_version` moves), and answer
   * `peek` from them.
   * `log` (SQLite with a checkpointer thread, see db/database.ts): bulk work waits for it to
   * settle once it holds SETTLE_PAGES pages.
   * `reads` (Database.reads): where the counts and the statistics' scans run, on SQLite a
   * reader thread in the server. @default db
   */
  constructor(
    db: Kysely<DB>,
    dialect: Dialect,
    options: {
      userSetLimit?: number;
      broadUsers?: number;
      memory?: { dataVersion: () => number; maxEntries: number };
      log?: WalLog;
      reads?: Kysely<DB>;
    } = {},
  ) {
    this.#db = db;
    this.#reads = options.reads ?? db;
    this.#dialect = dialect;
    this.#log = options.log;
    this.#userSetLimit = options.userSetLimit ?? USER_SET_LIMIT;
    this.#broadUsers = options.broadUsers ?? BROAD_USERS;
    if (options.memory) {
      const memory: SqliteMemory = {
        cache: new ReadCache(options.memory.maxEntries),
        dataVersion: options.memory.dataVersion,
        seen: options.memory.dataVersion(),
      };
      this.#memory = memory;
      this.peek = (id) => {
        if (this.#current(memory)) return memory.cache.peek(id);
        memory.cache.missed();
        return undefined;
      };
    }
    this.bulkChunk = dialect === 'sqlite' ? SQLITE_BULK_CHUNK : WIRE_BULK_CHUNK;
    this.bulkWindow = dialect === 'sqlite' ? 1 : WIRE_BULK_WINDOW;
  }

  /**
   * Inserts the row. With `notAfter`, PostgreSQL inserts only while its own clock is not past
   * it (a statement held up in a stalled connection writes nothing when it finally runs);
   * SQLite runs in this process, where a write cannot arrive late, so the bound is checked here.
   */
  /**
   * Before each chunk of bulk work on SQLite: the database answers synchronously in this thread,
   * so a loop of chunks would otherwise run as one chain of settled promises and keep every
   * request waiting until it ends (a sign-in waited 27 s behind a revoke-matching). One turn of
   * the event loop lets the requests that arrived meanwhile in. PostgreSQL answers over a
   * socket, so the loop yields there anyway.
   */
  #letOthersIn(): Promise<void> {
    return this.#dialect === 'sqlite' ? nextTurn() : Promise.resolve();
  }

  /**
   * #letOthersIn, and once the write-ahead log holds SETTLE_PAGES pages, a pause until the
   * checkpointer thread has copied it into the file: each removed row writes about five pages of
   * log at random (its index entries and its history row's), and without the pause a commit
   * past the log's bound copies it in this thread (see startCheckpointer). Requests go on
   * meanwhile. A revocation of a thousand after a quiet while finds the log short, and does not
   * wait.
   */
  async #betweenChunks(): Promise<void> {
    if (this.#log && this.#log.pages() >= SETTLE_PAGES) await this.#log.settle();
    await this.#letOthersIn();
  }

  async create(s: SessionRecord, options: CreateOptions = {}): Promise<void> {
    const { notAfter } = options;
    if (notAfter !== undefined && this.#dialect === 'postgres') {
      const result = await sql`insert into sessions
        (id, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, expires_at,
         ip, user_agent)
        select ${s.id}::text, ${s.userId}::integer, ${s.createdAt}::bigint,
          ${s.lastSeenAt}::bigint, ${s.idleExpiresAt}::bigint, ${s.absoluteExpiresAt}::bigint,
          ${expiresAt(s)}::bigint, ${s.ip}::text, ${s.userAgent}::text
        where floor(extract(epoch from clock_timestamp()) * 1000) <= ${Math.floor(notAfter)}`.execute(
        this.#db,
      );
      if (Number(result.numAffectedRows ?? 0) === 0) throw new LateWriteError(s.id, notAfter);
      return;
    }
    if (notAfter !== undefined && Date.now() > notAfter) throw new LateWriteError(s.id, notAfter);
    await this.#db.insertInto('sessions').values(toRow(s)).execute();
  }

  async get(id: string): Promise<SessionRecord | null> {
    const memory = this.#memory;
    if (!memory) return this.#read(id);
    this.#current(memory);
    return memory.cache.load(id, () => this.#read(id), keepRecord);
  }

  /** What the memory of `get` did (undefined without one). */
  memoryStats(): ReadCacheStats | undefined {
    return this.#memory?.cache.stats();
  }

  /** False (and the memory emptied) when another process committed since it was last asked. */
  #current(memory: SqliteMemory): boolean {
    const version = memory.dataVersion();
    if (version === memory.seen) return true;
    memory.seen = version;
    memory.cache.reset();
    return false;
  }

  /**
   * Forgets sessions this store is about to change, and again once it has: a peek between the
   * statement and its promise settling must not answer with the row as it was.
   */
  #forget(ids: Iterable<string>): void {
    if (this.#memory) for (const id of ids) this.#memory.cache.forget(id);
  }

  async #read(id: string): Promise<SessionRecord | null> {
    const row = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<boolean> {
    // An UPDATE of a deleted row changes nothing, so a touch cannot revive a session.
    this.#forget([id]);
    const result = await this.#db
      .updateTable('sessions')
      .set((eb) => ({
        last_seen_at: lastSeenAt,
        idle_expires_at: idleExpiresAt,
        expires_at: this.#least(eb, idleExpiresAt),
      }))
      .where('id', '=', id)
      .executeTakeFirst();
    this.#forget([id]);
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<DeleteOutcome> {
    this.#forget([id]);
    const result = await this.#db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
    this.#forget([id]);
    return Number(result.numDeletedRows) > 0 ? 'deleted' : 'not_found';
  }

  async deleteMany(ids: readonly string[]): Promise<Map<string, DeleteOutcome>> {
    // Deduplicated first: an id repeated in a later chunk would find nothing there and
    // overwrite its 'deleted' with 'not_found'.
    const unique = [...new Set(ids)];
    const outcomes = new Map<string, DeleteOutcome>();
    for (let i = 0; i < unique.length; i += ID_CHUNK) {
      const chunk = unique.slice(i, i + ID_CHUNK);
      this.#forget(chunk);
      const deleted = await this.#db
        .deleteFrom('sessions')
        .where('id', 'in', chunk)
        .returning('id')
        .execute();
      const gone = new Set(deleted.map((r) => r.id));
      this.#forget(chunk);
      for (const id of chunk) outcomes.set(id, gone.has(id) ? 'deleted' : 'not_found');
    }
    return outcomes;
  }

  /** One DELETE … RETURNING per chunk: the rows come back as they were deleted. */
  async takeMany(ids: readonly string[]): Promise<Map<string, Taken>> {
    return this.#take(ids, null);
  }

  async userSessionIds(userId: number): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** takeMany whose DELETE also names the owner, so another user's row is never taken. */
  async takeOfUser(userId: number, ids: readonly string[]): Promise<Map<string, Taken>> {
    return this.#take(ids, userId);
  }

  async #take(ids: readonly string[], owner: number | null): Promise<Map<string, Taken>> {
    const unique = [...new Set(ids)];
    const outcomes = new Map<string, Taken>();
    for (let i = 0; i < unique.length; i += ID_CHUNK) {
      await this.#betweenChunks();
      const chunk = unique.slice(i, i + ID_CHUNK);
      this.#forget(chunk);
      let query = this.#db.deleteFrom('sessions').where('id', 'in', chunk);
      if (owner !== null) query = query.where('user_id', '=', owner);
      const rows = await query.returningAll().execute();
      this.#forget(chunk);
      const gone = new Map(rows.map((r) => [r.id, toRecord(r) ?? ('unreadable' as const)]));
      for (const id of chunk) outcomes.set(id, gone.get(id) ?? 'not_found');
    }
    return outcomes;
  }

  /**
   * One DELETE … RETURNING of the soonest due rows. Rows that cannot be read go with them (what
   * removeUnreadable would do), and count towards `limit`. With `notAfter`: SQLite runs in this
   * process, where a statement cannot arrive late, so the bound is checked here; PostgreSQL
   * takes nothing once its own clock is past it (a statement held up in a stalled connection,
   * its caller gone).
   */
  async takeExpired(
    before: number,
    limit: number,
    options: TakeOptions = {},
  ): Promise<ExpiredBatch> {
    if (limit <= 0) return { sessions: [], done: true };
    await this.#betweenChunks();
    const { notAfter } = options;
    if (notAfter !== undefined && this.#dialect === 'sqlite' && Date.now() > notAfter) {
      throw new LateTakeError(notAfter);
    }
    let taking = this.#db
      .deleteFrom('sessions')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('sessions')
          .select('id')
          .where('expires_at', '<=', before)
          .orderBy('expires_at')
          .limit(limit),
      );
    if (notAfter !== undefined && this.#dialect === 'postgres') {
      taking = taking.where(
        sql<boolean>`floor(extract(epoch from clock_timestamp()) * 1000) <= ${Math.floor(notAfter)}`,
      );
    }
    const rows = await taking.returningAll().execute();
    this.#forget(rows.map((r) => r.id));
    rows.sort((a, b) => Number(a.expires_at) - Number(b.expires_at));
    const batch = { sessions: readable(rows), done: rows.length < limit };
    options.taken?.(batch);
    return batch;
  }

  async listByUser(userId: number): Promise<SessionRecord[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return readable(rows);
  }

  /**
   * A page and its count, each through the index that suits it (see #plan). The page is LEFT
   * JOINed to its users, so that rows whose user is gone, like rows that cannot be read, are
   * counted in `total` and left out of the page as `skipped` (as the Redis store does with
   * entries it cannot read) rather than vanishing; removeUnreadable removes them.
   */
  async list(query: SessionQuery): Promise<SessionPage> {
    const plan = await this.#plan(query, query.countUpTo !== undefined);
    if (plan === null) return { items: [], total: 0, skipped: 0 };

    const counted = await countMatches(this.#db, plan.counting, query.countUpTo);
    if (query.limit <= 0) return { items: [], ...counted, skipped: 0 };
    // Few matches (a user's, or live ones when nearly all have expired): read them through the
    // index that counted them and sort them, rather than walk the listing index past them all.
    const few = !counted.totalCapped && counted.total <= SORT_LIMIT;
    // The unary plus keeps the walked index from being chosen for the order of a few matches.
    const expired = query.status === 'expired';
    const column = expired ? 'sessions.expires_at' : 'sessions.created_at';
    const key = few ? sql<number>`+${sql.ref(column)}` : sql.ref(column);
    const rows = await (few ? plan.counting : plan.walking)
      .leftJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .select('users.id as known_user')
      .orderBy(key, 'desc')
      .orderBy('sessions.id', expired ? 'desc' : 'asc')
      .limit(query.limit)
      .offset(query.offset)
      .execute();
    const items = readable(rows.filter((r) => r.known_user !== null));
    return { items, ...counted, skipped: rows.length - items.length };
  }

  async listIds(query: Filters): Promise<string[]> {
    // Every match of a revoke-matching: on SQLite in the server, read on the reader thread
    // (266,000 ids held every request for 1.2 s in this one).
    const plan = await this.#plan(query, false, this.#reads);
    if (plan === null) return [];
    // Every match, so no walk: the planner picks its own way.
    const expired = query.status === 'expired';
    const rows = await plan.counting
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select('sessions.id')
      .orderBy(expired ? 'sessions.expires_at' : 'sessions.created_at', 'desc')
      .orderBy('sessions.id', expired ? 'desc' : 'asc')
      .execute();
    return rows.map((r) => r.id);
  }

  async listExpired(before: number, limit: number): Promise<SessionRecord[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('expires_at', '<=', before)
      .orderBy('expires_at')
      .limit(limit)
      .execute();
    return readable(rows);
  }

  /**
   * One scan of the deadline index. Calls for the same `now` while one runs share it: the
   * statistics page asks for counts and for countsByRole (which counts too) at once, and on a
   * large table each scan blocks SQLite's process for tens of milliseconds.
   */
  counts(now: number): Promise<{ active: number; expired: number }> {
    const running = this.#countsRunning.get(now);
    if (running) return running;
    const counting = this.#countAt(now).finally(() => this.#countsRunning.delete(now));
    this.#countsRunning.set(now, counting);
    return counting;
  }

  async #countAt(now: number): Promise<{ active: number; expired: number }> {
    const row = await this.#reads
      .selectFrom('sessions')
      .select((eb) => [
        eb.fn.countAll<number>().as('total'),
        eb.fn.count<number>(eb.case().when('expires_at', '>', now).then(1).end()).as('active'),
      ])
      .executeTakeFirstOrThrow();
    const active = Number(row.active);
    return { active, expired: Number(row.total) - active };
  }

  async ping(): Promise<number> {
    const start = performance.now();
    await sql`select 1`.execute(this.#db);
    return performance.now() - start;
  }

  async time(): Promise<number> {
    // SQLite runs in this process, so its clock is this machine's; PostgreSQL answers
    // with the server's, shared by every instance.
    if (this.#dialect === 'sqlite') return Date.now();
    const { rows } = await sql<{
      ms: string;
    }>`select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as ms`.execute(this.#db);
    return Number(rows[0].ms);
  }

  async sample(limit: number): Promise<SessionRecord[]> {
    if (limit <= 0) return [];
    const rows = await this.#reads
      .selectFrom('sessions')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(limit)
      .execute();
    return readable(rows);
  }

  /**
   * Counts the admin and superuser roles through their users' index entries, and the user
   * role as the rest, so the cost follows the (few) privileged users' sessions rather than
   * the whole table. Sessions whose user is gone count as the user role's, as on Redis.
   */
  async countsByRole(now: number): Promise<Record<Role, SessionTally>> {
    const privileged = ROLES.filter((r) => r !== 'user');
    const [all, rows] = await Promise.all([
      this.counts(now),
      this.#reads
        .selectFrom('users')
        .innerJoin('sessions', 'sessions.user_id', 'users.id')
        .where('users.role', 'in', privileged)
        .select((eb) => [
          'users.role',
          eb.fn.countAll<number>().as('total'),
          eb.fn
            .count<number>(eb.case().when('sessions.expires_at', '>', now).then(1).end())
            .as('active'),
        ])
        .groupBy('users.role')
        .execute(),
    ]);
    const out = Object.fromEntries(ROLES.map((r) => [r, { total: 0, active: 0 }])) as Record<
      Role,
      SessionTally
    >;
    for (const row of rows)
      out[row.role] = { total: Number(row.total), active: Number(row.active) };
    const taken = privileged.map((r) => out[r]);
    out.user = {
      total: all.active + all.expired - taken.reduce((n, t) => n + t.total, 0),
      active: all.active - taken.reduce((n, t) => n + t.active, 0),
    };
    return out;
  }

  async topUsers(limit: number): Promise<TopUsers> {
    if (limit <= 0) return { users: [], sampledFrom: null };
    // Reads only the (user_id, created_at) index, never the rows.
    const rows = await this.#reads
      .selectFrom('sessions')
      .select((eb) => ['user_id', eb.fn.countAll<number>().as('n')])
      .groupBy('user_id')
      .orderBy('n', 'desc')
      .orderBy('user_id')
      .limit(limit)
      .execute();
    return {
      users: rows.map((r) => ({ userId: r.user_id, sessions: Number(r.n) })),
      sampledFrom: null,
    };
  }

  /** Range counts on the expiry index, one per bucket, and an anti-join for orphans. */
  async healthReport(now: number, edgesMs: readonly number[]): Promise<HealthReport> {
    const bounds = [now, ...edgesMs.map((e) => now + e)];
    const row = await this.#reads
      .selectNoFrom((eb) => {
        const count = () => eb.selectFrom('sessions').select(eb.fn.countAll<number>().as('n'));
        return [
          count().as('total'),
          count().where('expires_at', '<=', now).as('expired'),
          eb
            .selectFrom('sessions')
            .select((inner) => inner.fn.min<number>('expires_at').as('m'))
            .as('oldest'),
          this.#orphans().select(eb.fn.countAll<number>().as('n')).as('orphans'),
          ...bounds.map((lower, i) => {
            const upper = bounds[i + 1];
            const q = count().where('expires_at', '>', lower);
            return (upper === undefined ? q : q.where('expires_at', '<=', upper)).as(`b${i}`);
          }),
        ];
      })
      .executeTakeFirstOrThrow();

    const counts = row as unknown as Record<string, number | string | null>;
    const expired = Number(counts.expired);
    return {
      remaining: bounds.map((_, i) => Number(counts[`b${i}`])),
      expired,
      oldestExpiredAt: expired > 0 && counts.oldest !== null ? Number(counts.oldest) : null,
      dangling: { orphan_sessions: Number(counts.orphans) },
      checked: Number(counts.total),
      complete: true,
    };
  }

  /** Deletes sessions whose user no longer exists (nothing else here can point to nothing). */
  async repairIndexes(): Promise<Record<string, number>> {
    const result = await this.#db.deleteFrom('sessions').where(orphaned).executeTakeFirst();
    this.#memory?.cache.reset();
    return { orphan_sessions: Number(result.numDeletedRows) };
  }

  /**
   * Deletes rows whose user is gone, and rows holding values no session can have. Every
   * cleanup ends with it, so it reads every row: on SQLite, in this thread, a range of rowids
   * at a time with requests let in between (one statement over a million sessions held every
   * request for about 600 ms).
   */
  async removeUnreadable(): Promise<number> {
    if (this.#dialect === 'postgres') {
      const orphans = await this.repairIndexes();
      const result = await this.#db
        .deleteFrom('sessions')
        .where((eb) =>
          // user_id is a PostgreSQL integer, which always fits.
          eb.or(
            NUMBER_COLUMNS.filter((c) => c !== 'user_id').map((c) =>
              eb(sql`abs(${sql.ref(c)})`, '>', MAX_SAFE),
            ),
          ),
        )
        .executeTakeFirst();
      return orphans.orphan_sessions + Number(result.numDeletedRows);
    }
    const rowid = sql<number>`rowid`;
    const { top } = await this.#db
      .selectFrom('sessions')
      .select(sql<number | null>`max(rowid)`.as('top'))
      .executeTakeFirstOrThrow();
    let removed = 0;
    for (let low = 0; top !== null && low <= top; low += CHECK_CHUNK) {
      if (low > 0) await this.#letOthersIn();
      const result = await this.#db
        .deleteFrom('sessions')
        .where(rowid, '>=', low)
        .where(rowid, '<', low + CHECK_CHUNK)
        .where((eb) =>
          eb.or([
            orphaned(eb),
            ...NUMBER_COLUMNS.map((c) => eb(sql`typeof(${sql.ref(c)})`, '!=', 'integer')),
            ...(['id', 'ip', 'user_agent'] as const).map((c) =>
              eb(sql`typeof(${sql.ref(c)})`, '!=', 'text'),
            ),
          ]),
        )
        .executeTakeFirst();
      removed += Number(result.numDeletedRows);
    }
    this.#memory?.cache.reset();
    return removed;
  }

  async info(): Promise<Record<string, string>> {
    // The SQL store lives in the app's database, whose figures the console reads directly.
    return {};
  }

  async close(): Promise<void> {
    // The database belongs to the app, which closes it.
  }

  /** Sessions whose user no longer exists. */
  #orphans() {
    return this.#reads.selectFrom('sessions').where(orphaned);
  }

  /** `least(absolute_expires_at, x)`; SQLite spells it min(). */
  #least(eb: ExpressionBuilder<DB, 'sessions'>, idleExpiresAt: number) {
    const fn = this.#dialect === 'postgres' ? 'least' : 'min';
    return eb.fn<number>(fn, [eb.ref('absolute_expires_at'), eb.val(idleExpiresAt)]);
  }

  /**
   * The sessions a query matches, as queries on `sessions` alone, or null when it can match
   * nothing. A user filter is resolved first: to the ids themselves when few users match; when
   * many do, to one array parameter (email) or to a subquery on the role index (role alone),
   * either read once per statement; on SQLite, for a `capped` count, when an email matches more
   * than #broadAt users, to a test of each session's owner as it is met. Two shapes:
   * - `counting` leaves every index open: the deadline index for a status alone, the user
   *   index (which holds the deadline) once users are named, so a capped count stops early;
   * - `walking` switches off every index but the listing one (the unary plus), so a page
   *   walks it newest first, tests each entry on the entry itself, and stops after a page.
   * list() pages through `counting` instead, sorting, when the count found few matches.
   *
   * Status expired walks the deadline index instead (from `now` down, so every entry it meets
   * has expired), as expired sessions are listed most recently expired first.
   *
   * LIMITATION: a walk costs the entries it passes, not the matches: a deep page (a large
   * offset) every entry before it, and a filter matching a few more than SORT_LIMIT sessions
   * most of the index.
   */
  async #plan(q: Filters, capped = false, db = this.#db): Promise<Plan | null> {
    if (q.userIds?.length === 0) return null;
    const plus = (column: 'user_id' | 'expires_at' | 'created_at') =>
      sql<number>`+${sql.ref(`sessions.${column}`)}`;
    let counting = db.selectFrom('sessions');
    let walking = counting;

    if (q.userIds) {
      counting = counting.where('sessions.user_id', 'in', [...q.userIds]);
      walking = walking.where(plus('user_id'), 'in', [...q.userIds]);
    }
    if (q.user?.email || q.user?.role) {
      const { users, atLeast } = await this.#users(q.user);
      // An email filter's ids are read once and kept (on SQLite, up to broadAt of them). A
      // role alone is an index range, cheap to read again as a subquery when it is large.
      // Only when the count stops at a cap: an exact count tests every session's owner that
      // way (115 ms at a million, against 33 ms through the set of ids).
      const broadAt =
        capped && q.user.email && this.#dialect === 'sqlite' ? await this.#broadAt() : null;
      const broad = broadAt !== null && atLeast > broadAt;
      const limit = q.user.email ? broadAt : this.#userSetLimit;
      const found = broad
        ? []
        : await users
            .select('users.id')
            .$if(limit !== null, (qb) => qb.limit(limit! + 1))
            .execute();
      if (!broad && found.length === 0) return null;
      const ids = found.map((u) => u.id);
      if (broad || (broadAt !== null && ids.length > broadAt)) {
        // So many users match that a walk meets their sessions soon: each entry's owner is
        // tested as it is met (a primary-key read), and no set of every match is built.
        const owned = (ref: Expression<number>) =>
          sql<SqlBool>`exists ${users.select(sql.lit(1).as('one')).where('users.id', '=', ref)}`;
        counting = counting.where(owned(sql.ref<number>('sessions.user_id')));
        walking = walking.where(owned(plus('user_id')));
      } else {
        const few = ids.length <= this.#userSetLimit;
        const matching = few
          ? ids
          : q.user.email
            ? idSet(this.#dialect, ids)
            : users.select('users.id');
        counting = counting.where('sessions.user_id', 'in', matching);
        walking = walking.where(plus('user_id'), 'in', matching);
      }
    }
    // With users named, the deadline is tested on the user index's entries, not searched.
    const named = q.userIds !== undefined || q.user?.email || q.user?.role;
    const deadline = named ? plus('expires_at') : sql.ref<number>('sessions.expires_at');
    // Expired sessions are listed most recently expired first, so their walk runs down the
    // deadline index from `now` (every entry it meets has expired), not the listing index.
    const walksDeadlines = q.status === 'expired';
    const status = (query: SelectQueryBuilder<DB, 'sessions', object>, ref: Expression<number>) => {
      if (q.status === 'active') return query.where(ref, '>', q.now);
      if (q.status === 'expired') return query.where(ref, '<=', q.now);
      return query;
    };
    const created = (
      query: SelectQueryBuilder<DB, 'sessions', object>,
      ref: Expression<number>,
    ) => {
      let out = query;
      if (q.createdFrom !== undefined) out = out.where(ref, '>=', q.createdFrom);
      if (q.createdTo !== undefined) out = out.where(ref, '<', q.createdTo);
      return out;
    };
    const createdAt = sql.ref<number>('sessions.created_at');
    return {
      // Expired alone: counted along the deadline index too (the unary plus keeps the listing
      // index, which would pass every live session first, from being chosen for created_at).
      counting: created(
        status(counting, deadline),
        walksDeadlines && !named ? plus('created_at') : createdAt,
      ),
      walking: walksDeadlines
        ? created(status(walking, sql.ref<number>('sessions.expires_at')), plus('created_at'))
        : created(status(walking, plus('expires_at')), createdAt),
    };
  }

  /**
   * On SQLite, how many users an email filter may match and still be read as a set of ids:
   * BROAD_USERS (`broadUsers`), or 2% of the users when that is more. Past it, reading every
   * matching address and building the set twice (count and page) cost 17 ms for 10% of
   * 100,000 users, where testing each walked session's owner cost 1 ms. The walk needs about
   * 50 / share entries for a page and 1,000 / share for the capped count, so a floor on the
   * share bounds it.
   */
  async #broadAt(): Promise<number> {
    const row = await sql<{ n: number | null }>`select sum(n) as n from user_totals
      where name like 'role:%'`.execute(this.#db);
    return Math.max(this.#broadUsers, Math.floor(Number(row.rows[0]?.n ?? 0) / 50));
  }

  /**
   * The users a filter matches (the email test: users/email-filter.ts), and how many the email
   * test alone is already known to match at least (0 when nothing is known).
   */
  async #users(filter: UserFilter) {
    let users = this.#db.selectFrom('users');
    if (filter.role) users = users.where('users.role', '=', filter.role);
    if (!filter.email) return { users, atLeast: 0 };
    const match = await emailMatch(this.#db, this.#dialect, filter.email);
    users = users.where(match.condition);
    return { users, atLeast: filter.role ? 0 : match.atLeast };
  }
}
