/**
 * @module admin/audit-routes
 * `GET /admin/audit`: every admin action, newest first, filtered by actor, action and date,
 * paged within a snapshot; `GET /admin/audit/export.csv`: the same filters as a streamed CSV
 * (audited). There is no route that changes or removes an entry.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditRow } from '../db/schema.js';
import { wantsJson } from '../http/respond.js';
import {
  AUDIT_PER_PAGE,
  AuditFilterSchema,
  auditSearch,
  readAuditFilters,
  toAuditQuery,
} from './audit-filters.js';
import { auditView } from './audit-view.js';
import { CSV_BOM, csvLine, exportFilename, sendExport } from './export-csv.js';

const CSV_HEADER = [
  'id',
  'at',
  'actor_email',
  'actor_id',
  'action',
  'target',
  'outcome',
  'ip',
  'details',
  'prev_hash',
  'hash',
];

function parsedDetails(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, clock } = app.warden;

  app.get('/audit', { schema: { querystring: AuditFilterSchema } }, async (request, reply) => {
    const filters = readAuditFilters(request.query);
    const asOf = filters.asOf ?? (await audit.lastId());
    const query = toAuditQuery({ ...filters, asOf });
    const [page, actions] = await Promise.all([
      audit.list({ ...query, offset: (filters.page - 1) * AUDIT_PER_PAGE, limit: AUDIT_PER_PAGE }),
      audit.actions(),
    ]);

    if (wantsJson(request)) {
      return {
        total: page.total,
        page: filters.page,
        perPage: AUDIT_PER_PAGE,
        asOf,
        // As the page says it: an action no entry has ever had is most likely a typo.
        ...(filters.action ? { actionOnRecord: actions.includes(filters.action) } : {}),
        items: page.items.map((r) => ({ ...r, details: parsedDetails(r.details) })),
      };
    }
    return reply.page({
      title: 'Audit log',
      nav: 'audit',
      body: auditView({
        filters,
        rows: page.items,
        total: page.total,
        actions,
        asOf,
        now: clock(),
      }),
    });
  });

  app.get(
    '/audit/export.csv',
    // No automatic HEAD: it would run (and audit) a whole export for nothing.
    { schema: { querystring: AuditFilterSchema }, exposeHeadRoute: false },
    async (request, reply) => {
      const filters = readAuditFilters(request.query);
      const asOf = filters.asOf ?? (await audit.lastId());
      const query = toAuditQuery({ ...filters, asOf });
      return sendExport<AuditRow>(request, reply, audit, {
        action: 'audit.export',
        format: 'csv',
        filename: exportFilename('audit', clock(), 'csv'),
        filters: auditSearch({ ...filters, page: 1 }).slice(1),
        batches: audit.batches(query),
        head: CSV_BOM + csvLine(CSV_HEADER),
        row: (r) =>
          csvLine([
            r.id,
            new Date(Number(r.at)).toISOString(),
            r.actor_email,
            r.actor_id,
            r.action,
            r.target,
            r.outcome,
            r.ip,
            r.details,
            r.prev_hash,
            r.hash,
          ]),
      });
    },
  );
};
