/**
 * @module http/route-checks
 * The checks Warden adds to each route from its onRoute hook run in the preValidation phase,
 * ahead of whatever the route declared there; the last one added runs first.
 */
import type { RouteOptions } from 'fastify';

type PreValidation = NonNullable<RouteOptions['preValidation']>;

/** Puts `checks`, in their order, ahead of the route's preValidation handlers. */
export function checkFirst(route: RouteOptions, ...checks: PreValidation[]): void {
  route.preValidation = [...checks.flat(), ...[route.preValidation ?? []].flat()];
}
