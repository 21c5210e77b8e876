/**
 * @module events/session-events
 * Session history in SQL: sign-in, sign-out, revocation (by whom), cleanup. It outlives
 * the sessions, whichever store holds them.
 */
import type { Kysely } from 'kysely';
import type { DB, SessionEventKind, SessionEventRow } from '../db/schema.js';
import type { SessionRecord } from '../sessions/session-store.js';

export interface SessionEvent {
  kind: SessionEventKind;
  reason?: string | null;
  actorId?: number | null;
}

const INSERT_CHUNK = 200;

export class SessionEvents {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** One row per session, all with the same kind, reason and actor. */
  async record(
    sessions: readonly Pick<SessionRecord, 'id' | 'userId' | 'ip' | 'userAgent'>[],
    event: SessionEvent,
    at: number,
  ): Promise<void> {
    for (let i = 0; i < sessions.length; i += INSERT_CHUNK) {
      const rows = sessions.slice(i, i + INSERT_CHUNK).map((s) => ({
        session_id: s.id,
        user_id: s.userId,
        kind: event.kind,
        reason: event.reason ?? null,
        actor_id: event.actorId ?? null,
        at,
        ip: s.ip,
        user_agent: s.userAgent,
      }));
      await this.#db.insertInto('session_events').values(rows).execute();
    }
  }

  /** Of these ids, the ones that once existed (so a revoke can say "already ended"). */
  async knownIds(ids: readonly string[]): Promise<Set<string>> {
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.#db
        .selectFrom('session_events')
        .select('session_id')
        .distinct()
        .where('session_id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const r of rows) known.add(r.session_id);
    }
    return known;
  }

  /** Every history row of these sessions (a few per session). */
  async ofSessions(ids: readonly string[]): Promise<SessionEventRow[]> {
    const rows: SessionEventRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      rows.push(
        ...(await this.#db
          .selectFrom('session_events')
          .selectAll()
          .where('session_id', 'in', ids.slice(i, i + 500))
          .execute()),
      );
    }
    return rows;
  }

  /** A user's history, newest first. */
  async forUser(userId: number, limit = 100): Promise<SessionEventRow[]> {
    return this.#db
      .selectFrom('session_events')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }
}
