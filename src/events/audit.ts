/**
 * @module events/audit
 * The audit log: one row per admin action, refused attempts included, and one log line for
 * it. The application has no path that updates or deletes a row: this class only appends,
 * lists and verifies.
 *
 * Rows form a hash chain (migration 0003): each row stores the hash of the row before it
 * (`prev_hash`) and its own `hash`, the SHA-256 of a canonical serialization of its fields and
 * `prev_hash`. Changing, removing or reordering a row in the database breaks the chain at that
 * row, and `warden audit verify` names it.
 *
 * Appends are serialized so that two writers never chain onto the same predecessor: on
 * PostgreSQL by a transaction-scoped advisory lock taken before the last hash is read (every
 * instance takes the same lock), on SQLite by an IMMEDIATE transaction, which holds the
 * database's write lock from its first statement (other processes wait on busy_timeout).
 *
 * LIMITATION: a chain proves the rows agree with each other, not that the newest ones are all
 * there. Someone who can write to the database can drop the latest rows, or rewrite a row and
 * recompute every hash after it, and the chain still verifies. `warden audit verify` prints the
 * head hash; keeping a copy of it elsewhere (a ticket, another system's log) turns both into
 * detectable changes.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger as Logger } from 'fastify';
import { type Kysely, PostgresAdapter, type SelectQueryBuilder, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { AuditLogTable, AuditRow, DB } from '../db/schema.js';
import { logAdminAction } from './log-lines.js';

export interface Actor {
  id: number | null;
  email: string | null;
  ip: string | null;
}

export interface AuditEntry {
  action: string;
  target?: string | null;
  outcome: AuditLogTable['outcome'];
  /** Counts, ids and reasons; never a token. */
  details?: Record<string, unknown>;
  durationMs?: number;
}

/** The `prev_hash` of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

// Any fixed number works, as long as every instance uses the same one ("WARD").
const ADVISORY_LOCK_KEY = 0x57415244;
// Appends tried when another writer's row took the place (see #append): one per writer queued
// at once, each taking its turn under the lock.
const CHAIN_ATTEMPTS = 20;

/** A row refused because another already follows the same one (migration 0013's index). */
function isChainConflict(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && e.constraint === 'audit_log_chain_idx';
}

/** The fields of a row that its hash covers, as stored. */
export type ChainedFields = Pick<
  AuditRow,
  'at' | 'actor_id' | 'actor_email' | 'action' | 'target' | 'details' | 'ip' | 'outcome'
>;

/**
 * SHA-256 (hex) of a row's fields and the hash before it. The serialization is a JSON array
 * in a fixed order, so it does not depend on key order or on the dialect; the version tag lets
 * a later format coexist with rows hashed under this one.
 */
export function entryHash(row: ChainedFields, prevHash: string): string {
  return createHash('sha256')
    .update(`${canonicalHead(row)},${JSON.stringify(prevHash)}]`)
    .digest('hex');
}

/**
 * The canonical JSON of a row without its last element, the previous hash, and the closing
 * bracket: what PostgreSQL's warden_audit_append (migration 0013) completes and hashes.
 */
function canonicalHead(row: ChainedFields): string {
  const fields = JSON.stringify([
    'warden-audit-v1',
    Number(row.at),
    row.actor_id === null ? null : Number(row.actor_id),
    row.actor_email,
    row.action,
    row.target,
    row.details,
    row.ip,
    row.outcome,
  ]);
  return fields.slice(0, -1);
}

/** What the audit page and its export filter by. Times are epoch ms, `to` exclusive. */
export interface AuditFilter {
  /** Part of the actor's email, matched case-insensitively (NFC lower case expected). */
  actorEmail?: string;
  /** One action name, exactly. */
  action?: string;
  from?: number;
  to?: number;
  /** Only rows with an id at or below this (a snapshot for stable paging). */
  maxId?: number;
}

export type ChainCheck =
  | { intact: true; count: number; head: string }
  | {
      intact: false;
      /** Rows checked before the broken one. */
      count: number;
      broken: { id: number; at: number; action: string; reason: string };
    };

const VERIFY_CHUNK = 1_000;

/** Which dialect a Kysely instance speaks, from its adapter. */
function dialectOf(db: Kysely<DB>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

export class AuditLog {
  readonly #db: Kysely<DB>;
  readonly #clock: () => number;
  readonly #dialect: Dialect;

  constructor(db: Kysely<DB>, clock: () => number, dialect: Dialect = dialectOf(db)) {
    this.#db = db;
    this.#clock = clock;
    this.#dialect = dialect;
  }

  /** Appends the row to the chain, then writes the log line; a failed write is rethrown. */
  async write(actor: Actor, entry: AuditEntry, log: Logger): Promise<void> {
    // As stored: a lone surrogate (a JSON body's "\ud800") is written as U+FFFD, and a hash
    // of the text before that would not match the row read back.
    const text = (v: string | null) => (v === null ? null : v.replace(/\p{Cs}/gu, '\uFFFD'));
    await this.#append({
      at: this.#clock(),
      actor_id: actor.id,
      actor_email: text(actor.email),
      action: text(entry.action)!,
      target: text(entry.target ?? null),
      details: JSON.stringify(entry.details ?? {}),
      ip: text(actor.ip),
      outcome: entry.outcome,
    });
    logAdminAction(log, actor, entry);
  }

  /** A page of rows, newest first, and how many match in all. */
  async list(query: AuditFilter & { offset: number; limit: number }) {
    const q = this.#filtered(query);
    const [count, items] = await Promise.all([
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      q.selectAll().orderBy('id', 'desc').limit(query.limit).offset(query.offset).execute(),
    ]);
    return { items, total: Number(count.n) };
  }

  /**
   * Every matching row, newest first, in batches read by id, so that a large export never sits
   * in memory. Pass `maxId` to leave out rows written after the walk started.
   */
  async *batches(filter: AuditFilter, chunk = 1_000): AsyncGenerator<AuditRow[]> {
    let below: number | undefined;
    for (;;) {
      let q = this.#filtered(filter).selectAll();
      if (below !== undefined) q = q.where('id', '<', below);
      const batch = await q.orderBy('id', 'desc').limit(chunk).execute();
      if (batch.length > 0) yield batch;
      if (batch.length < chunk) return;
      below = batch[batch.length - 1].id;
    }
  }

  /** The newest row's id (0 when empty): the snapshot a listing pages within. */
  async lastId(): Promise<number> {
    const row = await this.#db
      .selectFrom('audit_log')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** The action names in the log, for the filter's menu. */
  async actions(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('audit_log')
      .select('action')
      .distinct()
      .orderBy('action')
      .execute();
    return rows.map((r) => r.action);
  }

  /** Walks the whole chain, oldest first, and reports the first row that breaks it. */
  async verify(onProgress?: (checked: number) => void): Promise<ChainCheck> {
    let expected = GENESIS_HASH;
    let count = 0;
    let after = 0;
    for (;;) {
      const batch = await this.#db
        .selectFrom('audit_log')
        .selectAll()
        .where('id', '>', after)
        .orderBy('id')
        .limit(VERIFY_CHUNK)
        .execute();
      for (const row of batch) {
        const reason = chainProblem(row, expected);
        if (reason) {
          const broken = { id: row.id, at: Number(row.at), action: row.action, reason };
          return { intact: false, count, broken };
        }
        expected = row.hash!;
        count++;
      }
      onProgress?.(count);
      if (batch.length < VERIFY_CHUNK) return { intact: true, count, head: expected };
      after = batch[batch.length - 1].id;
    }
  }

  async #append(fields: ChainedFields): Promise<void> {
    const insert = async (db: Kysely<DB>) => {
      const last = await db
        .selectFrom('audit_log')
        .select('hash')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      const prev = last?.hash ?? GENESIS_HASH;
      await db
        .insertInto('audit_log')
        .values({ ...fields, prev_hash: prev, hash: entryHash(fields, prev) })
        .execute();
    };

    if (this.#dialect === 'postgres') {
      // One round trip (migration 0013). The lock is held until the call commits, so the next
      // writer reads this row's hash; ids come from the sequence while the lock is held, so id
      // order is chain order.
      const f = fields;
      for (let attempt = 1; ; attempt++) {
        try {
          await sql`select warden_audit_append(${f.at}::bigint, ${f.actor_id}::integer,
            ${f.actor_email}::text, ${f.action}::text, ${f.target}::text, ${f.details}::text,
            ${f.ip}::text, ${f.outcome}::text, ${canonicalHead(f)}::text,
            ${ADVISORY_LOCK_KEY}::bigint)`.execute(this.#db);
          return;
        } catch (error) {
          // Another writer's row took this one's place in the chain (a database whose default
          // isolation is REPEATABLE READ; see migration 0013): a new statement reads it.
          if (attempt >= CHAIN_ATTEMPTS || !isChainConflict(error)) throw error;
        }
      }
    }
    // Kysely's SQLite transactions begin DEFERRED; a reader upgrading to writer could then fail
    // against another process's write. IMMEDIATE takes the write lock up front.
    await this.#db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        await insert(conn);
        await sql`commit`.execute(conn);
      } catch (err) {
        await sql`rollback`.execute(conn).catch(() => {});
        throw err;
      }
    });
  }

  #filtered(f: AuditFilter): SelectQueryBuilder<DB, 'audit_log', object> {
    let q = this.#db.selectFrom('audit_log') as SelectQueryBuilder<DB, 'audit_log', object>;
    if (f.actorEmail) {
      // A substring test, not LIKE, so `%` and `_` are plain characters. The actor's account
      // answers through the users table's normalized email (SQLite's lower() folds ASCII only);
      // actors without an account ("cli") through the recorded email.
      const needle = f.actorEmail;
      const fn = this.#dialect === 'postgres' ? 'strpos' : 'instr';
      q = q.where((eb) =>
        eb.or([
          eb(eb.fn(fn, [eb.fn('lower', [eb.ref('actor_email')]), eb.val(needle)]), '>', 0),
          eb(
            'actor_id',
            'in',
            eb
              .selectFrom('users')
              .select('users.id')
              .where((u) => u(u.fn(fn, [u.ref('users.email_normalized'), u.val(needle)]), '>', 0)),
          ),
        ]),
      );
    }
    if (f.action) q = q.where('action', '=', f.action);
    if (f.from !== undefined) q = q.where('at', '>=', f.from);
    if (f.to !== undefined) q = q.where('at', '<', f.to);
    if (f.maxId !== undefined) q = q.where('id', '<=', f.maxId);
    return q;
  }
}

/** Why a row does not continue the chain whose last hash is `expected`, or null. */
function chainProblem(row: AuditRow, expected: string): string | null {
  if (!row.hash || !row.prev_hash) return 'the entry has no hash';
  if (row.prev_hash !== expected) {
    return 'its prev_hash does not match the entry before it (an entry was removed, inserted or reordered)';
  }
  if (entryHash(row, row.prev_hash) !== row.hash) {
    return 'its contents do not match its hash (the entry was changed)';
  }
  return null;
}
