/**
 * @module admin/export-routes
 * `GET /admin/sessions/export.csv` and `/admin/sessions/export.json`: every session the
 * sessions table's filters match (all pages), streamed from the store a chunk at a time.
 * Each export is audited with its row count.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { exportFilename, framing, sendExport } from './export-csv.js';
import {
  type ExportRow,
  rowChunks,
  SESSION_CSV_HEADER,
  sessionChunks,
  sessionCsvLine,
  sessionJson,
} from './export-sessions.js';
import {
  DEFAULT_PER_PAGE,
  filterSearch,
  readFilters,
  SessionFilterSchema,
  toStoreQuery,
} from './session-filters.js';

export const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { sessions, users, audit, clock } = app.warden;

  for (const format of ['csv', 'json'] as const) {
    app.get(
      `/sessions/export.${format}`,
      // No automatic HEAD: it would run (and audit) a whole export for nothing.
      { schema: { querystring: SessionFilterSchema }, exposeHeadRoute: false },
      async (request, reply) => {
        const filters = readFilters(request.query);
        const now = clock();
        // A snapshot: the table's own when its page links carried one, else this moment, so
        // sessions signing in during the export do not join it.
        const query = toStoreQuery({ ...filters, asOf: filters.asOf ?? now }, now);
        const search = filterSearch({ ...filters, page: 1, perPage: DEFAULT_PER_PAGE });

        return sendExport<ExportRow>(request, reply, audit, {
          action: 'sessions.export',
          format,
          filename: exportFilename('sessions', now, format),
          filters: search.slice(1),
          batches: rowChunks(sessionChunks(sessions.store, query), users.repo, now),
          ...framing(format, { header: SESSION_CSV_HEADER, row: sessionCsvLine }, sessionJson),
        });
      },
    );
  }
};
