/**
 * @module events/audit
 * The audit log: one row per admin action, refused attempts included, and one log
 * line for it. The application has no path that updates or deletes a row.
 */

import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Kysely } from 'kysely';
import type { AuditLogTable, DB } from '../db/schema.js';
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

export class AuditLog {
  readonly #db: Kysely<DB>;
  readonly #clock: () => number;

  constructor(db: Kysely<DB>, clock: () => number) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Writes the row, then the log line; a failure to write is logged and rethrown. */
  async write(actor: Actor, entry: AuditEntry, log: Logger): Promise<void> {
    await this.#db
      .insertInto('audit_log')
      .values({
        at: this.#clock(),
        actor_id: actor.id,
        actor_email: actor.email,
        action: entry.action,
        target: entry.target ?? null,
        details: JSON.stringify(entry.details ?? {}),
        ip: actor.ip,
        outcome: entry.outcome,
      })
      .execute();
    logAdminAction(log, actor, entry);
  }

  async list(query: {
    actorEmail?: string;
    action?: string;
    from?: number;
    to?: number;
    offset: number;
    limit: number;
  }) {
    let q = this.#db.selectFrom('audit_log');
    if (query.actorEmail) q = q.where('actor_email', '=', query.actorEmail);
    if (query.action) q = q.where('action', '=', query.action);
    if (query.from !== undefined) q = q.where('at', '>=', query.from);
    if (query.to !== undefined) q = q.where('at', '<', query.to);
    const [count, items] = await Promise.all([
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      q.selectAll().orderBy('id', 'desc').limit(query.limit).offset(query.offset).execute(),
    ]);
    return { items, total: Number(count.n) };
  }
}
