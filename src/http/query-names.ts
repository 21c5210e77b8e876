/**
 * @module http/query-names
 * A query parameter a page does not take is refused, not ignored: `?stauts=active` showed every
 * session as though filtered, and a revoke-matching sent with it would have matched them all.
 * Ajv would drop such a name without a word (removeAdditional), so each route whose query has a
 * schema checks the names first, with the 400 any validation error gets.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';
import { CSRF_FIELD } from './csrf.js';
import { checkFirst } from './route-checks.js';

/**
 * Adds the check to a console route (from an onRoute hook) whose query has a schema. Public
 * pages keep ignoring what they do not take: a link to the sign-in page may carry a
 * newsletter's tracking parameters.
 */
export function checkQueryNames(route: RouteOptions): void {
  if (!route.url.startsWith('/admin/')) return;
  const properties = (route.schema?.querystring as { properties?: Record<string, unknown> })
    ?.properties;
  // A console page or action with no query schema takes no parameter at all (the statistics,
  // the policy, the header's figures): `?x=1` there was answered as if it meant something, and
  // a cleanup posted to `?dry_run=1` removed every expired session.
  const known = new Set(Object.keys(properties ?? {}));

  const check = async (request: FastifyRequest) => {
    refuseUnknownNames(
      request.query,
      known,
      'querystring',
      !['GET', 'HEAD'].includes(request.method),
    );
  };
  checkFirst(route, check);
}

/**
 * Throws the 400 for the first name of `values` that `known` lacks (a query's parameters, a
 * body's fields), naming the ones it takes; a long name is cut, so the answer stays short.
 */
export function refuseUnknownNames(
  values: unknown,
  known: ReadonlySet<string>,
  where: 'querystring' | 'body',
  action = false,
): void {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) return;
  const name = Object.keys(values).find((n) => !known.has(n));
  if (name === undefined) return;
  // `?=1` has a name too: the empty one, shown as such rather than as nothing.
  const shown = name === '' ? '""' : name.length > 40 ? `${name.slice(0, 40)}…` : name;
  const of =
    where === 'body'
      ? 'a field of this request'
      : `a parameter of this ${action ? 'action' : 'page'}`;
  // The form's CSRF token is taken, but is not what anyone means to send.
  const named = [...known].filter((n) => n !== CSRF_FIELD);
  const takes = named.length > 0 ? `it takes ${named.join(', ')}` : 'it takes none';
  throw new WardenError('WARDEN_VALIDATION', [`${shown} is not ${of} (${takes})`], {
    field: shown,
    where,
  });
}
