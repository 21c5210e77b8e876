/**
 * @module pages/my-sessions
 * `/me/sessions`: every signed-in person's own sessions, and ending any other one or all of
 * the others. Not console actions (no audit row); each ending is a history row with the
 * reason `signed_out_elsewhere` and the person as actor, and one log line. A session of
 * somebody else answers exactly as one that does not exist.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { parseDevice, parseUserAgent } from '../admin/user-agent.js';
import { WardenError } from '../errors.js';
import { logAuthEvent } from '../events/log-lines.js';
import { requireCsrf, requireUser } from '../http/auth.js';
import { done, wantsJson } from '../http/respond.js';
import { expiresAt, statusOf } from '../sessions/session-store.js';
import { mySessionsView, type OwnSessionView } from '../views/my-sessions-view.js';

const REASON = 'signed_out_elsewhere';
const SessionIdParam = Type.Object({
  sessionId: Type.String({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }),
});
const FormBody = Type.Optional(
  Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 512 })) }),
);

export const mySessionsPages: FastifyPluginAsyncTypebox = async (app) => {
  const { sessions, audit, csrf, clock } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });
  app.addHook('onRequest', requireUser);

  app.get('/sessions', async (request, reply) => {
    const { user, session: current } = request.auth!;
    const now = clock();
    const own: OwnSessionView[] = (await sessions.store.listByUser(user.id))
      .filter((s) => statusOf(s, now) === 'active')
      .map((s) => ({
        id: s.id,
        current: s.id === current.id,
        device: parseDevice(s.userAgent),
        ...parseUserAgent(s.userAgent),
        ip: s.ip,
        createdAt: s.createdAt,
        lastSeenAt: s.lastSeenAt,
        expiresAt: expiresAt(s),
      }))
      // This device first, then the most recently used.
      .sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt - a.lastSeenAt);

    if (wantsJson(request)) return { items: own };
    return reply.page({
      title: 'My sessions',
      nav: 'my-sessions',
      body: mySessionsView({
        sessions: own,
        now,
        touchIntervalMs: sessions.policy.touchIntervalMs,
        csrfToken: reply.csrfToken(),
      }),
    });
  });

  app.post(
    '/sessions/:sessionId/revoke',
    { schema: { params: SessionIdParam, body: FormBody }, preHandler: csrfChecked },
    async (request, reply) => {
      const { sessionId } = request.params;
      const { user, session: current } = request.auth!;
      if (sessionId === current.id) {
        throw new WardenError(
          'WARDEN_VALIDATION',
          ['sessionId is the session you are using; sign out to end it'],
          { field: 'sessionId' },
        );
      }
      // Somebody else's session, an ended one and an unknown id get the same answer.
      const target = await sessions.store.get(sessionId);
      if (!target || target.userId !== user.id || statusOf(target, clock()) === 'expired') {
        throw new WardenError('WARDEN_NOT_FOUND', ['session']);
      }

      const report = await sessions.revokeIds([sessionId], {
        actorId: user.id,
        ownSessionId: current.id,
        reason: REASON,
      });
      if (report.counts.failed > 0) throw new WardenError('WARDEN_STORE_UNAVAILABLE');
      logAuthEvent(request.log, {
        event: 'sign_out_elsewhere',
        userId: user.id,
        sessionId,
        reason: REASON,
        ended: report.counts.revoked,
      });
      const client = parseUserAgent(target.userAgent);
      return done(request, reply, {
        json: { counts: report.counts, results: report.results },
        redirectTo: '/me/sessions',
        flash: {
          kind: 'success',
          message: `The session on ${client.browser} on ${client.os} (${target.ip}) has ended.`,
        },
      });
    },
  );

  app.post(
    '/sessions/revoke-others',
    { schema: { body: FormBody }, preHandler: csrfChecked },
    async (request, reply) => {
      const { user, session: current } = request.auth!;
      const report = await sessions.revokeUser(user.id, {
        actorId: user.id,
        ownSessionId: current.id,
        reason: REASON,
      });
      const ended = report.counts.revoked;
      logAuthEvent(request.log, {
        event: 'sign_out_elsewhere',
        userId: user.id,
        reason: REASON,
        ended,
      });
      const failed = report.counts.failed;
      const message =
        failed > 0
          ? `${ended} other session${ended === 1 ? '' : 's'} ended, ${failed} could not be ended: try again.`
          : ended === 0
            ? 'There was no other session to end.'
            : `${ended} other session${ended === 1 ? '' : 's'} ended. Only this one is left.`;
      return done(request, reply, {
        json: { counts: report.counts, results: report.results },
        redirectTo: '/me/sessions',
        flash: { kind: failed > 0 ? 'danger' : ended > 0 ? 'success' : 'info', message },
      });
    },
  );
};
