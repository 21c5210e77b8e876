/**
 * @module admin/analytics-routes
 * `GET /admin/analytics`: the user base over a chosen range of UTC days, as charts with
 * their figures as tables (HTML), or as the figures themselves (JSON).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import { WardenError } from '../errors.js';
import { wantsJson } from '../http/respond.js';
import { DAY_MS, type Granularity, UserAnalytics } from '../users/analytics.js';
import { analyticsView } from './analytics-view.js';
import { DayParam, parseDay } from './dates.js';

/** The default range: the last 30 days, today included. */
const DEFAULT_DAYS = 30;
/** Two years of days at most: enough for trends, and a bound on the periods one page draws. */
export const MAX_RANGE_DAYS = 731;

export const AnalyticsQuery = Type.Object({
  from: Type.Optional(DayParam),
  to: Type.Optional(DayParam),
  granularity: Type.Optional(
    Type.Union([Type.Literal(''), Type.Literal('day'), Type.Literal('week')]),
  ),
});

export interface AnalyticsRange {
  /** Start of the first day. */
  from: number;
  /** Start of the day after the last one (exclusive). */
  to: number;
  granularity: Granularity;
}

/** The range a query asks for, with the defaults filled in; a 400 naming the field otherwise. */
export function readRange(q: Static<typeof AnalyticsQuery>, now: number): AnalyticsRange {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const last = parseDay('to', q.to ?? '') ?? today;
  const first = parseDay('from', q.from ?? '') ?? last - (DEFAULT_DAYS - 1) * DAY_MS;
  if (first > last) {
    throw new WardenError('WARDEN_VALIDATION', ['from is after to'], {
      field: 'from',
      where: 'querystring',
    });
  }
  const days = (last - first) / DAY_MS + 1;
  if (days > MAX_RANGE_DAYS) {
    // Named after the end the user set: with no `to`, the range runs to today.
    const field = q.to ? 'to' : 'from';
    const span = q.to ? '' : ' (to today)';
    throw new WardenError(
      'WARDEN_VALIDATION',
      [`${field}: the range${span} is ${days} days long, at most ${MAX_RANGE_DAYS} are allowed`],
      { field, where: 'querystring' },
    );
  }
  return { from: first, to: last + DAY_MS, granularity: q.granularity || 'day' };
}

export const analyticsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { database, clock } = app.warden;
  const analytics = new UserAnalytics(database.db, database.dialect);

  app.get('/analytics', { schema: { querystring: AnalyticsQuery } }, async (request, reply) => {
    const now = clock();
    const report = await analytics.report(readRange(request.query, now), now);
    if (wantsJson(request)) return report;
    return reply.page({ title: 'Analytics', nav: 'analytics', body: analyticsView(report) });
  });
};
