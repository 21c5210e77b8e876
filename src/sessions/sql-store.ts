/**
 * @module sessions/sql-store
 * Sessions in a `sessions` table beside the users, so user filters are one indexed join.
 */
import { type ExpressionBuilder, type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import { type DB, ROLES, type Role, type SessionRow } from '../db/schema.js';
import {
  type DeleteOutcome,
  expiresAt,
  type HealthReport,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionStore,
  type SessionTally,
  type TopUsers,
} from './session-store.js';

// Keeps every statement's parameter count well under SQLite's and PostgreSQL's limits.
const ID_CHUNK = 500;

function toRecord(row: SessionRow): SessionRecord {
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

type Filters = Omit<SessionQuery, 'offset' | 'limit'>;

export class SqlSessionStore implements SessionStore {
  readonly kind = 'sql';
  readonly #db: Kysely<DB>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<DB>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  async create(s: SessionRecord): Promise<void> {
    await this.#db
      .insertInto('sessions')
      .values({
        id: s.id,
        user_id: s.userId,
        created_at: s.createdAt,
        last_seen_at: s.lastSeenAt,
        idle_expires_at: s.idleExpiresAt,
        absolute_expires_at: s.absoluteExpiresAt,
        expires_at: expiresAt(s),
        ip: s.ip,
        user_agent: s.userAgent,
      })
      .execute();
  }

  async get(id: string): Promise<SessionRecord | null> {
    const row = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<boolean> {
    // An UPDATE of a deleted row changes nothing, so a touch cannot revive a session.
    const result = await this.#db
      .updateTable('sessions')
      .set((eb) => ({
        last_seen_at: lastSeenAt,
        idle_expires_at: idleExpiresAt,
        expires_at: this.#least(eb, idleExpiresAt),
      }))
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<DeleteOutcome> {
    const result = await this.#db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0 ? 'deleted' : 'not_found';
  }

  async deleteMany(ids: readonly string[]): Promise<Map<string, DeleteOutcome>> {
    // Deduplicated first: an id repeated in a later chunk would find nothing there and
    // overwrite its 'deleted' with 'not_found'.
    const unique = [...new Set(ids)];
    const outcomes = new Map<string, DeleteOutcome>();
    for (let i = 0; i < unique.length; i += ID_CHUNK) {
      const chunk = unique.slice(i, i + ID_CHUNK);
      const deleted = await this.#db
        .deleteFrom('sessions')
        .where('id', 'in', chunk)
        .returning('id')
        .execute();
      const gone = new Set(deleted.map((r) => r.id));
      for (const id of chunk) outcomes.set(id, gone.has(id) ? 'deleted' : 'not_found');
    }
    return outcomes;
  }

  async listByUser(userId: number): Promise<SessionRecord[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return rows.map(toRecord);
  }

  async list(query: SessionQuery): Promise<SessionPage> {
    if (query.userIds?.length === 0) return { items: [], total: 0, skipped: 0 };

    const base = this.#filtered(query);
    const [countRow, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base
        .selectAll('sessions')
        .orderBy('sessions.created_at', 'desc')
        .orderBy('sessions.id')
        .limit(query.limit)
        .offset(query.offset)
        .execute(),
    ]);
    return { items: rows.map(toRecord), total: Number(countRow.n), skipped: 0 };
  }

  async listIds(query: Filters): Promise<string[]> {
    if (query.userIds?.length === 0) return [];
    const rows = await this.#filtered(query)
      .select('sessions.id')
      .orderBy('sessions.created_at', 'desc')
      .orderBy('sessions.id')
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
    return rows.map(toRecord);
  }

  async counts(now: number): Promise<{ active: number; expired: number }> {
    const row = await this.#db
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
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toRecord);
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
      this.#db
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
    const rows = await this.#db
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
    const row = await this.#db
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
    const result = await this.#db
      .deleteFrom('sessions')
      .where('user_id', 'not in', (eb) => eb.selectFrom('users').select('users.id'))
      .executeTakeFirst();
    return { orphan_sessions: Number(result.numDeletedRows) };
  }

  async info(): Promise<Record<string, string>> {
    // The SQL store lives in the app's database, whose figures the console reads directly.
    return {};
  }

  async close(): Promise<void> {
    // The database belongs to the app, which closes it.
  }

  /** Sessions whose user no longer exists (NOT IN: one pass over the user index). */
  #orphans() {
    return this.#db
      .selectFrom('sessions')
      .where('user_id', 'not in', (eb) => eb.selectFrom('users').select('users.id'));
  }

  /** `least(absolute_expires_at, x)`; SQLite spells it min(). */
  #least(eb: ExpressionBuilder<DB, 'sessions'>, idleExpiresAt: number) {
    const fn = this.#dialect === 'postgres' ? 'least' : 'min';
    return eb.fn<number>(fn, [eb.ref('absolute_expires_at'), eb.val(idleExpiresAt)]);
  }

  #filtered(q: Filters): SelectQueryBuilder<DB, 'sessions' | 'users', object> {
    let query = this.#db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id') as SelectQueryBuilder<
      DB,
      'sessions' | 'users',
      object
    >;
    if (q.userIds) query = query.where('sessions.user_id', 'in', [...q.userIds]);
    if (q.user?.role) query = query.where('users.role', '=', q.user.role);
    if (q.user?.email) {
      // A substring test, not LIKE: `%` and `_` typed in the filter are plain characters.
      const fn = this.#dialect === 'postgres' ? 'strpos' : 'instr';
      const email = q.user.email;
      query = query.where((eb) =>
        eb(eb.fn(fn, [eb.ref('users.email_normalized'), eb.val(email)]), '>', 0),
      );
    }
    if (q.status === 'active') query = query.where('sessions.expires_at', '>', q.now);
    if (q.status === 'expired') query = query.where('sessions.expires_at', '<=', q.now);
    if (q.createdFrom !== undefined)
      query = query.where('sessions.created_at', '>=', q.createdFrom);
    if (q.createdTo !== undefined) query = query.where('sessions.created_at', '<', q.createdTo);
    return query;
  }
}
