/**
 * @module admin/ended-routes
 * `GET /admin/sessions/ended`: the tab beside the live sessions that lists sessions which
 * ended within the history retention, when, why and by whom; and
 * `GET /admin/sessions/ended/export.csv` / `.json`: every ending the tab's filters match (all
 * pages), streamed a batch at a time and audited with its row count.
 *
 * LIMITATION: an expired session gets its history row when cleanup removes it, so its
 * "ended" time is the removal, not the idle or absolute deadline it passed (the row says
 * which). Writing the deadline into the row, a column of session_events, would remove this.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { wantsJson } from '../http/respond.js';
import { DAY_MS } from './dates.js';
import { ENDED_CSV_HEADER, endedCsvLine, endedJson } from './ended-export.js';
import {
  EndedFilterSchema,
  type EndedFilters,
  endedSearch,
  readEndedFilters,
  toHistoryFilter,
} from './ended-filters.js';
import { type HistoryRow, historyBatches, listHistory } from './ended-query.js';
import { endedView } from './ended-view.js';
import { exportFilename, framing, sendExport } from './export-csv.js';
import { exportButtons } from './export-view.js';
import { DEFAULT_PER_PAGE } from './session-filters.js';

/** The filters alone, without page or snapshot: what an export link and its audit row carry. */
const filtersOnly = (f: EndedFilters): EndedFilters => ({
  ...f,
  page: 1,
  perPage: DEFAULT_PER_PAGE,
  asOf: undefined,
});

/** Ended rows the tab counts before it says "more than": see listHistory. */
export const ENDED_COUNT_CAP = 10_000;

export const endedRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, clock, audit, events } = app.warden;
  // The history retention is the session retention: what the console keeps listing as
  // expired, it keeps listing as ended.
  const since = (now: number) => now - config.retentionMs;

  app.get(
    '/sessions/ended',
    { schema: { querystring: EndedFilterSchema } },
    async (request, reply) => {
      const filters = readEndedFilters(request.query);
      const now = clock();
      const offset = (filters.page - 1) * filters.perPage;
      const { items, total, totalCapped } = await listHistory(
        events,
        toHistoryFilter(filters, since(now)),
        { offset, limit: filters.perPage },
        // Counted as far as the page needs and a little beyond, not through the whole history.
        Math.max(ENDED_COUNT_CAP, offset + filters.perPage),
      );

      if (wantsJson(request)) {
        return {
          total,
          totalCapped,
          page: filters.page,
          perPage: filters.perPage,
          since: since(now),
          items,
        };
      }
      // The export takes the moment this page was read, so the file holds the rows counted here.
      const exportSearch = endedSearch({ ...filtersOnly(filters), asOf: filters.asOf ?? now });
      return reply.page({
        title: 'Ended sessions',
        nav: 'sessions',
        body: endedView({
          filters,
          rows: items,
          total,
          totalCapped,
          now,
          retentionDays: Math.round((config.retentionMs / DAY_MS) * 10) / 10,
          toolbar: exportButtons('/admin/sessions/ended/export', exportSearch),
        }),
      });
    },
  );

  for (const format of ['csv', 'json'] as const) {
    app.get(
      `/sessions/ended/export.${format}`,
      // No automatic HEAD: it would run (and audit) a whole export for nothing.
      { schema: { querystring: EndedFilterSchema }, exposeHeadRoute: false },
      async (request, reply) => {
        const filters = readEndedFilters(request.query);
        const now = clock();
        // A snapshot: the page's when the link carried one, else this moment.
        const filter = toHistoryFilter({ ...filters, asOf: filters.asOf ?? now }, since(now));

        return sendExport<HistoryRow>(request, reply, audit, {
          action: 'sessions.ended_export',
          format,
          filename: exportFilename('ended-sessions', now, format),
          filters: endedSearch(filtersOnly(filters)).slice(1),
          batches: historyBatches(events, filter),
          ...framing(format, { header: ENDED_CSV_HEADER, row: endedCsvLine }, endedJson),
        });
      },
    );
  }
};
