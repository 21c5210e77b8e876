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
const MAX_PATH = 100;

/**
 * The first field (dotted path) whose text holds U+0000, or undefined. A walk with a list of
 * its own, not a recursion: a 256 KB JSON body can nest a hundred thousand levels deep.
 */
export function nulField(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [inner, path] = next;
    if (typeof inner === 'string') {
      if (inner.includes('\u0000')) return path;
      continue;
    }
    if (inner === null || typeof inner !== 'object') continue;
    for (const [key, child] of Object.entries(inner).reverse()) {
      const where = path === '' ? key : `${path}.${key}`;
      if (key.includes('\u0000')) return where;
      pending.push([child, where]);
    }
  }
  return undefined;
}

export function installNulCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const where of ['params', 'query', 'body'] as const) {
      const field = nulField(request[where]);
      if (field === undefined) continue;
      // A bare string body has no field name: the body is the field. A path nested deeper
      // than anyone reads is cut, so the answer and its log line stay short.
      const whole = field === '' ? where : field;
      const named = whole.length > MAX_PATH ? `${whole.slice(0, MAX_PATH)}…` : whole;
      throw new WardenError('WARDEN_VALIDATION', [`${named} ${NUL_PROBLEM}`], {
        field: named,
        where,
      });
    }
  });
}
