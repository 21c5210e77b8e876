/**
 * @module http/query-names
 * A query parameter a page does not take is refused, not ignored: `?stauts=active` showed every
 * session as though filtered, and a revoke-matching sent with it would have matched them all.
 * Ajv would drop such a name without a word (removeAdditional), so each route whose query has a
 * schema checks the names first, with the 400 any validation error gets.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';

/**
 * Adds the check to a console route (from an onRoute hook) whose query has a schema. Public
 * pages keep ignoring what they do not take: a link to the sign-in page may carry a
 * newsletter's tracking parameters.
 */
export function checkQueryNames(route: RouteOptions): void {
  const properties = (route.schema?.querystring as { properties?: Record<string, unknown> })
    ?.properties;
  if (!properties || !route.url.startsWith('/admin/')) return;
  const known = new Set(Object.keys(properties));
  const listed = [...known].join(', ');

  const check = async (request: FastifyRequest) => {
    const query = request.query as Record<string, unknown> | undefined;
    for (const name of Object.keys(query ?? {})) {
      if (known.has(name)) continue;
      const shown = name.length > 40 ? `${name.slice(0, 40)}…` : name;
      throw new WardenError(
        'WARDEN_VALIDATION',
        [`${shown} is not a parameter of this page (it takes ${listed})`],
        { field: shown, where: 'querystring' },
      );
    }
  };
  route.preValidation = [check, ...[route.preValidation ?? []].flat()];
}
