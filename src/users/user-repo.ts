/**
 * @module users/user-repo
 * Queries on the users table. Email comparisons use the stored normal form, and the
 * email filter is a plain substring test, never a LIKE pattern.
 */
import type { ExpressionBuilder, Kysely, SelectQueryBuilder } from 'kysely';
import type { Dialect } from '../db/database.js';
import { idSet } from '../db/id-set.js';
import type { DB, Role, UserRow, UserStatus } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { recordSignInActivity } from './activity.js';
import { normalizeEmail } from './email.js';
import { emailCondition } from './email-filter.js';
import type { UserVersions } from './user-versions.js';

// How long a cached user row may serve validation at most: the bound on staleness when a
// change's counter bump was lost (Redis unreachable at that moment), never the usual path.
export const USER_CACHE_TTL_MS = 5_000;
// Rows kept per process; past it the oldest entry goes (a Map iterates in insertion order).
const USER_CACHE_MAX = 10_000;

interface CachedUser {
  row: UserRow | undefined;
  version: string;
  at: number;
}

export interface UserQuery {
  /** Part of the email as typed; normalized here. */
  email?: string;
  role?: Role;
  status?: UserStatus;
  createdFrom?: number;
  createdTo?: number;
  offset: number;
  limit: number;
}

export type PublicUser = Omit<UserRow, 'password_hash' | 'email_normalized'>;

export class UserRepo {
  readonly #db: Kysely<DB>;
  readonly #dialect: Dialect;
  #versions: UserVersions | undefined;
  readonly #cache = new Map<number, CachedUser>();

  constructor(db: Kysely<DB>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  /**
   * Shares a change counter with every instance (users/user-versions.ts): from then on the
   * repo raises it after each status, role or password change, and `findForSession` may answer
   * from memory while the counter stands still. Without it every validation reads the table.
   */
  useVersions(versions: UserVersions): void {
    this.#versions = versions;
  }

  /** The shared counter's value, read beside the session (null: no counter, no cache). */
  async validationVersion(): Promise<string | null> {
    return this.#versions ? this.#versions.read() : null;
  }

  /** The counter without waiting when it is known to be current (undefined: ask `validationVersion`). */
  peekValidationVersion(): string | null | undefined {
    if (!this.#versions) return null;
    return this.#versions.peek?.();
  }

  /**
   * The user a session belongs to, for validation: from memory when the row was read under the
   * same counter value (and not long ago), else from the table. The counter must have been read
   * before this call: a change that commits after the read raises it, so the next request
   * reloads whatever this one cached.
   */
  async findForSession(id: number, version: string | null): Promise<UserRow | undefined> {
    if (version === null) return this.findById(id);
    const known = this.knownForSession(id, version);
    if (known !== undefined) return known ?? undefined;
    const now = performance.now();
    const row = await this.findById(id);
    this.#cache.delete(id);
    if (this.#cache.size >= USER_CACHE_MAX) {
      this.#cache.delete(this.#cache.keys().next().value as number);
    }
    this.#cache.set(id, { row, version, at: now });
    return row;
  }

  /**
   * findForSession's answer without waiting, when it would come from memory: the row, null for
   * a user known not to exist, undefined when the table must be read.
   */
  knownForSession(id: number, version: string): UserRow | null | undefined {
    const hit = this.#cache.get(id);
    if (!hit || hit.version !== version || performance.now() - hit.at >= USER_CACHE_TTL_MS) {
      return undefined;
    }
    return hit.row ?? null;
  }

  /**
   * After a change validation depends on: this process forgets its rows at once, and the
   * shared counter tells the other instances. LIMITATION: when Redis cannot take the bump, the
   * other instances may serve the old row for up to USER_CACHE_TTL_MS (5 s); the change itself
   * stands, and sessions a disable ends are deleted in the store as before.
   */
  async #changed(): Promise<void> {
    this.#cache.clear();
    try {
      await this.#versions?.bump();
    } catch {
      // The write is committed; failing it now would tell the admin it did not happen.
    }
  }

  /** Inserts a user; throws WARDEN_USER_EMAIL_TAKEN when the normalized email exists. */
  async create(input: {
    email: string;
    passwordHash: string;
    role: Role;
    status: UserStatus;
    now: number;
    approvedBy?: number | null;
  }): Promise<UserRow> {
    const approved = input.status === 'approved';
    const rejected = input.status === 'rejected';
    try {
      return await this.#db
        .insertInto('users')
        .values({
          email: input.email.trim(),
          email_normalized: normalizeEmail(input.email),
          password_hash: input.passwordHash,
          role: input.role,
          status: input.status,
          created_at: input.now,
          approved_at: approved ? input.now : null,
          approved_by: approved ? (input.approvedBy ?? null) : null,
          rejected_at: rejected ? input.now : null,
          rejected_by: null,
          decided_at: input.status === 'pending' ? null : input.now,
          last_login_at: null,
          updated_at: input.now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (err) {
      if (isUniqueViolation(err)) throw new WardenError('WARDEN_USER_EMAIL_TAKEN');
      throw err;
    }
  }

  async findById(id: number): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async findByEmail(email: string): Promise<UserRow | undefined> {
    return this.#db
      .selectFrom('users')
      .selectAll()
      .where('email_normalized', '=', normalizeEmail(email))
      .executeTakeFirst();
  }

  /** Users by id, for decorating a page of sessions. */
  async findMany(ids: readonly number[]): Promise<Map<number, UserRow>> {
    const unique = [...new Set(ids)];
    const out = new Map<number, UserRow>();
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.#db
        .selectFrom('users')
        .selectAll()
        .where('id', 'in', unique.slice(i, i + 500))
        .execute();
      for (const row of rows) out.set(row.id, row);
    }
    return out;
  }

  async list(query: UserQuery): Promise<{ items: UserRow[]; total: number }> {
    const base = await this.#filtered(query);
    const [count, items] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(query.limit)
        .offset(query.offset)
        .execute(),
    ]);
    return { items, total: Number(count.n) };
  }

  /**
   * Ids of users matching email (already normalized) and role; answers the Redis store.
   * `among` narrows to those ids (a page's owners: a primary-key lookup, not a scan), and
   * `limit` stops the scan early, lowest ids first (with `after`, one keyset page), so a broad
   * filter costs what its page needs.
   */
  async idsMatching(
    filter: { email?: string; role?: Role },
    // The shape of sessions/session-store ResolveOptions.
    options: { among?: readonly number[]; after?: number; limit?: number } = {},
  ): Promise<number[]> {
    const among = options.among === undefined ? undefined : [...new Set(options.among)];
    if (among?.length === 0) return [];
    let query = (await this.#filtered({ email: filter.email, role: filter.role })).select('id');
    if (among !== undefined) query = query.where('id', 'in', idSet(this.#dialect, among));
    if (options.after !== undefined) query = query.where('id', '>', options.after);
    if (options.limit !== undefined) query = query.orderBy('id').limit(options.limit);
    return (await query.execute()).map((r) => r.id);
  }

  async countAll(): Promise<number> {
    const row = await this.#db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async countSuperusers(): Promise<number> {
    const row = await this.#db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'superuser')
      .where('status', '=', 'approved')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async setStatus(id: number, status: UserStatus, actorId: number | null, now: number) {
    const row = await this.#db
      .updateTable('users')
      .set((eb) => ({ status, updated_at: now, ...decisionColumns(eb, status, actorId, now) }))
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    await this.#changed();
    return row;
  }

  /**
   * Approves or rejects the users among `ids` who are still pending, in one conditional
   * update per chunk, so two superusers deciding at once never both count the same user.
   * Returns the ids that changed.
   */
  async decidePending(
    ids: readonly number[],
    status: 'approved' | 'rejected',
    actorId: number,
    now: number,
  ): Promise<Set<number>> {
    const changed = new Set<number>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.#db
        .updateTable('users')
        .set((eb) => ({ status, updated_at: now, ...decisionColumns(eb, status, actorId, now) }))
        .where('id', 'in', unique.slice(i, i + 500))
        .where('status', '=', 'pending')
        .returning('id')
        .execute();
      for (const r of rows) changed.add(r.id);
    }
    if (changed.size > 0) await this.#changed();
    return changed;
  }

  async setRole(id: number, role: Role, now: number) {
    const row = await this.#db
      .updateTable('users')
      .set({ role, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    await this.#changed();
    return row;
  }

  async setPassword(id: number, passwordHash: string, now: number) {
    await this.#db
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: now })
      .where('id', '=', id)
      .execute();
    await this.#changed();
  }

  async recordLogin(id: number, now: number) {
    await this.#db.updateTable('users').set({ last_login_at: now }).where('id', '=', id).execute();
    // Every sign-in passes here (SessionService.signIn): the analytics page's aggregates.
    await recordSignInActivity(this.#db, this.#dialect, id, now);
  }

  async #filtered(q: Partial<UserQuery>): Promise<SelectQueryBuilder<DB, 'users', object>> {
    let query = this.#db.selectFrom('users') as SelectQueryBuilder<DB, 'users', object>;
    if (q.email) {
      query = query.where(await emailCondition(this.#db, this.#dialect, normalizeEmail(q.email)));
    }
    if (q.role) query = query.where('role', '=', q.role);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.createdFrom !== undefined) query = query.where('created_at', '>=', q.createdFrom);
    if (q.createdTo !== undefined) query = query.where('created_at', '<', q.createdTo);
    return query;
  }
}

/**
 * The columns a status change sets besides the status. The first approval and the moment the
 * account left `pending` are kept: enabling a disabled account is not a new approval. (The
 * right-hand sides read the row as it was before the update, in SQLite and PostgreSQL alike.)
 */
function decisionColumns(
  eb: ExpressionBuilder<DB, 'users'>,
  status: UserStatus,
  actorId: number | null,
  now: number,
) {
  const decided = { decided_at: eb.fn.coalesce('decided_at', eb.val(now)) };
  if (status === 'approved') {
    return {
      ...decided,
      approved_at: eb.fn.coalesce('approved_at', eb.val(now)),
      approved_by: eb
        .case()
        .when('approved_at', 'is', null)
        .then(eb.val(actorId))
        .else(eb.ref('approved_by'))
        .end(),
    };
  }
  if (status === 'rejected') return { ...decided, rejected_at: now, rejected_by: actorId };
  if (status === 'disabled') return decided;
  return {};
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // PostgreSQL: 23505; better-sqlite3: SQLITE_CONSTRAINT_UNIQUE.
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** A user as shown to the user themself or to an admin: no hash, no normal form. */
export function publicUser(row: UserRow): PublicUser {
  const { password_hash: _h, email_normalized: _n, ...rest } = row;
  return rest;
}
