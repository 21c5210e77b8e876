/**
 * @module http/request-log
 * One log line per request, written when the answer has gone out, with the fields an
 * operator searches by. Fastify's own controller wrote an "incoming" and a "completed"
 * line per request, the second without the user.
 */
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { levels } from 'pino';
import { clientIp } from './client-ip.js';

export class WardenLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (request.url.startsWith('/static/')) return;
    const status = reply.statusCode;
    // A 503 is the answer while a store is away (with Retry-After; the outage itself is logged
    // once, by the breaker): probes poll through it, and an error per poll would bury real ones.
    const level = status === 503 ? 'warn' : error || status >= 500 ? 'error' : 'info';
    // Under load, at warn, building the line that pino would drop is measurable.
    if (levels.values[level] < (levels.values[request.log.level] ?? 0)) return;
    request.log[level](
      {
        event: 'request',
        method: request.method,
        route: request.routeOptions.url ?? null,
        url: request.url,
        status,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        userId: request.auth?.user.id ?? null,
        ip: clientIp(request),
        ...(error ? { err: error } : {}),
      },
      'request',
    );
  }
}
