/**
 * @module admin/stats-routes
 * `GET /admin/sessions/stats`: the statistics page, or its figures as JSON for the page's own
 * refresh; `POST /admin/sessions/stats/repair`: removes index entries that point to nothing,
 * audited with its counts. The figures are snapshots per section (see stats-service), so
 * polling consoles cost the store one computation per interval.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { reasonOf } from '../errors.js';
import { auditChange, requireCsrf } from '../http/auth.js';
import { done, toWardenError, wantsJson } from '../http/respond.js';
import { requireStepUp } from '../http/step-up.js';
import { StatsService } from './stats-service.js';
import { statsView } from './stats-view.js';

const REPAIR_LABELS: Record<string, string | ((n: number) => string)> = {
  by_created: 'from the creation index',
  by_expiry: 'from the expiry index',
  user_indexes: 'from user indexes',
  ended_sessions: (n) =>
    n === 1
      ? 'copy of an ended session never collected'
      : 'copies of ended sessions never collected',
  orphan_sessions: 'sessions of users who no longer exist',
};

/** "3 removed: 1 from the creation index, 2 from user indexes" */
export function describeRepair(removed: Record<string, number>): string {
  const total = Object.values(removed).reduce((sum, n) => sum + n, 0);
  if (total === 0) return 'Nothing to repair: every entry points to a session.';
  const parts = Object.entries(removed)
    .filter(([, n]) => n > 0)
    .map(([key, n]) => {
      const label = REPAIR_LABELS[key] ?? key;
      return `${n} ${typeof label === 'function' ? label(n) : label}`;
    });
  return `${total} removed: ${parts.join(', ')}.`;
}

export const statsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, database, users, audit, csrf, clock, live } = app.warden;
  const stats = new StatsService({
    store,
    database,
    users: users.repo,
    clock,
    onError: (section, err) =>
      app.log.warn({ event: 'stats_refresh_failed', section, err }, 'statistics not refreshed'),
  });

  // A cleanup changes the expired and health figures that are otherwise kept for 15 s.
  const stop = live.subscribe((event) => {
    if (event.type === 'cleaned_up' || event.type === 'resync') stats.cleanedUp();
    else if (event.type === 'revoked') stats.revoked();
  });
  app.addHook('onClose', async () => stop());

  app.get('/sessions/stats', async (request, reply) => {
    const report = await stats.report();
    reply.header('cache-control', 'no-store');
    if (wantsJson(request)) return report;
    return reply.page({
      title: 'Statistics',
      nav: 'stats',
      body: statsView({ report, csrfToken: reply.csrfToken(), storeKind: store.kind }),
    });
  });

  app.post(
    '/sessions/stats/repair',
    {
      config: { auditAction: 'sessions.repair_indexes' },
      schema: {
        body: Type.Optional(Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 512 })) })),
      },
      preHandler: [requireCsrf({ audit, csrf }), requireStepUp('Repairing the session indexes')],
    },
    async (request, reply) => {
      const started = performance.now();
      let removed: Record<string, number>;
      try {
        removed = await store.repairIndexes();
      } catch (err) {
        // A repair cut short may have removed part of what it found: running it again is safe.
        // A store away (503) gets its row from the console's own hook (admin-routes).
        if (toWardenError(err).status === 503) throw err;
        await auditChange(audit, request, {
          outcome: 'failure',
          details: { reason: reasonOf(err) },
          durationMs: Math.round(performance.now() - started),
        });
        throw err;
      }
      stats.repaired();
      await auditChange(audit, request, {
        outcome: 'success',
        details: { counts: removed },
        durationMs: Math.round(performance.now() - started),
      });
      const message = describeRepair(removed);
      return done(request, reply, {
        json: { removed },
        redirectTo: '/admin/sessions/stats',
        flash: { kind: 'success', message: `Index repair: ${message}` },
      });
    },
  );
};
