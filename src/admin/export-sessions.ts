/**
 * @module admin/export-sessions
 * The rows of a sessions export, read from the store a chunk at a time, in the same order
 * (newest first; expired ones most recently expired first) and with the same columns the
 * sessions table shows.
 */
import type { SessionQuery, SessionRecord, SessionStore } from '../sessions/session-store.js';
import { expiresAt, statusOf } from '../sessions/session-store.js';
import type { UserRepo } from '../users/user-repo.js';
import { type Cell, csvLine } from './export-csv.js';
import type { SessionRowView } from './sessions-view.js';
import { parseUserAgent } from './user-agent.js';

/** Sessions read per store call: one chunk (and its users) is all an export holds. */
export const EXPORT_CHUNK = 2_000;

/**
 * Every session matching a query in the table's order (newest first; expired ones most
 * recently expired first), in chunks. Pages through windows rather than ever larger offsets:
 * each call asks for sessions created before the oldest one already sent (expired: that ended
 * at or before the earliest deadline sent, by lowering `now`, the bound an expired listing
 * has), skipping those of that same millisecond already sent. The query should carry an upper
 * bound on creation time (a snapshot), so sign-ins during the export do not join it.
 *
 * LIMITATION: on the Redis store a status or user filter is answered by collecting the
 * matching index entries of the whole remaining window on every call (see RedisSessionStore
 * #candidates), so a filtered export of N sessions reads about N²/2·EXPORT_CHUNK index
 * entries (ids, not sessions; memory stays one chunk of sessions).
 */
export async function* sessionChunks(
  store: Pick<SessionStore, 'list'>,
  query: Omit<SessionQuery, 'offset' | 'limit'>,
  chunk = EXPORT_CHUNK,
): AsyncGenerator<SessionRecord[]> {
  const byDeadline = query.status === 'expired';
  const key = byDeadline ? expiresAt : (s: SessionRecord) => s.createdAt;
  let createdTo = query.createdTo;
  let now = query.now;
  let offset = 0;
  let edge: number | null = null;
  let sentAtEdge = new Set<string>();
  const read = () =>
    store.list({
      ...query,
      ...(createdTo !== undefined ? { createdTo } : {}),
      now,
      offset,
      limit: chunk,
      // Whether more remain past this chunk is all the loop needs: an exact count of the whole
      // remaining window on every call cost a million-session export 40 s (N² / 2 / chunk).
      countUpTo: offset + chunk + 1,
    });
  let pending = read();
  for (;;) {
    const page = await pending;
    const fresh = page.items.filter((s) => !(key(s) === edge && sentAtEdge.has(s.id)));
    const last = offset + chunk >= page.total;
    if (!last) {
      if (fresh.length === 0) {
        // A run of entries the store could not read: step over it within the same window.
        offset += chunk;
      } else {
        const oldest = key(page.items[page.items.length - 1]);
        if (oldest !== edge) {
          edge = oldest;
          sentAtEdge = new Set();
        }
        for (const s of page.items) if (key(s) === oldest) sentAtEdge.add(s.id);
        // Creation bounds are exclusive above; an expired listing's `now` is inclusive.
        if (byDeadline) now = oldest;
        else createdTo = oldest + 1;
        offset = sentAtEdge.size;
      }
      // The next chunk is read while this one is written out (on SQLite in the server, by the
      // reader thread). Should the export stop first, its failure must not go unhandled.
      pending = read();
      pending.catch(() => {});
    }
    if (fresh.length > 0) yield fresh;
    if (last) return;
  }
}

/** The sessions table's row for a session, as the page and the export show it. */
export function tableRow(
  s: SessionRecord,
  owner: { email: string; role: string } | undefined,
  now: number,
  parse: typeof parseUserAgent = parseUserAgent,
): Omit<SessionRowView, 'own'> {
  return {
    id: s.id,
    userId: s.userId,
    email: owner?.email ?? `(deleted user ${s.userId})`,
    role: owner?.role ?? '',
    status: statusOf(s, now),
    createdAt: s.createdAt,
    lastSeenAt: s.lastSeenAt,
    expiresAt: expiresAt(s),
    ip: s.ip,
    ...parse(s.userAgent),
  };
}

/** The table's row with the raw User-Agent header, which the files carry too. */
export function rowView(
  s: SessionRecord,
  owner: { email: string; role: string } | undefined,
  now: number,
  parse: typeof parseUserAgent = parseUserAgent,
): Omit<SessionRowView, 'own'> & { userAgent: string } {
  return { ...tableRow(s, owner, now, parse), userAgent: s.userAgent };
}

export type ExportRow = ReturnType<typeof rowView>;

/** Chunks of table rows: the sessions with their users, looked up one chunk at a time. */
export async function* rowChunks(
  sessions: AsyncIterable<SessionRecord[]>,
  users: Pick<UserRepo, 'findMany'>,
  now: number,
): AsyncGenerator<ExportRow[]> {
  // A fleet has far fewer distinct user agents than sessions; parsing is the costly part.
  const parsed = new Map<string, ReturnType<typeof parseUserAgent>>();
  const parse = (ua: string) => {
    let client = parsed.get(ua);
    if (!client) {
      if (parsed.size >= 1_000) parsed.clear();
      client = parseUserAgent(ua);
      parsed.set(ua, client);
    }
    return client;
  };
  for await (const chunk of sessions) {
    const owners = await users.findMany(chunk.map((s) => s.userId));
    yield chunk.map((s) => rowView(s, owners.get(s.userId), now, parse));
  }
}

const iso = (at: number) => new Date(at).toISOString();

export const SESSION_CSV_HEADER = [
  'id',
  'user_id',
  'email',
  'role',
  'status',
  'created_at',
  'last_seen_at',
  'expires_at',
  'ip',
  'browser',
  'os',
  'user_agent',
];

export function sessionCsvLine(r: ExportRow): string {
  const cells: Cell[] = [
    r.id,
    r.userId,
    r.email,
    r.role,
    r.status,
    iso(r.createdAt),
    iso(r.lastSeenAt),
    iso(r.expiresAt),
    r.ip,
    r.browser,
    r.os,
    r.userAgent,
  ];
  return csvLine(cells);
}

export function sessionJson(r: ExportRow): string {
  return JSON.stringify({
    id: r.id,
    userId: r.userId,
    email: r.email,
    role: r.role,
    status: r.status,
    createdAt: iso(r.createdAt),
    lastSeenAt: iso(r.lastSeenAt),
    expiresAt: iso(r.expiresAt),
    ip: r.ip,
    browser: r.browser,
    os: r.os,
    userAgent: r.userAgent,
  });
}
