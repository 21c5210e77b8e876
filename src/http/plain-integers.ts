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

/** Adds the checks to a route (from an onRoute hook) whose params or query they concern. */
export function checkPlainIntegers(route: RouteOptions): void {
  const parts = [
    { where: 'params', names: fields(route.schema?.params, isInteger) },
    { where: 'querystring', names: fields(route.schema?.querystring, isInteger) },
  ].filter((p) => p.names.length > 0);
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
    for (const { where, names } of parts) {
      const values = (where === 'params' ? request.params : request.query) as
        | Record<string, unknown>
        | undefined;
      for (const field of names) {
        const value = values?.[field];
        // Empty values are the schema's to refuse, in its own words.
        if (typeof value !== 'string' || value === '' || DIGITS.test(value)) continue;
        throw new WardenError('WARDEN_VALIDATION', [`${field} must be written in digits`], {
          field,
          where,
        });
      }
    }
  };
  route.preValidation = [check, ...[route.preValidation ?? []].flat()];
}
