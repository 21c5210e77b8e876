/**
 * @module http/step-up-routes
 * `POST /api/auth/step-up` { password }: a JSON client's answer to WARDEN_STEP_UP_REQUIRED.
 * The password of the signed-in user, checked within the password-attempt limits; when right,
 * sensitive console actions go through for the step-up window. A wrong one answers 401
 * WARDEN_AUTH_INVALID_CREDENTIALS and changes nothing.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WardenError } from '../errors.js';
import { requireCsrf, requireUser } from './auth.js';
import { confirmPassword } from './step-up.js';

export const stepUpRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, csrf, stepUps } = app.warden;

  app.post(
    '/step-up',
    {
      schema: {
        body: Type.Object(
          { password: Type.String({ minLength: 1, maxLength: 1024 }) },
          { additionalProperties: false },
        ),
      },
      onRequest: requireUser,
      preHandler: requireCsrf({ audit, csrf }),
    },
    async (request, reply) => {
      if (!(await confirmPassword(request, reply, request.body.password))) {
        throw new WardenError('WARDEN_AUTH_INVALID_CREDENTIALS', ['password']);
      }
      const until = await stepUps.validUntil(request.auth!.session.id);
      return { steppedUp: true, validUntil: until };
    },
  );
};
