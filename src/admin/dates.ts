/**
 * @module admin/dates
 * The console's date filters: whole UTC days typed as `YYYY-MM-DD` (what `<input type="date">`
 * sends), read into a range of epoch milliseconds with "to" including its own day.
 */
import { Type } from '@sinclair/typebox';
import { WardenError } from '../errors.js';

export const DAY_MS = 86_400_000;

/** A day in the query string, or empty for "any". The schema checks the shape, parseDay the date. */
export const DayParam = Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$', maxLength: 10 });

// No session, sign-in or audit entry of Warden's is older: an earlier day is a typing slip
// (`0000-01-01`, `0206-…`), and every filter says so alike.
const EARLIEST_DAY = '2000-01-01';
const EARLIEST = Date.parse(`${EARLIEST_DAY}T00:00:00Z`);

/**
 * Start of a UTC day, undefined for an empty value, or a 400 naming the field when the date
 * does not exist (`2025-02-30` has the right shape) or comes before 2000.
 */
export function parseDay(field: string, value: string): number | undefined {
  if (!value) return undefined;
  const at = Date.parse(`${value}T00:00:00Z`);
  if (Number.isNaN(at) || new Date(at).toISOString().slice(0, 10) !== value) {
    throw new WardenError('WARDEN_VALIDATION', [`${field} "${value}" is not a real date`], {
      field,
      where: 'querystring',
    });
  }
  if (at < EARLIEST) {
    throw new WardenError('WARDEN_VALIDATION', [`${field} must be ${EARLIEST_DAY} or later`], {
      field,
      where: 'querystring',
    });
  }
  return at;
}

/** Epoch milliseconds: `from` inclusive, `to` exclusive (the start of the day after "to"). */
export interface DayRange {
  from?: number;
  to?: number;
}

/**
 * The range of a "from" and a "to" filter, each `[field, value]`, either one empty for an
 * open end; a 400 naming the "from" field when it comes after "to".
 * @example dayRange(['from', '2026-03-01'], ['to', '2026-03-01']) // one whole day
 */
export function dayRange(from: [field: string, value: string], to: [string, string]): DayRange {
  const start = parseDay(...from);
  const last = parseDay(...to);
  if (start !== undefined && last !== undefined && start > last) {
    throw new WardenError('WARDEN_VALIDATION', [`${from[0]} is after ${to[0]}`], {
      field: from[0],
      where: 'querystring',
    });
  }
  return {
    ...(start !== undefined ? { from: start } : {}),
    ...(last !== undefined ? { to: last + DAY_MS } : {}),
  };
}
