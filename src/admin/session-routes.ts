/**
 * @module admin/session-routes
 * The console's sessions table and its actions. Every action answers a browser form
 * with a redirect back to the same filtered view and a toast, and a JSON client with
 * the outcome of every id. Each is audited and logged once.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.js';
import { auditChange, requireCsrf } from '../http/auth.js';
import { takeFlash } from '../http/flash.js';
import { done, wantsJson } from '../http/respond.js';
import { safeNext } from '../http/sign-in.js';
import { namingUser, requireStepUp } from '../http/step-up.js';
import {
  type BulkRevokeReport,
  type RevokeOptions,
  type RevokeStatus,
  revocationDetails,
  revocationOutcome,
} from '../sessions/session-service.js';
import { tableRow } from './export-sessions.js';
import { savedViewsMenuFor } from './saved-views.js';
import {
  filterSearch,
  readFilters,
  SessionFilterSchema,
  type SessionFilters,
  toStoreQuery,
} from './session-filters.js';
import { revokeMatchingView, type SessionRowView, sessionsView } from './sessions-view.js';

const SessionIdParam = Type.Object({
  sessionId: Type.String({ pattern: '^[0-9a-f]{64}$', maxLength: 64 }),
});
// The sessions page counts its matches up to here and then says "more than": an exact count
// of a broad filter costs what the whole match costs. JSON keeps the exact total (API clients
// page until it), and revoke-matching counts exactly.
const COUNT_UP_TO = 1_000;

// A JSON count. The bound is what keeps out 1e400, which JSON reads as Infinity and a schema's
// integer lets through.
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

const UserIdParam = Type.Object({ userId: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });

/** Fields every action form may carry besides its own. */
const ActionBody = Type.Object({
  _csrf: Type.Optional(Type.String({ maxLength: 512 })),
  return_to: Type.Optional(Type.String({ maxLength: 2048 })),
  include_own: Type.Optional(
    Type.Union([Type.Boolean(), Type.Literal('1'), Type.Literal('on')], {
      description: 'must be true or false (a form sends "on" or "1" when ticked)',
    }),
  ),
  // A row button submits the whole bulk form, checked boxes included; single-row routes
  // ignore them in a form and refuse them in JSON (their config's formOnlyFields).
  ids: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 100_000 })),
});

const LABELS: Record<RevokeStatus, string> = {
  revoked: 'revoked',
  already_ended: 'already ended',
  not_found: 'not found',
  invalid: 'not a session id',
  kept_own: 'kept (your own session)',
  failed: 'failed',
};

/** "1,203 revoked, 1 already ended, 1 not found": counts written as the pages write theirs. */
export function describeCounts(counts: Record<RevokeStatus, number>): string {
  const parts = (Object.keys(LABELS) as RevokeStatus[])
    .filter((k) => counts[k] > 0)
    .map((k) => `${counts[k].toLocaleString('en')} ${LABELS[k]}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing to revoke';
}

function returnTo(body: { return_to?: string } | undefined): string {
  const target = safeNext(body?.return_to);
  return target.startsWith('/admin/') ? target : '/admin/sessions';
}

function includeOwn(body: { include_own?: unknown } | undefined): boolean {
  const v = body?.include_own;
  return v === true || v === '1' || v === 'on';
}

/** Who revokes, and whether their own session may go too (only when they ticked the box). */
function revokeOptions(request: FastifyRequest, reply: FastifyReply): RevokeOptions {
  return {
    actorId: request.auth!.user.id,
    ownSessionId: request.auth!.session.id,
    includeOwn: includeOwn(request.body as { include_own?: unknown } | undefined),
    answered: answerSent(reply),
  };
}

/**
 * The sessions a revoke-matching names. With `as_of` (the confirmation page's moment, which
 * its form carries) they are judged at that instant: sessions that sign in later are left out
 * and those that expire meanwhile still count, so the number typed there still matches on a
 * busy fleet, where it otherwise moved with every session that expired (second helper: four
 * tries in a row refused with status=active). Those that expired meanwhile end with the rest.
 */
function matchingQuery(filters: SessionFilters, now: number) {
  const query = toStoreQuery(filters, now);
  return filters.asOf === undefined ? query : { ...query, now: Math.min(now, filters.asOf) };
}

/**
 * The count typed to confirm revoke-matching: an integer, or a string of decimal digits (a
 * form's field); anything else ("", "1e0", "0x1") confirms nothing.
 */
function confirmedCount(confirm: number | string): number | undefined {
  if (typeof confirm === 'number') return Number.isInteger(confirm) ? confirm : undefined;
  const text = confirm.trim();
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** Settles once the response is written out, or its connection closed before. */
function answerSent(reply: FastifyReply): Promise<void> {
  return new Promise((resolve) => {
    reply.raw.once('finish', resolve);
    reply.raw.once('close', resolve);
  });
}

export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { sessions, audit, csrf, users, clock, config } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });

  /** Audits, logs and answers one revocation of any kind. */
  async function answer(
    request: FastifyRequest,
    reply: Parameters<typeof done>[1],
    target: string | null,
    report: BulkRevokeReport,
    started: number,
    redirectTo: string,
  ) {
    const failed = report.results.filter((r) => r.status === 'failed');
    await auditChange(audit, request, {
      target,
      outcome: revocationOutcome(report.counts),
      details: revocationDetails(report),
      durationMs: Math.round(performance.now() - started),
    });
    const message = describeCounts(report.counts);
    return done(request, reply, {
      json: { counts: report.counts, results: report.results },
      redirectTo,
      flash: {
        kind: report.counts.failed > 0 ? 'danger' : report.counts.revoked > 0 ? 'success' : 'info',
        message:
          report.counts.failed > 0
            ? `${message}. Failed rows stay selected: retry.`
            : `${message}.`,
        keep: failed.map((r) => r.id),
      },
    });
  }

  app.get('/sessions', { schema: { querystring: SessionFilterSchema } }, async (request, reply) => {
    const filters = readFilters(request.query);
    const now = clock();
    const query = toStoreQuery(filters, now);
    const json = wantsJson(request);
    const [page, active] = await Promise.all([
      sessions.store.list({
        ...query,
        offset: (filters.page - 1) * filters.perPage,
        limit: filters.perPage,
        ...(json ? {} : { countUpTo: COUNT_UP_TO }),
      }),
      // "N active in all" is capped too: on the SQL store an exact count reads every session.
      json
        ? sessions.store.counts(now).then((c) => ({ total: c.active, totalCapped: false }))
        : sessions.store.list({
            now,
            status: 'active',
            offset: 0,
            limit: 0,
            countUpTo: COUNT_UP_TO,
          }),
    ]);
    if (page.skipped > 0) {
      // One line per listing, however many entries it skipped; cleanup removes them.
      request.log.warn(
        { event: 'sessions_unreadable', skipped: page.skipped, store: sessions.store.kind },
        'unreadable session entries skipped',
      );
    }
    const owners = await users.repo.findMany(page.items.map((s) => s.userId));
    const ownId = request.auth?.session.id;
    const rows: SessionRowView[] = page.items.map((s) => ({
      ...tableRow(s, owners.get(s.userId), now),
      own: s.id === ownId,
    }));

    if (json) {
      return {
        total: page.total,
        page: filters.page,
        perPage: filters.perPage,
        skipped: page.skipped,
        active: active.total,
        // What the page's links carry as as_of: a client paging on sends it, as they do.
        asOf: filters.asOf ?? now,
        items: rows.map(({ own, ...r }) => ({ ...r, current: own })),
      };
    }
    const flash = takeFlash(request, reply);
    return reply.page({
      title: 'Sessions',
      nav: 'sessions',
      flash,
      body: sessionsView({
        filters,
        rows,
        total: page.total,
        totalCapped: page.totalCapped === true,
        skipped: page.skipped,
        activeCount: active.total,
        activeCapped: active.totalCapped === true,
        now,
        csrfToken: reply.csrfToken(),
        keep: new Set(flash?.keep ?? []),
        savedViews: await savedViewsMenuFor(request, reply, 'sessions', filterSearch(filters)),
      }),
    });
  });

  app.post(
    '/sessions/revoke/:sessionId',
    {
      config: { auditAction: 'sessions.revoke', formOnlyFields: ['ids'] },
      schema: { params: SessionIdParam, body: Type.Optional(ActionBody) },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      const started = performance.now();
      const { sessionId } = request.params;
      const report = await sessions.revokeIds([sessionId], revokeOptions(request, reply));
      if (report.counts.not_found === 1 && wantsJson(request)) {
        await auditChange(audit, request, {
          target: sessionId,
          outcome: 'failure',
          details: { counts: report.counts },
        });
        throw new WardenError('WARDEN_NOT_FOUND', [`session ${sessionId}`], { id: sessionId });
      }
      return answer(request, reply, sessionId, report, started, returnTo(request.body));
    },
  );

  app.post(
    '/sessions/revoke-user/:userId',
    {
      config: { auditAction: 'sessions.revoke_user', formOnlyFields: ['ids'] },
      schema: { params: UserIdParam, body: Type.Optional(ActionBody) },
      preHandler: [csrfChecked, requireStepUp(namingUser('Ending every session of'))],
    },
    async (request, reply) => {
      const started = performance.now();
      const { userId } = request.params;
      const user = await users.repo.findById(userId);
      if (!user) {
        await auditChange(audit, request, {
          target: `user:${userId}`,
          outcome: 'failure',
          details: { reason: 'no such user' },
        });
        throw new WardenError('WARDEN_NOT_FOUND', [`user ${userId}`], { id: userId });
      }

      const report = await sessions.revokeUser(userId, revokeOptions(request, reply));
      return answer(request, reply, `user:${userId}`, report, started, returnTo(request.body));
    },
  );

  app.post(
    '/sessions/bulk-revoke',
    {
      config: { auditAction: 'sessions.bulk_revoke' },
      schema: { body: ActionBody },
      preHandler: [
        csrfChecked,
        // Past the limit the handler refuses anyway; no password is asked for that.
        requireStepUp('Revoking many sessions at once', (request) => {
          const n = (request.body as { ids?: unknown[] } | undefined)?.ids?.length ?? 0;
          return n > config.stepUpBulkThreshold && n <= config.bulkRevokeMax;
        }),
      ],
    },
    async (request, reply) => {
      const started = performance.now();
      const ids = request.body.ids ?? [];
      if (ids.length === 0) {
        throw new WardenError('WARDEN_VALIDATION', ['ids: select at least one session'], {
          field: 'ids',
        });
      }
      if (ids.length > config.bulkRevokeMax) {
        throw new WardenError('WARDEN_BULK_TOO_MANY', [ids.length, config.bulkRevokeMax], {
          max: config.bulkRevokeMax,
        });
      }
      const report = await sessions.revokeIds(ids, revokeOptions(request, reply));
      return answer(request, reply, null, report, started, returnTo(request.body));
    },
  );

  app.get(
    '/sessions/revoke-matching',
    { schema: { querystring: SessionFilterSchema } },
    async (request, reply) => {
      const now = clock();
      // The count is of this instant; the form carries it back as `as_of` (see matchingQuery).
      const filters = { ...readFilters(request.query), asOf: request.query.as_of ?? now };
      const total = await sessions.countMatching(matchingQuery(filters, now));
      if (wantsJson(request)) return { total, asOf: filters.asOf };
      return reply.page({
        title: 'Revoke matching sessions',
        nav: 'sessions',
        body: revokeMatchingView({ filters, total, csrfToken: reply.csrfToken() }),
      });
    },
  );

  app.post(
    '/sessions/revoke-matching',
    {
      config: { auditAction: 'sessions.revoke_matching' },
      schema: {
        querystring: SessionFilterSchema,
        body: Type.Composite([
          ActionBody,
          Type.Object({
            // The string first: Ajv would coerce "3.0" or "" into the integer branch.
            confirm: Type.Union([Type.String({ maxLength: 20 }), Count], {
              description: 'must be the number of matching sessions, in digits',
            }),
          }),
        ]),
      },
      preHandler: [csrfChecked, requireStepUp('Revoking every session that matches the filters')],
    },
    async (request, reply) => {
      const started = performance.now();
      const filters: SessionFilters = readFilters({ ...request.query, page: 1 });
      const query = matchingQuery(filters, clock());
      const total = await sessions.countMatching(query);
      const confirm = confirmedCount(request.body.confirm);
      const target = new URLSearchParams(request.query as Record<string, string>).toString();

      if (confirm !== total) {
        await auditChange(audit, request, {
          target: target || 'all',
          outcome: 'failure',
          details: {
            reason: 'the confirmation does not match the count',
            confirm: String(request.body.confirm),
            matching: total,
          },
        });
        const err = new WardenError(
          'WARDEN_CONFIRM_MISMATCH',
          [String(request.body.confirm), total],
          {
            matching: total,
          },
        );
        if (wantsJson(request)) throw err;
        return reply.code(400).page({
          title: 'Revoke matching sessions',
          nav: 'sessions',
          body: revokeMatchingView({
            filters,
            total,
            csrfToken: reply.csrfToken(),
            error: err.message,
          }),
        });
      }

      const report = await sessions.revokeMatching(query, revokeOptions(request, reply));
      return answer(
        request,
        reply,
        target || 'all',
        report,
        started,
        // The list as it is now: the confirmation's moment would hide every later sign-in.
        `/admin/sessions${filterSearch({ ...filters, asOf: undefined })}`,
      );
    },
  );

  app.post(
    '/sessions/cleanup-expired',
    {
      config: {
        auditAction: 'sessions.cleanup_expired',
        // Its button on the sessions page submits the bulk form.
        formOnlyFields: ['ids', 'include_own'],
      },
      schema: { body: Type.Optional(ActionBody) },
      preHandler: [csrfChecked, requireStepUp('Removing every expired session')],
    },
    async (request, reply) => {
      const started = performance.now();
      const removed = await sessions.cleanupExpired(clock(), request.auth!.user.id);
      const unreadable = await sessions.cleanupUnreadable();
      await auditChange(audit, request, {
        outcome: 'success',
        details: { counts: { removed, unreadable } },
        durationMs: Math.round(performance.now() - started),
      });
      return done(request, reply, {
        json: { removed, unreadable },
        redirectTo: returnTo(request.body),
        flash: { kind: 'success', message: cleanedUpMessage(removed, unreadable) },
      });
    },
  );
};

/** The console's answer to a cleanup, its counts written as the pages write theirs (1,234). */
export function cleanedUpMessage(removed: number, unreadable: number): string {
  const count = (n: number) => n.toLocaleString('en');
  const alsoUnreadable =
    unreadable > 0
      ? ` and ${count(unreadable)} unreadable entr${unreadable === 1 ? 'y' : 'ies'}`
      : '';
  return `${count(removed)} expired session${removed === 1 ? '' : 's'}${alsoUnreadable} cleaned up.`;
}
