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
  /**
   * No line of its own; the address is read now, while the socket can still tell it (it keeps
   * it once read): a stream's line is written after its client has left (see streamError).
   */
  override incomingRequest(request: FastifyRequest): void {
    void request.raw.socket?.remoteAddress;
  }

  /**
   * A client that goes away ends a streamed answer early: that is how every live-updates stream
   * ends (a console closed or moved on), and how a download is cancelled. Fastify then writes
   * no completion (its line for the close, "stream closed prematurely", had no field to search
   * by), so the request's own line is written here: `cut` for a download the client left.
   */
  override streamError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      super.streamError(error, request, reply);
      return;
    }
    const live = String(reply.getHeader('content-type') ?? '').startsWith('text/event-stream');
    this.#write(request, reply, null, live ? {} : { cut: true });
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    this.#write(request, reply, error, {});
  }

  #write(
    request: FastifyRequest,
    reply: FastifyReply,
    error: Error | null | undefined,
    extra: { cut?: true },
  ): void {
    const status = reply.statusCode;
    // A console page loads half a dozen files: their lines would bury the page's own. One
    // that fails (a file gone after an upgrade, a probe for one that never was) is logged.
    if (status < 400 && request.url.startsWith('/static/')) return;
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
        ...extra,
        ...(error ? { err: error } : {}),
      },
      'request',
    );
  }
}
