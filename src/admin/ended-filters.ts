/**
 * @module admin/ended-filters
 * The ended-sessions tab's filters as they travel in the URL: the live table's filters
 * (email, role, days, page) with the days meaning "ended between", plus how it ended.
 */
import { type Static, Type } from '@sinclair/typebox';
import { ROLES, type Role, type SessionEventKind } from '../db/schema.js';
import { DayParam, dayRange } from './dates.js';
import { ENDING_KINDS, type HistoryFilter } from './ended-query.js';
import { DEFAULT_PER_PAGE, MAX_PER_PAGE } from './session-filters.js';

export const EndedFilterSchema = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254 })),
  role: Type.Optional(
    Type.Union([Type.Literal(''), Type.Literal('all'), ...ROLES.map((r) => Type.Literal(r))]),
  ),
  kind: Type.Optional(
    Type.Union([
      Type.Literal(''),
      Type.Literal('all'),
      ...ENDING_KINDS.map((k) => Type.Literal(k)),
    ]),
  ),
  ended_from: Type.Optional(DayParam),
  ended_to: Type.Optional(DayParam),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE })),
  /** The moment the first page was shown: later endings do not shift the pages after it. */
  as_of: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000 })),
});
export type EndedFilterParams = Static<typeof EndedFilterSchema>;

export interface EndedFilters {
  email: string;
  role: 'all' | Role;
  kind: 'all' | SessionEventKind;
  endedFrom: string;
  endedTo: string;
  page: number;
  perPage: number;
  asOf?: number;
}

export function readEndedFilters(p: EndedFilterParams): EndedFilters {
  return {
    email: (p.email ?? '').trim(),
    role: p.role || 'all',
    kind: p.kind || 'all',
    endedFrom: p.ended_from ?? '',
    endedTo: p.ended_to ?? '',
    page: p.page ?? 1,
    perPage: p.per_page ?? DEFAULT_PER_PAGE,
    ...(p.as_of !== undefined ? { asOf: p.as_of } : {}),
  };
}

/**
 * The history filter for the tab: endings only, never older than `since` (the start of the
 * history retention), days as whole UTC days with "to" inclusive.
 */
export function toHistoryFilter(f: EndedFilters, since: number): HistoryFilter {
  const { from, to } = dayRange(['ended_from', f.endedFrom], ['ended_to', f.endedTo]);
  const upper = [to, f.asOf === undefined ? undefined : f.asOf + 1].filter(
    (v): v is number => v !== undefined,
  );
  return {
    kinds: f.kind === 'all' ? ENDING_KINDS : [f.kind],
    from: Math.max(from ?? since, since),
    ...(upper.length > 0 ? { to: Math.min(...upper) } : {}),
    ...(f.email ? { email: f.email } : {}),
    ...(f.role !== 'all' ? { role: f.role } : {}),
  };
}

/** `?email=…&kind=…` with only the fields that differ from the defaults. */
export function endedSearch(f: EndedFilters, overrides: Partial<EndedFilters> = {}): string {
  const m = { ...f, ...overrides };
  const p = new URLSearchParams();
  if (m.email) p.set('email', m.email);
  if (m.role !== 'all') p.set('role', m.role);
  if (m.kind !== 'all') p.set('kind', m.kind);
  if (m.endedFrom) p.set('ended_from', m.endedFrom);
  if (m.endedTo) p.set('ended_to', m.endedTo);
  if (m.page !== 1) p.set('page', String(m.page));
  if (m.perPage !== DEFAULT_PER_PAGE) p.set('per_page', String(m.perPage));
  if (m.asOf !== undefined) p.set('as_of', String(m.asOf));
  const s = p.toString();
  return s ? `?${s}` : '';
}
