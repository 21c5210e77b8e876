/**
 * @module admin/user-routes
 * The console's users page, a user's own page and the approval workflow. Disabling a user
 * ends every one of their sessions at once; a role change takes effect on their next request,
 * because each request reads the user afresh. Bulk approval and rejection change only the
 * accounts still pending, and say exactly what became of every id.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ROLES, type Role, USER_STATUSES, type UserRow, type UserStatus } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { auditChange, requireCsrf } from '../http/auth.js';
import { setFlash } from '../http/flash.js';
import { done, wantsJson } from '../http/respond.js';
import { safeNext } from '../http/sign-in.js';
import { namingUser, requireStepUp } from '../http/step-up.js';
import { expiresAt, statusOf } from '../sessions/session-store.js';
import { publicUser } from '../users/user-repo.js';
import { DayParam, dayRange } from './dates.js';
import { listHistory } from './ended-query.js';
import { savedViewsMenuFor } from './saved-views.js';
import { parseUserAgent } from './user-agent.js';
import { HISTORY_PER_PAGE, type LiveSessionView, userDetailView } from './user-detail-view.js';
import { DEFAULT_USERS_PER_PAGE, type UserFilters, userSearch, usersView } from './users-view.js';

const MAX_PER_PAGE = 200;
const UserId = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const UserIdParam = Type.Object({ userId: UserId });
const FormBody = Type.Object({
  _csrf: Type.Optional(Type.String({ maxLength: 512 })),
  return_to: Type.Optional(Type.String({ maxLength: 2048 })),
});

const UsersQuery = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254 })),
  role: Type.Optional(Type.Union([Type.Literal(''), ...ROLES.map((r) => Type.Literal(r))])),
  status: Type.Optional(
    Type.Union([Type.Literal(''), ...USER_STATUSES.map((s) => Type.Literal(s))]),
  ),
  from: Type.Optional(DayParam),
  to: Type.Optional(DayParam),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PER_PAGE })),
});

const TRANSITIONS: Record<string, { to: UserStatus; from: readonly UserStatus[] }> = {
  approve: { to: 'approved', from: ['pending'] },
  reject: { to: 'rejected', from: ['pending'] },
  disable: { to: 'disabled', from: ['approved', 'pending'] },
  enable: { to: 'approved', from: ['disabled', 'rejected'] },
};

/** What became of one id in a bulk approval or rejection. */
type DecisionStatus = 'approved' | 'rejected' | 'not_pending' | 'not_found' | 'kept_own';

const DECISION_LABELS: Record<DecisionStatus, string> = {
  approved: 'approved',
  rejected: 'rejected',
  not_pending: 'not pending (left as they were)',
  not_found: 'not found',
  kept_own: 'skipped (your own account)',
};

function back(body: { return_to?: string } | undefined): string {
  const target = safeNext(body?.return_to);
  return target.startsWith('/admin/') ? target : '/admin/users';
}

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users, sessions, audit, csrf, clock, config, events } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });

  app.get('/users', { schema: { querystring: UsersQuery } }, async (request, reply) => {
    const q = request.query;
    const filters: UserFilters = {
      email: (q.email ?? '').trim(),
      role: q.role ?? '',
      status: q.status ?? '',
      from: q.from ?? '',
      to: q.to ?? '',
      page: q.page ?? 1,
      perPage: q.per_page ?? DEFAULT_USERS_PER_PAGE,
    };
    const { from, to } = dayRange(['from', filters.from], ['to', filters.to]);

    const result = await users.repo.list({
      email: filters.email || undefined,
      role: (filters.role || undefined) as Role | undefined,
      status: (filters.status || undefined) as UserStatus | undefined,
      ...(from !== undefined ? { createdFrom: from } : {}),
      // "to" is a whole day, its own included.
      ...(to !== undefined ? { createdTo: to } : {}),
      offset: (filters.page - 1) * filters.perPage,
      limit: filters.perPage,
    });
    if (wantsJson(request)) {
      return {
        total: result.total,
        page: filters.page,
        perPage: filters.perPage,
        items: result.items.map(publicUser),
      };
    }
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
        savedViews: await savedViewsMenuFor(request, reply, 'users', userSearch(filters, 1)),
      }),
    });
  });

  app.get(
    '/users/:userId',
    {
      schema: {
        params: UserIdParam,
        querystring: Type.Object({
          history_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        }),
      },
    },
    async (request, reply) => {
      const { userId } = request.params;
      const historyPage = request.query.history_page ?? 1;
      const user = await users.repo.findById(userId);
      if (!user) throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`], { id: userId });

      const now = clock();
      const [stored, history, deciders] = await Promise.all([
        sessions.store.listByUser(userId),
        listHistory(
          events,
          { userId },
          { offset: (historyPage - 1) * HISTORY_PER_PAGE, limit: HISTORY_PER_PAGE },
        ),
        users.repo.findMany(
          [user.approved_by, user.rejected_by].filter((id): id is number => id !== null),
        ),
      ]);
      const ownId = request.auth!.session.id;
      const live: LiveSessionView[] = stored
        .filter((s) => statusOf(s, now) === 'active')
        .map((s) => ({
          id: s.id,
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          expiresAt: expiresAt(s),
          ip: s.ip,
          ...parseUserAgent(s.userAgent),
          own: s.id === ownId,
        }));

      if (wantsJson(request)) {
        return {
          user: publicUser(user),
          sessions: live.map(({ own, ...s }) => ({ ...s, current: own })),
          history: { total: history.total, page: historyPage, items: history.items },
        };
      }
      const emailOf = (id: number | null) =>
        id === null ? null : (deciders.get(id)?.email ?? `(deleted user ${id})`);
      return reply.page({
        title: user.email,
        nav: 'users',
        body: userDetailView({
          user,
          approvedBy: emailOf(user.approved_by),
          rejectedBy: emailOf(user.rejected_by),
          sessions: live,
          expiredCount: stored.length - live.length,
          history: history.items,
          historyTotal: history.total,
          historyPage,
          now,
          selfId: request.auth!.user.id,
          csrfToken: reply.csrfToken(),
        }),
      });
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/users/bulk-${decision}`,
      {
        config: { auditAction: `users.bulk_${decision}` },
        schema: {
          body: Type.Composite([
            FormBody,
            // A form with one box checked sends one value; the schema coerces it to a list.
            Type.Object({ ids: Type.Optional(Type.Array(UserId, { maxItems: 100_000 })) }),
          ]),
        },
        preHandler: csrfChecked,
      },
      async (request, reply) => {
        const started = performance.now();
        const ids = [...new Set(request.body.ids ?? [])];
        if (ids.length === 0 && !wantsJson(request)) {
          // Sent without the page's script (which says so before sending): back to the page,
          // its filters kept, saying what to do.
          setFlash(reply, { kind: 'warning', message: 'Select at least one user first.' });
          return reply.redirect(back(request.body), 303);
        }
        if (ids.length === 0) {
          throw new WardenError('WARDEN_VALIDATION', ['ids: select at least one user'], {
            field: 'ids',
          });
        }
        if (ids.length > config.bulkRevokeMax) {
          throw new WardenError('WARDEN_BULK_TOO_MANY', [ids.length, config.bulkRevokeMax], {
            max: config.bulkRevokeMax,
          });
        }

        const to = decision === 'approve' ? 'approved' : 'rejected';
        const actor = request.auth!.user;
        const wanted = ids.filter((id) => id !== actor.id);
        const changed = await users.repo.decidePending(wanted, to, actor.id, clock());
        const rest = wanted.filter((id) => !changed.has(id));
        const existing = rest.length > 0 ? await users.repo.findMany(rest) : new Map();
        const results = ids.map((id) => {
          let status: DecisionStatus;
          if (id === actor.id) status = 'kept_own';
          else if (changed.has(id)) status = to;
          else status = existing.has(id) ? 'not_pending' : 'not_found';
          return { id, status };
        });
        const counts = Object.fromEntries(
          [to, 'not_pending', 'not_found', 'kept_own'].map((k) => [
            k,
            results.filter((r) => r.status === k).length,
          ]),
        ) as Record<DecisionStatus, number>;

        await auditChange(audit, request, {
          outcome: 'success',
          details: { counts, [to]: [...changed], asked: ids.length },
          durationMs: Math.round(performance.now() - started),
        });
        const message = (Object.keys(counts) as DecisionStatus[])
          .filter((k) => counts[k] > 0)
          .map((k) => `${counts[k]} ${DECISION_LABELS[k]}`)
          .join(', ');
        return done(request, reply, {
          json: { counts, results },
          redirectTo: back(request.body),
          flash: { kind: changed.size > 0 ? 'success' : 'info', message: `${message}.` },
        });
      },
    );
  }

  /** A change the rules refuse (one's own account, a status it cannot leave): audited, then 400. */
  async function refused(request: FastifyRequest, user: UserRow, reason: string): Promise<never> {
    await auditChange(audit, request, {
      target: `user:${user.id}`,
      outcome: 'refused',
      details: { email: user.email, status: user.status, role: user.role, reason },
    });
    // The user the address names is the one the rules refuse to change so.
    throw new WardenError('WARDEN_VALIDATION', [reason], { field: 'userId', where: 'params' });
  }

  for (const [action, rule] of Object.entries(TRANSITIONS)) {
    app.post(
      `/users/:userId/${action}`,
      {
        config: { auditAction: `users.${action}` },
        schema: { params: UserIdParam, body: Type.Optional(FormBody) },
        preHandler: csrfChecked,
      },
      async (request, reply) => {
        const started = performance.now();
        const { userId } = request.params;
        const actor = request.auth!.user;
        const user = await users.repo.findById(userId);
        if (!user) throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`]);
        if (user.id === actor.id) {
          await refused(request, user, 'you cannot change your own status');
        }
        // Disabling a disabled user ends the sessions left: the status changes before the
        // sessions end, so a disable the session store failed part-way (a 503, or sessions
        // counted not ended) is finished by sending it again.
        const again = rule.to === 'disabled' && user.status === 'disabled';
        if (!again && !rule.from.includes(user.status)) {
          await refused(request, user, `cannot ${action} a user who is ${user.status}`);
        }

        const updated = again
          ? user
          : await users.repo.setStatus(userId, rule.to, actor.id, clock());
        let ended = 0;
        // Sessions the store stopped before ending (a fault part-way): the status has changed,
        // so none of them is let in, but they stay stored until a disable is sent again.
        let notEnded = 0;
        if (rule.to === 'disabled') {
          const report = await sessions.revokeUser(userId, {
            actorId: actor.id,
            reason: 'user_disabled',
          });
          ended = report.counts.revoked;
          notEnded = report.counts.failed;
        }
        await auditChange(audit, request, {
          target: `user:${userId}`,
          outcome: notEnded > 0 ? 'partial' : 'success',
          details: {
            email: user.email,
            from: user.status,
            to: rule.to,
            counts: {
              sessionsEnded: ended,
              ...(notEnded > 0 ? { sessionsNotEnded: notEnded } : {}),
            },
          },
          durationMs: Math.round(performance.now() - started),
        });
        const plural = (n: number) => `${n} session${n === 1 ? '' : 's'}`;
        const suffix =
          rule.to !== 'disabled'
            ? ''
            : notEnded > 0
              ? `; ${plural(ended)} ended, ${plural(notEnded)} could not be: disable again to end them`
              : `; ${plural(ended)} ended`;
        const now = again ? 'was already' : 'is now';
        return done(request, reply, {
          json: {
            user: publicUser(updated!),
            sessionsEnded: ended,
            ...(rule.to === 'disabled'
              ? { sessionsNotEnded: notEnded, alreadyDisabled: again }
              : {}),
          },
          redirectTo: back(request.body),
          flash: {
            kind: notEnded > 0 ? 'danger' : 'success',
            message: `${user.email} ${now} ${rule.to}${suffix}.`,
          },
        });
      },
    );
  }

  app.post(
    '/users/:userId/role',
    {
      config: { auditAction: 'users.set_role' },
      schema: {
        params: UserIdParam,
        body: Type.Composite([
          FormBody,
          Type.Object({ role: Type.Union(ROLES.map((r) => Type.Literal(r))) }),
        ]),
      },
      preHandler: [
        csrfChecked,
        requireStepUp(
          namingUser('Making a superuser of'),
          (request) => (request.body as { role?: string } | undefined)?.role === 'superuser',
        ),
      ],
    },
    async (request, reply) => {
      const { userId } = request.params;
      const { role } = request.body;
      const actor = request.auth!.user;
      const user = await users.repo.findById(userId);
      if (!user) throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`]);
      if (user.id === actor.id) {
        await refused(request, user, 'you cannot change your own role');
      }

      // The role it has already: nothing to change, and no change dated (the user's row and
      // every instance's cached copy of it stay as they are). On record all the same.
      const unchanged = user.role === role;
      const updated = unchanged ? user : await users.repo.setRole(userId, role, clock());
      await auditChange(audit, request, {
        target: `user:${userId}`,
        outcome: 'success',
        details: { email: user.email, from: user.role, to: role, ...(unchanged && { unchanged }) },
      });
      return done(request, reply, {
        json: { user: publicUser(updated!), ...(unchanged && { unchanged }) },
        redirectTo: back(request.body),
        flash: unchanged
          ? {
              kind: 'info',
              message: `${user.email} already has the role ${role}: nothing changed.`,
            }
          : { kind: 'success', message: `${user.email} is now ${role}.` },
      });
    },
  );
};
