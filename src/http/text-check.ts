/**
 * @module http/text-check
 * Text that no store keeps as it was sent is refused before any handler, with the field named,
 * on every store alike (on every route; an address no route serves is a 404 whatever it holds):
 * - the character U+0000, which PostgreSQL refuses in text with an encoding error (a sign-in, a
 *   filter or a saved view met it as a 500), and which SQLite stores, where most tools stop
 *   reading the value;
 * - half of a surrogate pair (`"\ud800"` in JSON), which SQLite stores as three replacement
 *   characters and PostgreSQL as one, so the two stores would differ.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';
import { checkFirst } from './route-checks.js';

export const NUL_PROBLEM = 'must not contain the character U+0000';
export const SURROGATE_PROBLEM = 'must be valid Unicode text (it holds half of a surrogate pair)';
const LONE_SURROGATE = /\p{Cs}/u;
const MAX_PATH = 100;

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return NUL_PROBLEM;
  return LONE_SURROGATE.test(text) ? SURROGATE_PROBLEM : undefined;
}

/**
 * The first field (dotted path, '' for the value itself) whose text, or key, no store keeps as
 * sent, and why. A walk with a list of its own, not a recursion: a 256 KB JSON body can nest a
 * hundred thousand levels deep.
 */
export function badTextField(value: unknown): { field: string; problem: string } | undefined {
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [inner, path] = next;
    if (typeof inner === 'string') {
      const problem = textProblem(inner);
      if (problem) return { field: path, problem };
      continue;
    }
    if (inner === null || typeof inner !== 'object') continue;
    for (const [key, child] of Object.entries(inner).reverse()) {
      const where = path === '' ? key : `${path}.${key}`;
      const problem = textProblem(key);
      if (problem) return { field: where, problem };
      pending.push([child, where]);
    }
  }
  return undefined;
}

/**
 * Adds the check to a route (from an onRoute hook), ahead of the route's other checks but after
 * its CSRF check (csrfFirst moves that in front): a forged request is refused as forged
 * whatever its text.
 */
export function checkText(route: RouteOptions): void {
  checkFirst(route, refuseBadText);
}

async function refuseBadText(request: FastifyRequest): Promise<void> {
  for (const where of ['params', 'query', 'body'] as const) {
    const bad = badTextField(request[where]);
    if (bad === undefined) continue;
    // A bare string body has no field name: the body is the field; a wildcard route's
    // parameter (`*`, the static files') is the address. A path nested deeper than anyone
    // reads is cut, so the answer and its log line stay short.
    const whole =
      bad.field === ''
        ? where
        : where === 'params' && bad.field === '*'
          ? 'the address'
          : bad.field;
    const named = whole.length > MAX_PATH ? `${whole.slice(0, MAX_PATH)}…` : whole;
    throw new WardenError('WARDEN_VALIDATION', [`${named} ${bad.problem}`], {
      field: named,
      // As a schema's refusal names the part (Fastify's validation context).
      where: where === 'query' ? 'querystring' : where,
    });
  }
}
