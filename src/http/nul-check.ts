/**
 * @module http/nul-check
 * No field of Warden's takes the character U+0000. PostgreSQL refuses it in text with an encoding
 * error, which a sign-in, a filter or a saved view met as a 500, and SQLite stores it, where most
 * tools stop reading the value at it. A request holding one is refused before its handler, with
 * the field named, on every store alike.
 */
import type { FastifyInstance } from 'fastify';
import { WardenError } from '../errors.js';

export const NUL_PROBLEM = 'must not contain the character U+0000';

/** The first field (dotted path) whose text holds U+0000, or undefined. */
export function nulField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const where = path === '' ? key : `${path}.${key}`;
    if (key.includes('\u0000')) return where;
    const found = nulField(inner, where);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function installNulCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const where of ['params', 'query', 'body'] as const) {
      const field = nulField(request[where]);
      if (field === undefined) continue;
      // A bare string body has no field name: the body is the field.
      const named = field === '' ? where : field;
      throw new WardenError('WARDEN_VALIDATION', [`${named} ${NUL_PROBLEM}`], {
        field: named,
        where,
      });
    }
  });
}
