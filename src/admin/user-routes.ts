/**
 * @module admin/user-routes
 * The console's users page and the approval workflow. Disabling a user ends every
 * one of their sessions at once; a role change takes effect on their next request,
 * because each request reads the user afresh.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ROLES, type Role, USER_STATUSES, type UserStatus } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { actorOf, requireCsrf } from '../http/auth.js';
import { done, wantsJson } from '../http/respond.js';
import { safeNext } from '../http/sign-in.js';
import { publicUser } from '../users/user-repo.js';
import { type UserFilters, usersView } from './users-view.js';

const PER_PAGE = 50;
const UserIdParam = Type.Object({ userId: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });
const FormBody = Type.Object({
  _csrf: Type.Optional(Type.String({ maxLength: 512 })),
  return_to: Type.Optional(Type.String({ maxLength: 2048 })),
});

const TRANSITIONS: Record<string, { to: UserStatus; from: readonly UserStatus[] }> = {
  approve: { to: 'approved', from: ['pending'] },
  reject: { to: 'rejected', from: ['pending'] },
  disable: { to: 'disabled', from: ['approved', 'pending'] },
  enable: { to: 'approved', from: ['disabled', 'rejected'] },
};

function back(body: { return_to?: string } | undefined): string {
  const target = safeNext(body?.return_to);
  return target.startsWith('/admin/') ? target : '/admin/users';
}

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users, sessions, audit, csrf, clock } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });

  app.get(
    '/users',
    {
      schema: {
        querystring: Type.Object({
          email: Type.Optional(Type.String({ maxLength: 254 })),
          role: Type.Optional(Type.Union([Type.Literal(''), ...ROLES.map((r) => Type.Literal(r))])),
          status: Type.Optional(
            Type.Union([Type.Literal(''), ...USER_STATUSES.map((s) => Type.Literal(s))]),
          ),
          page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        }),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filters: UserFilters = {
        email: (q.email ?? '').trim(),
        role: q.role ?? '',
        status: q.status ?? '',
        page: q.page ?? 1,
        perPage: PER_PAGE,
      };
      const result = await users.repo.list({
        email: filters.email || undefined,
        role: (filters.role || undefined) as Role | undefined,
        status: (filters.status || undefined) as UserStatus | undefined,
        offset: (filters.page - 1) * PER_PAGE,
        limit: PER_PAGE,
      });
      if (wantsJson(request)) return { total: result.total, items: result.items.map(publicUser) };
      return reply.page({
        title: 'Users',
        nav: 'users',
        body: usersView({
          filters,
          users: result.items,
          total: result.total,
          now: clock(),
          selfId: request.auth!.user.id,
          csrfToken: reply.csrfToken(),
        }),
      });
    },
  );

  for (const [action, rule] of Object.entries(TRANSITIONS)) {
    app.post(
      `/users/:userId/${action}`,
      { schema: { params: UserIdParam, body: Type.Optional(FormBody) }, preHandler: csrfChecked },
      async (request, reply) => {
        const started = performance.now();
        const { userId } = request.params;
        const actor = request.auth!.user;
        const user = await users.repo.findById(userId);
        if (!user) throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`]);
        if (user.id === actor.id) {
          throw new WardenError('WARDEN_VALIDATION', ['you cannot change your own status']);
        }
        if (!rule.from.includes(user.status)) {
          throw new WardenError('WARDEN_VALIDATION', [
            `cannot ${action} a user who is ${user.status}`,
          ]);
        }

        const updated = await users.repo.setStatus(userId, rule.to, actor.id, clock());
        let ended = 0;
        if (rule.to === 'disabled') {
          const report = await sessions.revokeUser(userId, {
            actorId: actor.id,
            reason: 'user_disabled',
          });
          ended = report.counts.revoked;
        }
        await audit.write(
          actorOf(request),
          {
            action: `users.${action}`,
            target: `user:${userId}`,
            outcome: 'success',
            details: {
              email: user.email,
              from: user.status,
              to: rule.to,
              counts: { sessionsEnded: ended },
            },
            durationMs: Math.round(performance.now() - started),
          },
          request.log,
        );
        const suffix =
          rule.to === 'disabled' ? `; ${ended} session${ended === 1 ? '' : 's'} ended` : '';
        return done(request, reply, {
          json: { user: publicUser(updated!), sessionsEnded: ended },
          redirectTo: back(request.body),
          flash: { kind: 'success', message: `${user.email} is now ${rule.to}${suffix}.` },
        });
      },
    );
  }

  app.post(
    '/users/:userId/role',
    {
      schema: {
        params: UserIdParam,
        body: Type.Composite([
          FormBody,
          Type.Object({ role: Type.Union(ROLES.map((r) => Type.Literal(r))) }),
        ]),
      },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      const { userId } = request.params;
      const { role } = request.body;
      const actor = request.auth!.user;
      const user = await users.repo.findById(userId);
      if (!user) throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`]);
      if (user.id === actor.id)
        throw new WardenError('WARDEN_VALIDATION', ['you cannot change your own role']);

      const updated = await users.repo.setRole(userId, role, clock());
      await audit.write(
        actorOf(request),
        {
          action: 'users.set_role',
          target: `user:${userId}`,
          outcome: 'success',
          details: { email: user.email, from: user.role, to: role },
        },
        request.log,
      );
      return done(request, reply, {
        json: { user: publicUser(updated!) },
        redirectTo: back(request.body),
        flash: { kind: 'success', message: `${user.email} is now ${role}.` },
      });
    },
  );
};
