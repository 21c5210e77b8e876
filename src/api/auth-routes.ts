/**
 * @module api/auth-routes
 * The JSON API other services and scripts use: CSRF token, register, login, logout
 * and "who is this cookie". Every POST needs the `X-CSRF-Token` header from
 * `GET /api/auth/csrf` (with the cookie that call sets).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WardenError } from '../errors.js';
import { logAuthEvent } from '../events/log-lines.js';
import { requireCsrf, requireUser } from '../http/auth.js';
import { whoAmI } from '../http/session-fast-path.js';
import { SIGN_IN_LIMITS, signInRequest, signOutRequest } from '../http/sign-in.js';
import { expiresAt } from '../sessions/session-store.js';

const Credentials = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: SIGN_IN_LIMITS.email }),
    password: Type.String({ minLength: 1, maxLength: SIGN_IN_LIMITS.password }),
  },
  { additionalProperties: false },
);

// Registration's own rules (UserService.register) word an empty or short field, as the
// register form shows them: "password must be at least 10 characters", not "must not be empty".
const NewAccount = Type.Object(
  {
    email: Type.String({ maxLength: SIGN_IN_LIMITS.email }),
    password: Type.String({ maxLength: SIGN_IN_LIMITS.password }),
  },
  { additionalProperties: false },
);

// The answer, for the API document. A plain 200 is usually written by the fast path
// (http/session-fast-path.ts) before this route is reached.
const WhoAmI = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  role: Type.String(),
  session: Type.Object({
    id: Type.String(),
    createdAt: Type.Number(),
    lastSeenAt: Type.Number(),
    expiresAt: Type.Number(),
    absoluteExpiresAt: Type.Number(),
  }),
});

export const authApiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, csrf, users } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });

  app.get('/csrf', async (_request, reply) => ({ token: reply.csrfToken() }));

  app.post(
    '/register',
    { schema: { body: NewAccount }, preHandler: csrfChecked },
    async (request, reply) => {
      const user = await users.register(request.body);
      logAuthEvent(request.log, { event: 'register', userId: user.id });
      return reply.code(201).send({
        user: { id: user.id, email: user.email, role: user.role, status: user.status },
      });
    },
  );

  app.post(
    '/login',
    { schema: { body: Credentials }, preHandler: csrfChecked },
    async (request, reply) => {
      const { user, session } = await signInRequest(
        request,
        reply,
        request.body.email,
        request.body.password,
      );
      return {
        user: { id: user.id, email: user.email, role: user.role },
        session: { id: session.id, createdAt: session.createdAt, expiresAt: expiresAt(session) },
      };
    },
  );

  app.post(
    '/logout',
    {
      schema: { body: Type.Optional(Type.Object({}, { additionalProperties: false })) },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      if (!request.auth && request.storeDown) throw new WardenError('WARDEN_STORE_UNAVAILABLE');
      return { signedOut: await signOutRequest(request, reply) };
    },
  );

  app.get(
    '/session',
    { schema: { response: { 200: WhoAmI } }, preHandler: requireUser },
    async (request) => whoAmI(request.auth!),
  );
};
