/**
 * @module admin/export-routes
 * `GET /admin/sessions/export.csv` and `/admin/sessions/export.json`: every session the
 * sessions table's filters match (all pages), streamed from the store a chunk at a time.
 * Each export is audited with its row count.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SqlSessionStore } from '../sessions/sql-store.js';
import { UserRepo } from '../users/user-repo.js';
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
  const { sessions, users, audit, clock, database } = app.warden;
  // Where the server reads SQLite on a thread of its own (db/sqlite-reader) and the sessions
  // are in it, the export's reads go there: at a million sessions they were half of its 16 s,
  // all of it in the thread that answers every other request. What is left here is writing
  // the rows. With Redis sessions the users of a chunk are one indexed read, cheaper here than
  // passed between threads.
  const offThread = database.reads !== database.db && sessions.store.kind === 'sql';
  const exportStore = offThread
    ? new SqlSessionStore(database.reads, database.dialect)
    : sessions.store;
  const exportUsers = offThread ? new UserRepo(database.reads, database.dialect) : users.repo;

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
          batches: rowChunks(sessionChunks(exportStore, query), exportUsers, now),
          ...framing(format, { header: SESSION_CSV_HEADER, row: sessionCsvLine }, sessionJson),
        });
      },
    );
  }
};
