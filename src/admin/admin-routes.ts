/**
 * @module admin/admin-routes
 * The console: one scope, one superuser guard for every route in it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf, requireSuperuser } from '../http/auth.js';
import { notFound, toWardenError } from '../http/respond.js';
import { analyticsRoutes } from './analytics-routes.js';
import { auditRoutes } from './audit-routes.js';
import { endedRoutes } from './ended-routes.js';
import { exportRoutes } from './export-routes.js';
import { liveRoutes } from './live-routes.js';
import { policyRoutes } from './policy-routes.js';
import { captureFilterSchemas } from './saved-views.js';
import { savedViewRoutes } from './saved-views-routes.js';
import { sessionRoutes } from './session-routes.js';
import { statsRoutes } from './stats-routes.js';
import { userRoutes } from './user-routes.js';

export const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // onRequest runs before body parsing and validation, so nobody but a superuser
  // learns anything about a console route, not even which input it wants.
  app.addHook('onRequest', requireSuperuser({ audit: app.warden.audit }));

  // A not-found handler of this scope runs the guard first, so an unknown console path
  // answers nobody but a superuser differently from a known one.
  app.setNotFoundHandler(notFound);

  // A console change that fails before its route wrote the audit row it writes of every other
  // outcome is still on record: input refused (a field or parameter it does not take, a value
  // its schema or its handler refuses: 400), a user or session that is not there (404), and a
  // store that could not serve it (503). Each comes after the CSRF check (csrfFirst), so the
  // row names someone who did send the request. The row goes to the database, which is usually
  // up while Redis is away; when it is away too, a log line.
  const { audit } = app.warden;
  app.decorateRequest('audited', false);
  app.addHook('onError', async (request, _reply, error) => {
    // Only a change someone signed in asked for: a store away can also fail the sign-in check
    // itself, before anyone is known, and anybody can send that request.
    if (request.method === 'GET' || request.method === 'HEAD' || !request.auth) return;
    const { auditAction } = request.routeOptions.config;
    if (request.audited || auditAction === undefined) return;
    const err = toWardenError(error, request.headers['content-type']);
    const refused = err.status === 400;
    if (!refused && err.status !== 404 && err.status !== 503) return;
    const actor = actorOf(request);
    const target = auditedTarget(request);
    try {
      await audit.write(
        actor,
        {
          action: auditAction,
          target,
          outcome: refused ? 'refused' : 'failure',
          // What the change did before the store went away (a cleanup's removals), when known.
          details: { reason: err.message, code: err.code, ...err.details },
        },
        request.log,
      );
    } catch (auditErr) {
      request.log.warn(
        { event: 'audit_lost', action: auditAction, target, actorId: actor.id, err: auditErr },
        'audit row not written',
      );
    }
  });

  app.get('/', async (_request, reply) => reply.redirect('/admin/sessions', 303));
  // Before the pages: saved views check a query against the schema each page declares.
  await app.register(captureFilterSchemas);
  await app.register(sessionRoutes);
  await app.register(statsRoutes);
  await app.register(userRoutes);
  await app.register(analyticsRoutes);
  await app.register(endedRoutes);
  await app.register(liveRoutes);
  await app.register(policyRoutes);
  await app.register(auditRoutes);
  await app.register(exportRoutes);
  await app.register(savedViewRoutes);
};

/** The target as the routes name theirs: a user, a session, or the filters of a matching. */
function auditedTarget(request: FastifyRequest): string | null {
  const params = (request.params ?? {}) as Record<string, unknown>;
  if (params.userId !== undefined) return `user:${String(params.userId)}`;
  if (typeof params.sessionId === 'string') return params.sessionId;
  if (request.routeOptions.url === '/admin/sessions/revoke-matching') {
    const query = new URLSearchParams(request.query as Record<string, string>).toString();
    return query || 'all';
  }
  return null;
}
