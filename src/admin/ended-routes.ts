/**
 * @module admin/ended-routes
 * `GET /admin/sessions/ended`: the tab beside the live sessions that lists sessions which
 * ended within the history retention, when, why and by whom.
 *
 * LIMITATION: an expired session gets its history row when cleanup removes it, so its
 * "ended" time is the removal, not the idle or absolute deadline it passed (the row says
 * which). Writing the deadline into the row, a column of session_events, would remove this.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { wantsJson } from '../http/respond.js';
import { EndedFilterSchema, readEndedFilters, toHistoryFilter } from './ended-filters.js';
import { listHistory } from './ended-query.js';
import { endedView } from './ended-view.js';

const DAY_MS = 86_400_000;

export const endedRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { database, config, clock } = app.warden;

  app.get(
    '/sessions/ended',
    { schema: { querystring: EndedFilterSchema } },
    async (request, reply) => {
      const filters = readEndedFilters(request.query);
      const now = clock();
      // The history retention is the session retention: what the console keeps listing as
      // expired, it keeps listing as ended.
      const since = now - config.retentionMs;
      const { items, total } = await listHistory(
        database.db,
        database.dialect,
        toHistoryFilter(filters, since),
        { offset: (filters.page - 1) * filters.perPage, limit: filters.perPage },
      );

      if (wantsJson(request)) {
        return { total, page: filters.page, perPage: filters.perPage, since, items };
      }
      return reply.page({
        title: 'Ended sessions',
        nav: 'sessions',
        body: endedView({
          filters,
          rows: items,
          total,
          now,
          retentionDays: Math.round((config.retentionMs / DAY_MS) * 10) / 10,
        }),
      });
    },
  );
};
