/**
 * @module events/log-lines
 * Every structured line Warden writes about its own events, in one place, so the
 * fields an operator searches by stay the same everywhere.
 */
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Actor, AuditEntry } from './audit.js';

/** One line per admin action: actor, action, target or counts, outcome, duration. */
export function logAdminAction(log: Logger, actor: Actor, entry: AuditEntry): void {
  const level = entry.outcome === 'refused' || entry.outcome === 'failure' ? 'warn' : 'info';
  log[level](
    {
      event: 'admin_action',
      actorId: actor.id,
      actor: actor.email,
      ip: actor.ip,
      action: entry.action,
      target: entry.target ?? undefined,
      outcome: entry.outcome,
      counts: entry.details?.counts,
      durationMs: entry.durationMs,
    },
    'admin action',
  );
}

/**
 * History rows of ended sessions that could not be written (SessionEvents.follow): the
 * sessions stay ended, their record is missing.
 */
export function logHistoryLost(log: Logger, err: unknown, rows: number): void {
  // A statement past DATABASE_TIMEOUT is given up on, not cancelled: it may still be written.
  log.error(
    { event: 'history_lost', rows, err },
    'session history rows not confirmed written (a statement given up on may still complete)',
  );
}

/** Rows written without the address and browser of sessions that could not be read back. */
export function logHistoryIncomplete(log: Logger, err: unknown, rows: number): void {
  log.warn(
    { event: 'history_incomplete', rows, err },
    'session history rows written without address and browser',
  );
}

/** Sign-in, sign-out and refusals; the session is named by its digest, never its token. */
export function logAuthEvent(
  log: Logger,
  fields: {
    /** `sign_out_elsewhere`: a person ended other sessions of their own (My sessions). */
    event:
      | 'sign_in'
      | 'sign_in_failed'
      | 'sign_out'
      | 'sign_out_elsewhere'
      | 'register'
      | 'password_changed';
    userId?: number;
    email?: string;
    sessionId?: string;
    reason?: string;
    /** How many sessions ended. */
    ended?: number;
  },
): void {
  const level = fields.event === 'sign_in_failed' ? 'warn' : 'info';
  log[level](fields, fields.event.replace(/_/g, ' '));
}
