/**
 * @module http/plain-integers
 * Ajv's type coercion takes any string JavaScript reads as a number: "1e3", "0x3e8", " 1000"
 * and "1000.0" all became the integer 1000 in a path or a query, so
 * `POST /admin/sessions/revoke-user/1e3` ended the sessions of user 1000. For each integer field
 * of a route's params and query, a value not written in decimal digits is refused before
 * validation, with the 400 a validation error gets.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';

interface FieldSchema {
  type?: unknown;
}

const DIGITS = /^-?\d+$/;

function integerFields(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, FieldSchema> } | undefined)
    ?.properties;
  if (!properties) return [];
  return Object.entries(properties)
    .filter(([, field]) => field.type === 'integer')
    .map(([name]) => name);
}

/** Adds the check to a route (from an onRoute hook) whose params or query hold integers. */
export function checkPlainIntegers(route: RouteOptions): void {
  const parts = [
    { where: 'params', fields: integerFields(route.schema?.params) },
    { where: 'querystring', fields: integerFields(route.schema?.querystring) },
  ].filter((p) => p.fields.length > 0);
  if (parts.length === 0) return;

  const check = async (request: FastifyRequest) => {
    for (const { where, fields } of parts) {
      const values = (where === 'params' ? request.params : request.query) as
        | Record<string, unknown>
        | undefined;
      for (const field of fields) {
        const value = values?.[field];
        // Empty values and repeated fields are the schema's to refuse, in its own words.
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
