/**
 * @module pages/password
 * A signed-in person changes their own password: `GET/POST /me/password` (the form) and
 * `POST /api/auth/password` (JSON). The current password is required (and counted like a
 * sign-in attempt), the new one must pass the same rules as at registration. The change ends
 * every other session of the person (history reason `password_changed`) and keeps the one
 * that made it; it also counts as entering the password for step-up.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.js';
import { logAuthEvent } from '../events/log-lines.js';
import { requireCsrf, requireUser } from '../http/auth.js';
import { setFlash } from '../http/flash.js';
import {
  hashPassword,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
  verifyPassword,
} from '../users/passwords.js';
import { type PasswordField, passwordView } from './password-view.js';

const REASON = 'password_changed';
const Secret = Type.String({ maxLength: 1024 });

function invalid(field: PasswordField, problem: string): WardenError {
  return new WardenError('WARDEN_VALIDATION', [`${field} ${problem}`], { field });
}

/**
 * Checks and changes the signed-in person's password, then ends their other sessions.
 * Throws a 400 naming the field, or 429 when wrong passwords used up the allowance.
 */
export async function changeOwnPassword(
  request: FastifyRequest,
  reply: FastifyReply,
  current: string,
  next: string,
): Promise<{ ended: number; failed: number }> {
  const { users, sessions, attempts, stepUps, clock } = request.server.warden;
  const { user: viewer, session } = request.auth!;

  const user = await attempts.check(
    request,
    reply,
    viewer.email,
    async () => {
      const found = await users.repo.findById(viewer.id);
      if (!found || !(await verifyPassword(current, found.password_hash))) {
        throw invalid('current_password', 'is not your current password');
      }
      return found;
    },
    (err) => err instanceof WardenError && err.details?.field === 'current_password',
  );
  const problem = passwordProblem(next);
  if (problem) throw invalid('new_password', problem);
  if (next === current) throw invalid('new_password', 'must differ from the current one');

  await users.repo.setPassword(user.id, await hashPassword(next), clock());
  const report = await sessions.revokeUser(user.id, {
    actorId: user.id,
    ownSessionId: session.id,
    reason: REASON,
  });
  await stepUps.record(session.id);
  logAuthEvent(request.log, {
    event: 'password_changed',
    userId: user.id,
    sessionId: session.id,
    reason: REASON,
    ended: report.counts.revoked,
  });
  return { ended: report.counts.revoked, failed: report.counts.failed };
}

function summary(ended: number, failed: number): string {
  const others = `${ended} other session${ended === 1 ? '' : 's'} ended`;
  return failed > 0
    ? `Your password is changed; ${others}, ${failed} could not be ended yet: sign them out from My sessions.`
    : `Your password is changed; ${others}.`;
}

export const passwordPages: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, csrf } = app.warden;
  app.addHook('onRequest', requireUser);

  app.get('/password', async (_request, reply) =>
    reply.page({
      title: 'Change password',
      nav: 'password',
      body: passwordView({ csrfToken: reply.csrfToken(), minPasswordLength: MIN_PASSWORD_LENGTH }),
    }),
  );

  app.post(
    '/password',
    {
      schema: {
        body: Type.Object({
          _csrf: Type.Optional(Type.String({ maxLength: 512 })),
          current_password: Secret,
          new_password: Secret,
          confirm_password: Secret,
        }),
      },
      preHandler: requireCsrf({ audit, csrf }),
    },
    async (request, reply) => {
      const body = request.body;
      const again = (status: number, err: WardenError) => {
        const field = err.details?.field as PasswordField | undefined;
        return reply.code(status).page({
          title: 'Change password',
          nav: 'password',
          body: passwordView({
            csrfToken: reply.csrfToken(),
            minPasswordLength: MIN_PASSWORD_LENGTH,
            ...(field
              ? {
                  fieldError: { field, message: err.message.replace(/^Invalid request: \w+ /, '') },
                }
              : { error: err.message }),
          }),
        });
      };

      try {
        if (body.new_password !== body.confirm_password) {
          throw invalid('confirm_password', 'does not match the new password');
        }
        const { ended, failed } = await changeOwnPassword(
          request,
          reply,
          body.current_password,
          body.new_password,
        );
        setFlash(reply, {
          kind: failed > 0 ? 'warning' : 'success',
          message: summary(ended, failed),
        });
        return reply.redirect('/me/sessions', 303);
      } catch (err) {
        if (err instanceof WardenError && err.status < 500) return again(err.status, err);
        throw err;
      }
    },
  );
};

export const passwordApi: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, csrf } = app.warden;

  app.post(
    '/password',
    {
      onRequest: requireUser,
      schema: {
        body: Type.Object(
          { current_password: Secret, new_password: Secret },
          { additionalProperties: false },
        ),
      },
      preHandler: requireCsrf({ audit, csrf }),
    },
    async (request, reply) => {
      const result = await changeOwnPassword(
        request,
        reply,
        request.body.current_password,
        request.body.new_password,
      );
      return { changed: true, sessionsEnded: result.ended, failed: result.failed };
    },
  );
};
