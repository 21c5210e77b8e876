/**
 * @module admin/audit-filters
 * The audit page's filters as they travel in the URL: one schema, one parser into an
 * AuditLog query, one writer back into a query string for links and the export.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { AuditFilter } from '../events/audit.js';
import { normalizeEmail } from '../users/email.js';
import { DayParam, dayRange } from './dates.js';

export const AUDIT_PER_PAGE = 50;

/** Query string of the audit page; every field optional, empty means "any". */
export const AuditFilterSchema = Type.Object({
  actor: Type.Optional(Type.String({ maxLength: 254 })),
  action: Type.Optional(Type.String({ maxLength: 100 })),
  from: Type.Optional(DayParam),
  to: Type.Optional(DayParam),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  /**
   * The newest entry's id when the first page was shown: later pages stay put while rows
   * arrive. An id, not a time (the sessions pages' `as_of` is one): at most PostgreSQL's
   * `integer`, which a larger value made a 500.
   */
  as_of: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
});
export type AuditFilterParams = Static<typeof AuditFilterSchema>;

export interface AuditFilters {
  actor: string;
  action: string;
  from: string;
  to: string;
  page: number;
  asOf?: number;
}

export function readAuditFilters(p: AuditFilterParams): AuditFilters {
  return {
    actor: (p.actor ?? '').trim(),
    action: (p.action ?? '').trim(),
    from: p.from ?? '',
    to: p.to ?? '',
    page: p.page ?? 1,
    ...(p.as_of !== undefined ? { asOf: p.as_of } : {}),
  };
}

/** The AuditLog query (dates are whole UTC days; `to` includes its day). */
export function toAuditQuery(f: AuditFilters): AuditFilter {
  const { from, to } = dayRange(['from', f.from], ['to', f.to]);
  return {
    ...(f.actor ? { actorEmail: normalizeEmail(f.actor) } : {}),
    ...(f.action ? { action: f.action } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(f.asOf !== undefined ? { maxId: f.asOf } : {}),
  };
}

/** `?actor=…&action=…` with only the fields that are set. */
export function auditSearch(f: AuditFilters, overrides: Partial<AuditFilters> = {}): string {
  const m = { ...f, ...overrides };
  const params = new URLSearchParams();
  if (m.actor) params.set('actor', m.actor);
  if (m.action) params.set('action', m.action);
  if (m.from) params.set('from', m.from);
  if (m.to) params.set('to', m.to);
  if (m.page !== 1) params.set('page', String(m.page));
  if (m.asOf !== undefined) params.set('as_of', String(m.asOf));
  const search = params.toString();
  return search ? `?${search}` : '';
}
