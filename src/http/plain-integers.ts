/**
 * @module http/plain-integers
 * Ajv's type coercion takes any string JavaScript reads as a number: "1e3", "0x3e8", " 1000"
 * and "1000.0" all became the integer 1000 in a path or a query, so
 * `POST /admin/sessions/revoke-user/1e3` ended the sessions of user 1000. For each integer field
 * of a route's params and query, a value not written in decimal digits is refused before
 * validation, with the 400 a validation error gets. So is a query field given twice where it
 * takes one value (`?page=2&page=3`), which the schema would call "not an integer".
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';
import { checkFirst } from './route-checks.js';

interface FieldSchema {
  type?: unknown;
}

const DIGITS = /^-?\d+$/;

function fields(schema: unknown, test: (field: FieldSchema) => boolean): string[] {
  const properties = (schema as { properties?: Record<string, FieldSchema> } | undefined)
    ?.properties;
  if (!properties) return [];
  return Object.entries(properties)
    .filter(([, field]) => test(field))
    .map(([name]) => name);
}

const isInteger = (field: FieldSchema) => field.type === 'integer';

/** What an integer field is told when it is not one, here and by the schema (http/respond). */
export const INTEGER_PROBLEM = 'must be a whole number written in digits';

/**
 * The first integer field of `schema` whose value in `values` is text other than decimal
 * digits, or undefined. Empty values are the schema's to refuse.
 */
export function nonDigitField(
  schema: unknown,
  values: Record<string, unknown> | undefined,
): string | undefined {
  return fields(schema, isInteger).find((field) => {
    const value = values?.[field];
    return typeof value === 'string' && value !== '' && !DIGITS.test(value);
  });
}

/** Adds the checks to a route (from an onRoute hook) whose params or query they concern. */
export function checkPlainIntegers(route: RouteOptions): void {
  const parts = [
    { where: 'params', schema: route.schema?.params },
    { where: 'querystring', schema: route.schema?.querystring },
  ].filter((p) => fields(p.schema, isInteger).length > 0);
  const single = fields(route.schema?.querystring, (field) => field.type !== 'array');
  if (parts.length === 0 && single.length === 0) return;

  const check = async (request: FastifyRequest) => {
    const query = request.query as Record<string, unknown> | undefined;
    for (const field of single) {
      if (!Array.isArray(query?.[field])) continue;
      throw new WardenError('WARDEN_VALIDATION', [`${field} must be given once`], {
        field,
        where: 'querystring',
      });
    }
    for (const { where, schema } of parts) {
      const values = (where === 'params' ? request.params : request.query) as
        | Record<string, unknown>
        | undefined;
      const field = nonDigitField(schema, values);
      if (field === undefined) continue;
      throw new WardenError('WARDEN_VALIDATION', [`${field} ${INTEGER_PROBLEM}`], {
        field,
        where,
      });
    }
  };
  checkFirst(route, check);
}
