/**
 * @module metrics/metrics-routes
 * `GET /metrics` for Prometheus. With METRICS_TOKEN set it needs `Authorization: Bearer
 * <token>`; without, it answers loopback clients only, so a Warden listening on a public
 * address does not publish its figures by default.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.js';
import { PROMETHEUS_CONTENT_TYPE } from './registry.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Equal strings, compared in time that does not depend on where they differ. */
export function sameSecret(given: string, expected: string): boolean {
  // Digests first: timingSafeEqual needs equal lengths, and a length check would leak one.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Why a request may not read the metrics, or null when it may. */
export function metricsRefusal(request: FastifyRequest, token: string | undefined): string | null {
  if (token !== undefined) {
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(request.headers.authorization ?? '');
    return match && sameSecret(match[1]!, token)
      ? null
      : 'requests with the METRICS_TOKEN bearer token';
  }
  // Both the peer and the client address must be loopback: behind a trusted proxy on this
  // machine the client is the one the proxy names, and a forged X-Forwarded-For from a
  // remote peer still comes from a remote socket.
  const peer = request.socket.remoteAddress ?? '';
  return LOOPBACK.has(request.ip) && LOOPBACK.has(peer)
    ? null
    : 'loopback clients (set METRICS_TOKEN to scrape from elsewhere)';
}

export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const { store, metrics, clock, config } = app.warden;

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    const refusal = metricsRefusal(request, config.metricsToken);
    if (refusal) {
      if (config.metricsToken !== undefined) reply.header('www-authenticate', 'Bearer');
      throw new WardenError('WARDEN_METRICS_FORBIDDEN', [refusal]);
    }

    const text = await metrics.render(store, clock());
    return reply.type(PROMETHEUS_CONTENT_TYPE).header('cache-control', 'no-store').send(text);
  });
};
