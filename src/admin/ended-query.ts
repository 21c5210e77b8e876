/**
 * @module admin/ended-query
 * Session history as the console reads it: the rows of `session_events` with the email and
 * role of the session's user and the email of whoever acted, filtered like the sessions
 * table. One query builder serves the ended-sessions tab, a user's history and the tab's
 * export, which reads it in batches (historyBatches) so it never holds the whole result.
 */
import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import { countMatches } from '../db/capped-count.js';
import type { Dialect } from '../db/database.js';
import type { DB, Role, SessionEventKind } from '../db/schema.js';
import { normalizeEmail } from '../users/email.js';

/** The kinds of history row that mean a session ended. */
export const ENDING_KINDS = [
  'signed_out',
  'revoked',
  'expired',
  'cleaned_up',
] as const satisfies readonly SessionEventKind[];

export interface HistoryFilter {
  userId?: number;
  /** Part of the user's email, as typed; compared in normal form, never as a pattern. */
  email?: string;
  role?: Role;
  kinds?: readonly SessionEventKind[];
  /** Inclusive lower bound on the event time. */
  from?: number;
  /** Exclusive upper bound on the event time. */
  to?: number;
}

export interface HistoryRow {
  id: number;
  sessionId: string;
  userId: number;
  /** Null when the user no longer exists. */
  email: string | null;
  role: Role | null;
  kind: SessionEventKind;
  reason: string | null;
  actorId: number | null;
  actorEmail: string | null;
  at: number;
  ip: string | null;
  userAgent: string | null;
}

type Query = SelectQueryBuilder<
  DB & { e: DB['session_events']; u: DB['users']; a: DB['users'] },
  'e' | 'u' | 'a',
  object
>;

/**
 * `walk`: test the kinds on each row met rather than read them through the (kind, at) index,
 * so the time index gives the order. A page reads few rows either way; but the (kind, at)
 * index sorts every row left in its range, and an export asks again for each batch: at a
 * million ended rows its batches took 0.4 s each, most of an export of them.
 */
function filtered(db: Kysely<DB>, dialect: Dialect, f: HistoryFilter, walk = false): Query {
  let q = db
    .selectFrom('session_events as e')
    .leftJoin('users as u', 'u.id', 'e.user_id')
    .leftJoin('users as a', 'a.id', 'e.actor_id') as unknown as Query;
  if (f.userId !== undefined) q = q.where('e.user_id', '=', f.userId);
  if (f.kinds) {
    // SQLite's unary plus leaves a value as it is and hides the column from the planner;
    // PostgreSQL has no + for text, and plans with statistics of its own.
    const kind =
      walk && dialect === 'sqlite'
        ? sql<SessionEventKind>`+${sql.ref('e.kind')}`
        : sql.ref('e.kind');
    q = q.where(kind, 'in', [...f.kinds]);
  }
  if (f.from !== undefined) q = q.where('e.at', '>=', f.from);
  if (f.to !== undefined) q = q.where('e.at', '<', f.to);
  if (f.role) q = q.where('u.role', '=', f.role);
  if (f.email) {
    // The same substring test as the users filter: `%` and `_` are plain characters here.
    const needle = normalizeEmail(f.email);
    const fn = dialect === 'postgres' ? 'strpos' : 'instr';
    q = q.where((eb) => eb(eb.fn(fn, [eb.ref('u.email_normalized'), eb.val(needle)]), '>', 0));
  }
  return q;
}

/** The rows matching a filter, newest first, as a builder (paginate it, or stream it). */
export function historyQuery(db: Kysely<DB>, dialect: Dialect, f: HistoryFilter, walk = false) {
  return filtered(db, dialect, f, walk)
    .select([
      'e.id as id',
      'e.session_id as sessionId',
      'e.user_id as userId',
      'u.email as email',
      'u.role as role',
      'e.kind as kind',
      'e.reason as reason',
      'e.actor_id as actorId',
      'a.email as actorEmail',
      'e.at as at',
      'e.ip as ip',
      'e.user_agent as userAgent',
    ])
    .orderBy('e.at', 'desc')
    .orderBy('e.id', 'desc');
}

/** Where history is read: SessionEvents, which waits for the rows a revocation still writes. */
export interface HistorySource {
  /** `reads` takes the long reads: a page's count and rows, an export's batches. */
  readable(): Promise<{ db: Kysely<DB>; dialect: Dialect; reads?: Kysely<DB> }>;
}

/**
 * One page of history rows and how many match in all; with `countUpTo`, counted no further
 * than that (`totalCapped` then says more match), so a page costs what it shows rather than
 * what the whole history holds: an exact count of a million ended rows took a second and the
 * page 3.5 s. Where the count reaches the cap the matches are many, and the page walks the
 * time index newest first (see `filtered`); where they are few, it reads them by kind and sorts.
 */
export async function listHistory(
  source: HistorySource,
  f: HistoryFilter,
  page: { offset: number; limit: number },
  countUpTo?: number,
): Promise<{ items: HistoryRow[]; total: number; totalCapped: boolean }> {
  // A revocation answers before its rows are written (SessionEvents.follow). On SQLite in the
  // server the reader thread reads.
  const { db: main, dialect, reads } = await source.readable();
  const db = reads ?? main;
  const { total, totalCapped = false } = await countMatches(
    db,
    filtered(db, dialect, f),
    countUpTo,
  );
  const items = await historyQuery(db, dialect, f, totalCapped)
    .limit(page.limit)
    .offset(page.offset)
    .execute();
  return { items: items as HistoryRow[], total, totalCapped };
}

/** History rows read per query by an export: one batch is all it holds. */
export const HISTORY_BATCH = 1_000;

/**
 * Every row matching a filter, newest first, in batches. Each batch starts below the last
 * row sent, by (time, id) as the rows are ordered, rather than at an ever larger offset; and
 * works on both dialects (Kysely's stream() would need a cursor package on PostgreSQL).
 * Give the filter a `to` (a snapshot) so rows written during the export do not join it.
 */
export async function* historyBatches(
  source: HistorySource,
  f: HistoryFilter,
  batch = HISTORY_BATCH,
): AsyncGenerator<HistoryRow[]> {
  // On SQLite in the server, the reader thread: a large history's batches each sort what is
  // left of it, which held every request up to a second in this thread (second helper).
  const { db: main, dialect, reads } = await source.readable();
  const db = reads ?? main;
  let after: { at: number; id: number } | undefined;
  for (;;) {
    // The next batch's upper bound replaces the filter's (rows below it are all older), so the
    // query keeps one range on the time index and starts where the last batch stopped, rather
    // than reading past every row already sent; ties on the time are told apart by id.
    let q = historyQuery(db, dialect, after ? { ...f, to: after.at + 1 } : f, true);
    if (after) {
      const { at, id } = after;
      q = q.where((eb) => eb.or([eb('e.at', '<', at), eb('e.id', '<', id)]));
    }
    const rows = (await q.limit(batch).execute()) as HistoryRow[];
    if (rows.length > 0) yield rows;
    if (rows.length < batch) return;
    const last = rows[rows.length - 1];
    after = { at: last.at, id: last.id };
  }
}
