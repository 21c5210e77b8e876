/**
 * @module admin/ended-export
 * The rows of an ended-sessions export: the tab's columns (who, when, how, why, by whom,
 * from where), as CSV records or JSON objects, newest first as the tab lists them.
 */

import type { HistoryRow } from './ended-query.js';
import { actorLabel } from './ended-view.js';
import { csvLine } from './export-csv.js';
import { parseUserAgent } from './user-agent.js';

export const ENDED_CSV_HEADER = [
  'session_id',
  'user_id',
  'email',
  'role',
  'ended_at',
  'kind',
  'reason',
  'ended_by',
  'actor_id',
  'ip',
  'browser',
  'os',
  'user_agent',
];

const iso = (at: number) => new Date(at).toISOString();

function client(userAgent: string | null) {
  return userAgent ? parseUserAgent(userAgent) : { browser: '', os: '' };
}

/** One CSV record; a deleted user is named as the table names them. */
export function endedCsvLine(r: HistoryRow): string {
  const { browser, os } = client(r.userAgent);
  return csvLine([
    r.sessionId,
    r.userId,
    r.email ?? `(deleted user ${r.userId})`,
    r.role,
    iso(r.at),
    r.kind,
    r.reason,
    actorLabel(r),
    r.actorId,
    r.ip,
    browser,
    os,
    r.userAgent,
  ]);
}

/** One JSON object: the tab's JSON row, with the time as ISO 8601 and who ended it in words. */
export function endedJson(r: HistoryRow): string {
  const { browser, os } = client(r.userAgent);
  return JSON.stringify({
    id: r.id,
    sessionId: r.sessionId,
    userId: r.userId,
    email: r.email,
    role: r.role,
    endedAt: iso(r.at),
    kind: r.kind,
    reason: r.reason,
    endedBy: actorLabel(r),
    actorId: r.actorId,
    actorEmail: r.actorEmail,
    ip: r.ip,
    browser,
    os,
    userAgent: r.userAgent,
  });
}
