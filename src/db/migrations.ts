/**
 * @module db/migrations
 * The schema, as Kysely migrations that run alike on SQLite and PostgreSQL.
 * Migrations are code in this file rather than a folder, so the CLI needs no path.
 */
import { createHash } from 'node:crypto';
import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import { reasonOf } from '../errors.js';
import {
  addLatestDays,
  createActivityTables,
  createApprovalWaits,
  createUserCounters,
  dropActivityTables,
  dropApprovalWaits,
  dropLatestDays,
  dropUserCounters,
  fillActivityFromHistory,
} from './activity-tables.js';
import type { Dialect } from './database.js';

function migrations(dialect: Dialect): Record<string, Migration> {
  const id = dialect === 'postgres' ? 'serial' : 'integer';
  const time = dialect === 'postgres' ? 'bigint' : 'integer';

  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('users')
          .addColumn('id', id, (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('email', 'text', (c) => c.notNull())
          .addColumn('email_normalized', 'text', (c) => c.notNull().unique())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull().defaultTo('user'))
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('approved_at', time)
          .addColumn('approved_by', 'integer')
          .addColumn('last_login_at', time)
          .addColumn('updated_at', time, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('users_role_idx').on('users').column('role').execute();
        await db.schema.createIndex('users_status_idx').on('users').column('status').execute();
        await db.schema.createIndex('users_created_idx').on('users').column('created_at').execute();

        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'integer', (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('last_seen_at', time, (c) => c.notNull())
          .addColumn('idle_expires_at', time, (c) => c.notNull())
          .addColumn('absolute_expires_at', time, (c) => c.notNull())
          .addColumn('expires_at', time, (c) => c.notNull())
          .addColumn('ip', 'text', (c) => c.notNull())
          .addColumn('user_agent', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('sessions_user_idx')
          .on('sessions')
          .columns(['user_id', 'created_at'])
          .execute();
        await db.schema
          .createIndex('sessions_created_idx')
          .on('sessions')
          .column('created_at')
          .execute();
        await db.schema
          .createIndex('sessions_expires_idx')
          .on('sessions')
          .column('expires_at')
          .execute();

        await db.schema
          .createTable('session_events')
          .addColumn('id', id, (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('session_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'integer', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('actor_id', 'integer')
          .addColumn('at', time, (c) => c.notNull())
          .addColumn('ip', 'text')
          .addColumn('user_agent', 'text')
          .execute();
        await db.schema
          .createIndex('session_events_user_idx')
          .on('session_events')
          .columns(['user_id', 'at'])
          .execute();
        await db.schema
          .createIndex('session_events_session_idx')
          .on('session_events')
          .column('session_id')
          .execute();
        await db.schema
          .createIndex('session_events_at_idx')
          .on('session_events')
          .column('at')
          .execute();

        await db.schema
          .createTable('audit_log')
          .addColumn('id', id, (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('at', time, (c) => c.notNull())
          .addColumn('actor_id', 'integer')
          .addColumn('actor_email', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('ip', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_log_at_idx').on('audit_log').column('at').execute();
        await db.schema
          .createIndex('audit_log_actor_idx')
          .on('audit_log')
          .columns(['actor_id', 'at'])
          .execute();

        // Instance-wide values that every instance must agree on (signing keys, policy).
        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        for (const table of ['settings', 'audit_log', 'session_events', 'sessions', 'users']) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0002_user_decisions': {
      // Rejections and the end of the pending state get times of their own, so the analytics
      // page can follow decisions and the pending queue over time.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('users').addColumn('rejected_at', time).execute();
        await db.schema.alterTable('users').addColumn('rejected_by', 'integer').execute();
        await db.schema.alterTable('users').addColumn('decided_at', time).execute();
        // Existing rows: the best times known. A rejection or a disable last changed the row.
        await sql`update users set rejected_at = updated_at where status = 'rejected'`.execute(db);
        await sql`update users set decided_at = coalesce(approved_at, rejected_at, updated_at)
          where status <> 'pending'`.execute(db);
        for (const column of ['approved_at', 'rejected_at', 'decided_at']) {
          const index = `users_${column.replace('_at', '')}_idx`;
          await db.schema.createIndex(index).on('users').column(column).execute();
        }
      },
      async down(db: Kysely<unknown>) {
        for (const index of ['users_decided_idx', 'users_rejected_idx', 'users_approved_idx']) {
          await db.schema.dropIndex(index).ifExists().execute();
        }
        for (const column of ['decided_at', 'rejected_by', 'rejected_at']) {
          await db.schema.alterTable('users').dropColumn(column).execute();
        }
      },
    },
    '0003_audit_chain': {
      // The audit log becomes a hash chain (see events/audit.ts), rows written before are
      // chained in id order; and superusers get saved views of the console's tables.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('audit_log').addColumn('prev_hash', 'text').execute();
        await db.schema.alterTable('audit_log').addColumn('hash', 'text').execute();
        await chainExistingAuditRows(db);
        await db.schema
          .createIndex('audit_log_action_idx')
          .on('audit_log')
          .columns(['action', 'at'])
          .execute();

        await db.schema
          .createTable('saved_views')
          .addColumn('id', id, (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('owner_id', 'integer', (c) => c.notNull())
          .addColumn('page', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('query', 'text', (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('saved_views_owner_idx')
          .on('saved_views')
          .columns(['owner_id', 'page', 'name'])
          .unique()
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('saved_views').ifExists().execute();
        await db.schema.dropIndex('audit_log_action_idx').ifExists().execute();
        await db.schema.alterTable('audit_log').dropColumn('hash').execute();
        await db.schema.alterTable('audit_log').dropColumn('prev_hash').execute();
      },
    },
    '0004_step_up': {
      // When each session last proved its password again, for the console's sensitive
      // actions (http/step-up.ts); a row per session, keyed by its digest.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('step_ups')
          .addColumn('session_id', 'text', (c) => c.primaryKey())
          .addColumn('at', time, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('step_ups_at_idx').on('step_ups').column('at').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('step_ups').ifExists().execute();
      },
    },
    '0005_email_trigrams': {
      // The console's email filter is a substring test (user-repo #filtered): without an index
      // PostgreSQL scans every user (15-20 ms at 100,000). A trigram index answers substrings
      // of 3 characters or more. pg_trgm is a trusted extension (PostgreSQL 13+), so a database
      // owner without superuser may create it; where it is missing or not allowed, this does
      // nothing and the filter keeps its scan. SQLite has no such index: nothing to do.
      async up(db: Kysely<unknown>) {
        if (dialect !== 'postgres') return;
        const schema = await trigramSchema(db);
        if (schema === null) return;
        await sql`create index if not exists users_email_trgm_idx on users
          using gin (email_normalized ${sql.id(schema)}.gin_trgm_ops)`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropIndex('users_email_trgm_idx').ifExists().execute();
      },
    },
    // No 0006: no migration ever had that number (the log's gap hides nothing).
    '0007_session_listing': {
      // The console lists sessions newest first with `id` breaking ties: an index in exactly
      // that order lets a page stop after its rows instead of sorting every match. The user
      // and the deadline ride along, so user and status filters are tested on the index
      // entry without reading the row; it serves every range the creation index served. The
      // user index gains the deadline too, so a count of some users' live sessions reads
      // only that index. The statistics page counts sign-ins per hour and per day: with the
      // kind first, that count reads an index range instead of every event row of the window.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createIndex('sessions_listing_idx')
          .on('sessions')
          .columns(['created_at desc', 'id', 'user_id', 'expires_at'])
          .execute();
        await db.schema.dropIndex('sessions_created_idx').ifExists().execute();
        await db.schema
          .createIndex('sessions_user_expires_idx')
          .on('sessions')
          .columns(['user_id', 'created_at', 'expires_at'])
          .execute();
        await db.schema.dropIndex('sessions_user_idx').ifExists().execute();
        await db.schema
          .createIndex('session_events_kind_at_idx')
          .on('session_events')
          .columns(['kind', 'at'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropIndex('session_events_kind_at_idx').ifExists().execute();
        await db.schema
          .createIndex('sessions_user_idx')
          .on('sessions')
          .columns(['user_id', 'created_at'])
          .execute();
        await db.schema.dropIndex('sessions_user_expires_idx').ifExists().execute();
        await db.schema
          .createIndex('sessions_created_idx')
          .on('sessions')
          .column('created_at')
          .execute();
        await db.schema.dropIndex('sessions_listing_idx').ifExists().execute();
      },
    },
    '0008_activity': {
      // The analytics page's figures pre-aggregated per day: sign-in activity per user and day
      // (users/activity.ts) and users counters kept by triggers, both filled from the rows
      // already written so an upgrade keeps every past figure.
      async up(db: Kysely<unknown>) {
        await createActivityTables(db, dialect);
        await fillActivityFromHistory(db, dialect);
        await createUserCounters(db, dialect);
      },
      async down(db: Kysely<unknown>) {
        await dropUserCounters(db, dialect);
        await dropActivityTables(db);
      },
    },
    '0009_analytics_per_day': {
      // The analytics page's two reads that grew with the fleet. The medians of time to
      // approval read every approval of the range (about 100 ms at 100,000 users on
      // PostgreSQL): a histogram of waits per day, kept by triggers on users like 0008's
      // counters, bounds them by days and buckets; the index 0008 made for those reads has no
      // reader left. "Signed in in the last N days" read every such user's latest sign-in: a
      // count per day of the users whose latest sign-in it is leaves only part of a day to
      // read. Both filled from the rows already there.
      async up(db: Kysely<unknown>) {
        await createApprovalWaits(db, dialect);
        await db.schema.dropIndex('users_approval_wait_idx').ifExists().execute();
        await addLatestDays(db);
      },
      async down(db: Kysely<unknown>) {
        await dropLatestDays(db);
        await db.schema
          .createIndex('users_approval_wait_idx')
          .on('users')
          .columns(['approved_at', 'created_at'])
          .execute();
        await dropApprovalWaits(db, dialect);
      },
    },
    '0010_email_search_sqlite': {
      // SQLite's email filter tested every user's address (instr), about 5 ms per 100,000
      // users on every filtered console page. An FTS5 index of the addresses' trigrams (the
      // counterpart of PostgreSQL's pg_trgm index of 0005) finds the few candidates; the
      // exact substring test then runs on those only. Kept by triggers, filled from the rows.
      async up(db: Kysely<unknown>) {
        if (dialect !== 'sqlite') return;
        await sql`create virtual table users_email_search using fts5(email_normalized,
          content='users', content_rowid='id', tokenize='trigram', detail='none')`.execute(db);
        await sql`create trigger users_email_search_ai after insert on users begin
          insert into users_email_search(rowid, email_normalized)
            values (new.id, new.email_normalized);
        end`.execute(db);
        await sql`create trigger users_email_search_ad after delete on users begin
          insert into users_email_search(users_email_search, rowid, email_normalized)
            values ('delete', old.id, old.email_normalized);
        end`.execute(db);
        await sql`create trigger users_email_search_au after update of email_normalized on users
        begin
          insert into users_email_search(users_email_search, rowid, email_normalized)
            values ('delete', old.id, old.email_normalized);
          insert into users_email_search(rowid, email_normalized)
            values (new.id, new.email_normalized);
        end`.execute(db);
        await sql`insert into users_email_search(users_email_search) values ('rebuild')`.execute(
          db,
        );
      },
      async down(db: Kysely<unknown>) {
        if (dialect !== 'sqlite') return;
        for (const t of ['ai', 'ad', 'au']) {
          await sql`drop trigger if exists ${sql.id(`users_email_search_${t}`)}`.execute(db);
        }
        await sql`drop table if exists users_email_search`.execute(db);
      },
    },
    '0011_users_role_by_id': {
      // The Redis store asks for the first ids of a role's users, lowest first: on PostgreSQL
      // the role index alone made that a sort of every such user (4 ms for 8,000 admins). With
      // the id in the index it reads the first ones in order. SQLite's role index already
      // ends in the rowid, which is the id.
      async up(db: Kysely<unknown>) {
        if (dialect !== 'postgres') return;
        await db.schema
          .createIndex('users_role_id_idx')
          .on('users')
          .columns(['role', 'id'])
          .execute();
        await db.schema.dropIndex('users_role_idx').ifExists().execute();
      },
      async down(db: Kysely<unknown>) {
        if (dialect !== 'postgres') return;
        await db.schema.createIndex('users_role_idx').on('users').column('role').execute();
        await db.schema.dropIndex('users_role_id_idx').ifExists().execute();
      },
    },
    '0012_history_by_sign_in': {
      // Every history row went into an index of its random session id: on SQLite about 20 of
      // the 25 microseconds a row costs (a page rewritten at a random place per row), most of
      // what a cleanup spends beside its deletes. The only reader by session id is a
      // revocation's check of ids the store no longer holds (SessionEvents.ofSessions), which
      // finds their sign-ins here and their ends among their users' rows.
      async up(db: Kysely<unknown>) {
        await sql`create index session_events_signed_in_idx on session_events (session_id)
          where kind = 'signed_in'`.execute(db);
        await db.schema.dropIndex('session_events_session_idx').ifExists().execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema
          .createIndex('session_events_session_idx')
          .on('session_events')
          .column('session_id')
          .execute();
        await db.schema.dropIndex('session_events_signed_in_idx').ifExists().execute();
      },
    },
    '0013_audit_append': {
      // On PostgreSQL an audit row took five round trips (begin, the chain's lock, the last
      // hash, the insert, commit): about 2 of the 4.5 ms of a console action's fixed cost. This
      // function does the same in one call. Each of its statements reads a fresh snapshot, so
      // the last hash is read after the lock is held; the hash is SHA-256 of the row's canonical
      // JSON (events/audit.ts entryHash), whose head the caller sends and whose last element,
      // the previous hash, is added here. SQLite writes in this process: nothing to gain.
      //
      // And no two rows may follow the same one from now on: under REPEATABLE READ (a
      // database's default_transaction_isolation) a writer's snapshot is older than the lock
      // it waits for, so two writers read the same last hash and the chain forked. The second
      // INSERT now fails on this index and the writer tries again. Rows already written, forks
      // included, are left as they are (`warden audit verify` reports them).
      async up(db: Kysely<unknown>) {
        const { rows } = await sql<{ id: number | string | null }>`select max(id) as id
          from audit_log`.execute(db);
        const from = Number(rows[0]?.id ?? 0);
        await sql`create unique index audit_log_chain_idx on audit_log (prev_hash)
          where id > ${sql.lit(from)}`.execute(db);
        if (dialect !== 'postgres') return;
        await sql`create or replace function warden_audit_append(
            p_at bigint, p_actor_id integer, p_actor_email text, p_action text, p_target text,
            p_details text, p_ip text, p_outcome text, p_head text, p_lock bigint)
          returns void language plpgsql as $$
          declare
            prev text;
          begin
            perform pg_advisory_xact_lock(p_lock);
            select hash into prev from audit_log order by id desc limit 1;
            prev := coalesce(prev, repeat('0', 64));
            insert into audit_log
              (at, actor_id, actor_email, action, target, details, ip, outcome, prev_hash, hash)
            values (p_at, p_actor_id, p_actor_email, p_action, p_target, p_details, p_ip,
              p_outcome, prev,
              encode(sha256(convert_to(p_head || ',"' || prev || '"]', 'UTF8')), 'hex'));
          end
          $$`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropIndex('audit_log_chain_idx').ifExists().execute();
        if (dialect !== 'postgres') return;
        await sql`drop function if exists warden_audit_append(bigint, integer, text, text, text,
          text, text, text, text, bigint)`.execute(db);
      },
    },
  };
}

/**
 * The schema pg_trgm lives in, creating the extension when it is available and this role may
 * (superuser, or a trusted extension and CREATE on the database); null when it cannot be had.
 * Checked first because a failed CREATE EXTENSION would abort the migration's transaction.
 */
async function trigramSchema(db: Kysely<unknown>): Promise<string | null> {
  const installed = async () => {
    const { rows } = await sql<{ schema: string }>`select n.nspname as schema from pg_extension e
      join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_trgm'`.execute(db);
    return rows[0]?.schema ?? null;
  };
  const found = await installed();
  if (found !== null) return found;
  const { rows } = await sql<{ allowed: boolean }>`select (
      (select rolsuper from pg_roles where rolname = current_user)
      or (v.trusted and has_database_privilege(current_database(), 'CREATE'))
    ) as allowed
    from pg_available_extensions a
    join pg_available_extension_versions v on v.name = a.name and v.version = a.default_version
    where a.name = 'pg_trgm'`.execute(db);
  if (rows[0]?.allowed !== true) return null;
  await sql`create extension if not exists pg_trgm`.execute(db);
  return installed();
}

/**
 * Hashes the audit rows that predate the chain, oldest first. This is format v1 of
 * events/audit.ts `entryHash`, copied on purpose: a migration must keep writing what v1 was
 * even after the application's format moves on.
 */
async function chainExistingAuditRows(db: Kysely<unknown>): Promise<void> {
  interface Row {
    id: number;
    at: number | string;
    actor_id: number | null;
    actor_email: string | null;
    action: string;
    target: string | null;
    details: string;
    ip: string | null;
    outcome: string;
  }
  let prev = '0'.repeat(64);
  let after = 0;
  for (;;) {
    const { rows } = await sql<Row>`select id, at, actor_id, actor_email, action, target,
      details, ip, outcome from audit_log where id > ${after} order by id limit 1000`.execute(db);
    for (const r of rows) {
      const canonical = JSON.stringify([
        'warden-audit-v1',
        Number(r.at),
        r.actor_id === null ? null : Number(r.actor_id),
        r.actor_email,
        r.action,
        r.target,
        r.details,
        r.ip,
        r.outcome,
        prev,
      ]);
      const hash = createHash('sha256').update(canonical).digest('hex');
      await sql`update audit_log set prev_hash = ${prev}, hash = ${hash} where id = ${r.id}`.execute(
        db,
      );
      prev = hash;
    }
    if (rows.length < 1000) return;
    after = rows[rows.length - 1].id;
  }
}

/** The database at DATABASE_URL could not be reached or opened (nothing was migrated). */
export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
}

/**
 * Undoes every migration after `name` (for tests of a migration's backfill: the database as
 * that migration found it).
 */
export async function migrateDownTo(
  // biome-ignore lint/suspicious/noExplicitAny: accepts a Kysely typed with any schema
  db: Kysely<any>,
  dialect: Dialect,
  name: string,
): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
  });
  const result = await migrator.migrateTo(name);
  if (result.error) throw result.error;
}

/**
 * Brings the schema up to date; throws with the failing migration's name on error, or a
 * DatabaseOpenError when the database cannot be reached at all.
 */
export async function migrateToLatest(
  // biome-ignore lint/suspicious/noExplicitAny: accepts a Kysely typed with any schema
  db: Kysely<any>,
  dialect: Dialect,
): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
  });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const cause = reasonOf(result.error);
    // No migration ran: the database could not be reached or opened at all.
    if (!failed) throw new DatabaseOpenError(cause, { cause: result.error });
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${cause}`, {
      cause: result.error,
    });
  }
  return result;
}
