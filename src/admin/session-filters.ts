/**
 * @module admin/session-filters
 * The sessions table's filters as they travel in the URL: one schema, one parser
 * into a store query, one writer back into a query string for links and redirects.
 */
import { type Static, Type } from '@sinclair/typebox';
import { ROLES } from '../db/schema.js';
import type { SessionQuery } from '../sessions/session-store.js';
import { normalizeEmail } from '../users/email.js';
import { DayParam, dayRange } from './dates.js';

export const DEFAULT_PER_PAGE = 50;
export const MAX_PER_PAGE = 200;

/** Query string of the sessions table; every field optional, empty means "any". */
export const SessionFilterSchema = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254 })),
  status: Type.Optional(
    Type.Union([
      Type.Literal(''),
      Type.Literal('all'),
      Type.Literal('active'),
      Type.Literal('expired'),
    ]),
  ),
  role: Type.Optional(
    Type.Union([Type.Literal(''), Type.Literal('all'), ...ROLES.map((r) => Type.Literal(r))]),
  ),
  created_from: Type.Optional(DayParam),
  created_to: Type.Optional(DayParam),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE })),
  /**
   * The moment the first page was shown (epoch ms). Page links carry it, so sessions that
   * sign in while someone pages through do not push rows onto the next page twice.
   */
  as_of: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000 })),
});
export type SessionFilterParams = Static<typeof SessionFilterSchema>;

export interface SessionFilters {
  email: string;
  status: 'all' | 'active' | 'expired';
  role: 'all' | (typeof ROLES)[number];
  createdFrom: string;
  createdTo: string;
  page: number;
  perPage: number;
  asOf?: number;
}

export function readFilters(params: SessionFilterParams): SessionFilters {
  return {
    email: (params.email ?? '').trim(),
    status: params.status || 'all',
    role: params.role || 'all',
    createdFrom: params.created_from ?? '',
    createdTo: params.created_to ?? '',
    page: params.page ?? 1,
    perPage: params.per_page ?? DEFAULT_PER_PAGE,
    ...(params.as_of !== undefined ? { asOf: params.as_of } : {}),
  };
}

/** The store query for the filters (dates are whole UTC days; "to" includes its day). */
export function toStoreQuery(
  f: SessionFilters,
  now: number,
): Omit<SessionQuery, 'offset' | 'limit'> {
  const { from, to: toDay } = dayRange(
    ['created_from', f.createdFrom],
    ['created_to', f.createdTo],
  );
  const email = f.email ? normalizeEmail(f.email) : undefined;
  const role = f.role === 'all' ? undefined : f.role;
  const snapshot = f.asOf === undefined ? undefined : f.asOf + 1;
  const createdTo =
    toDay === undefined ? snapshot : snapshot === undefined ? toDay : Math.min(toDay, snapshot);
  return {
    // An expired listing runs most recently expired first, so a session ending after the first
    // page would push a row onto the next: the pages of one as_of judge status at that time.
    now: f.status === 'expired' && f.asOf !== undefined ? Math.min(now, f.asOf) : now,
    status: f.status,
    ...(email || role ? { user: { ...(email ? { email } : {}), ...(role ? { role } : {}) } } : {}),
    ...(from !== undefined ? { createdFrom: from } : {}),
    ...(createdTo !== undefined ? { createdTo } : {}),
  };
}

/** `?email=…&status=…` with only the fields that differ from the defaults. */
export function filterSearch(f: SessionFilters, overrides: Partial<SessionFilters> = {}): string {
  const merged = { ...f, ...overrides };
  const params = new URLSearchParams();
  if (merged.email) params.set('email', merged.email);
  if (merged.status !== 'all') params.set('status', merged.status);
  if (merged.role !== 'all') params.set('role', merged.role);
  if (merged.createdFrom) params.set('created_from', merged.createdFrom);
  if (merged.createdTo) params.set('created_to', merged.createdTo);
  if (merged.page !== 1) params.set('page', String(merged.page));
  if (merged.perPage !== DEFAULT_PER_PAGE) params.set('per_page', String(merged.perPage));
  if (merged.asOf !== undefined) params.set('as_of', String(merged.asOf));
  const search = params.toString();
  return search ? `?${search}` : '';
}

export function hasFilters(f: SessionFilters): boolean {
  return filterSearch({ ...f, page: 1, perPage: DEFAULT_PER_PAGE, asOf: undefined }) !== '';
}
