/**
 * @module admin/ended-view
 * The ended-sessions tab: when and why each session ended and by whom, with the live table's
 * filters; plus the words for history rows (shared with a user's page) and the tabs that sit
 * above both session tables.
 */

import { ROLES, type SessionEventKind } from '../db/schema.js';
import { html, type SafeHtml, showDirectionControls } from '../views/html.js';
import { ipCellClass, pager, timeCell } from '../views/layout.js';
import { rangeText } from '../views/range.js';
import { type EndedFilters, endedSearch } from './ended-filters.js';
import { ENDING_KINDS, type HistoryRow } from './ended-query.js';
import { parseUserAgent } from './user-agent.js';

const KIND_LABELS: Record<SessionEventKind, string> = {
  signed_in: 'Signed in',
  signed_out: 'Signed out',
  revoked: 'Revoked',
  expired: 'Expired',
  cleaned_up: 'Expired, removed',
};

/** Why a session ended, in words, from `session_events.reason`. */
const REASON_LABELS: Record<string, string> = {
  signed_out: 'signed out',
  revoked: 'revoked by an administrator',
  user_disabled: 'user disabled',
  signed_out_elsewhere: 'ended by its user from another session',
  password_changed: 'password changed',
  role_changed: 'role changed',
  evicted_by_limit: 'evicted by the session limit',
  idle: 'idle timeout',
  absolute: 'absolute deadline',
  expired: 'had already expired',
};

export function kindLabel(kind: SessionEventKind): string {
  return KIND_LABELS[kind] ?? kind;
}

export function reasonLabel(reason: string | null): string {
  if (!reason) return '';
  return REASON_LABELS[reason] ?? reason.replace(/_/g, ' ');
}

// Revocations that only an operator at the `warden` command asks for without being signed in
// (`sessions revoke`, `create-superuser` resetting a password); an eviction is Warden's own.
const COMMAND_LINE_REASONS: ReadonlySet<string | null> = new Set(['revoked', 'password_changed']);

/**
 * Who ended it: the acting person, the user themself for a sign-out, the command line, or
 * Warden for what nobody asked for (a scheduled cleanup, an eviction).
 */
export function actorLabel(
  r: Pick<HistoryRow, 'kind' | 'reason' | 'actorId' | 'actorEmail'>,
): string {
  if (r.actorId !== null) return r.actorEmail ?? `(deleted user ${r.actorId})`;
  if (r.kind === 'signed_out') return 'the user';
  if (r.kind === 'signed_in') return '';
  if (r.kind === 'revoked' && COMMAND_LINE_REASONS.has(r.reason)) return 'the command line';
  return 'Warden';
}

/** The two tabs above the sessions tables. */
export function sessionTabs(current: 'live' | 'ended'): SafeHtml {
  const tab = (key: 'live' | 'ended', href: string, label: string) =>
    html`<li class="nav-item"><a class="nav-link${current === key ? ' active' : ''}" href="${href}"
      ${current === key ? html`aria-current="page"` : ''}>${label}</a></li>`;
  return html`<ul class="nav nav-tabs mb-3" aria-label="Sessions">
  ${tab('live', '/admin/sessions', 'Live sessions')}
  ${tab('ended', '/admin/sessions/ended', 'Ended sessions')}
</ul>`;
}

function option(value: string, label: string, selected: string): SafeHtml {
  return html`<option value="${value}"${value === selected ? html` selected` : ''}>${label}</option>`;
}

function filterForm(f: EndedFilters): SafeHtml {
  return html`<form method="get" action="/admin/sessions/ended" class="row g-2 align-items-end mb-3"
    role="search" aria-label="Filter ended sessions">
  <div class="col-sm-6 col-lg">
    <label class="form-label small mb-0" for="e-email">User email contains</label>
    <input class="form-control form-control-sm" id="e-email" name="email" value="${f.email}" maxlength="254">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="e-role">Role</label>
    <select class="form-select form-select-sm" id="e-role" name="role">
      ${option('all', 'All', f.role)}${ROLES.map((r) => option(r, r, f.role))}
    </select>
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="e-kind">How it ended</label>
    <select class="form-select form-select-sm" id="e-kind" name="kind">
      ${option('all', 'Any way', f.kind)}${ENDING_KINDS.map((k) => option(k, KIND_LABELS[k], f.kind))}
    </select>
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="e-from">Ended from</label>
    <input class="form-control form-control-sm" type="date" id="e-from" name="ended_from" value="${f.endedFrom}">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="e-to">Ended to</label>
    <input class="form-control form-control-sm" type="date" id="e-to" name="ended_to" value="${f.endedTo}">
  </div>
  <div class="col-auto d-flex gap-1">
    <button class="btn btn-primary btn-sm" type="submit">Filter</button>
    <a class="btn btn-outline-secondary btn-sm" href="/admin/sessions/ended">Clear</a>
  </div>
</form>`;
}

function pagination(
  f: EndedFilters,
  total: number,
  capped: boolean,
  rows: number,
  now: number,
): SafeHtml | '' {
  const asOf = f.asOf ?? now;
  const href = (p: number) => `/admin/sessions/ended${endedSearch(f, { page: p, asOf })}`;
  if (capped) {
    // The last page is not known: Next stays open while pages come back full.
    return pager('Pages of ended sessions', f.page, f.page + (rows === f.perPage ? 1 : 0), href, {
      open: true,
    });
  }
  return pager('Pages of ended sessions', f.page, Math.max(1, Math.ceil(total / f.perPage)), href);
}

/** "Firefox 133 on Linux", or the raw header (shortened) when the parser knows neither. */
export function clientLabel(userAgent: string | null): string {
  if (!userAgent) return '';
  const c = parseUserAgent(userAgent);
  if (c.browser === 'Unknown' && c.os === 'Unknown') {
    const shown = showDirectionControls(userAgent);
    return shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
  }
  return `${c.browser} on ${c.os}`;
}

/** One history row's "what, why, by whom" cells (the user page uses them too). */
export function eventCells(r: HistoryRow, kindHeader: 'How' | 'What' = 'How'): SafeHtml {
  return html`<td data-label="${kindHeader}">${kindLabel(r.kind)}</td>
  <td data-label="Why" data-reason="${r.reason ?? ''}">${reasonLabel(r.reason)}</td>
  <td class="text-email" data-label="By">${actorLabel(r)}</td>
  <td${ipCellClass(r.ip)} data-label="IP">${r.ip ?? ''}</td>
  <td data-label="Client">${clientLabel(r.userAgent)}</td>
  <td data-label="Session"><code class="small" title="${r.sessionId}">${r.sessionId.slice(0, 12)}…</code></td>`;
}

export function endedView(d: {
  filters: EndedFilters;
  rows: HistoryRow[];
  total: number;
  /** More than `total` match (see listHistory). */
  totalCapped?: boolean;
  now: number;
  retentionDays: number;
  /**
   * Buttons above the table: the place for exports of the current filters (CSV, JSON), which
   * can stream `historyQuery()` of ended-query.ts with `toHistoryFilter()` of these filters.
   */
  toolbar?: SafeHtml;
}): SafeHtml {
  const f = d.filters;
  return html`<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">Sessions</h1>
  <span class="fs-5" id="ended-count" data-total="${d.total}"${d.totalCapped ? html` data-capped` : ''}>${d.totalCapped ? 'more than ' : ''}${d.total.toLocaleString('en')} ended</span>
  <span class="text-body-secondary small">within the history retention (${d.retentionDays} days)</span>
</div>
${sessionTabs('ended')}
${filterForm(f)}
${d.toolbar ? html`<div class="d-flex flex-wrap gap-2 mb-2" id="ended-toolbar">${d.toolbar}</div>` : ''}
<div class="table-responsive">
<table class="table table-sm table-hover align-middle table-stack" id="ended-table">
  <caption class="small">${rangeText({ page: f.page, perPage: f.perPage, total: d.total, capped: d.totalCapped, rows: d.rows.length })}. An expired
    session is listed when cleanup removed it. Hover a time for the exact UTC time.</caption>
  <thead><tr>
    <th scope="col">User</th><th scope="col">Role</th><th scope="col">Ended</th>
    <th scope="col">How</th><th scope="col">Why</th><th scope="col">By</th>
    <th scope="col">IP</th><th scope="col">Client</th><th scope="col">Session</th>
  </tr></thead>
  <tbody>
  ${
    d.rows.length > 0
      ? d.rows.map(
          (r) => html`<tr data-session-id="${r.sessionId}" data-kind="${r.kind}">
    <td class="text-email" data-label="User">${
      r.email === null
        ? `(deleted user ${r.userId})`
        : html`<a href="/admin/users/${r.userId}">${r.email}</a>`
    }</td>
    <td data-label="Role">${r.role ?? ''}</td>
    <td data-label="Ended">${timeCell(r.at, d.now)}</td>
    ${eventCells(r)}
  </tr>`,
        )
      : html`<tr><td colspan="9" class="text-center text-body-secondary py-4">${f.page > 1 ? 'Nothing on this page: it is past the last one.' : 'No ended session matches these filters.'}</td></tr>`
  }
  </tbody>
</table>
</div>
${pagination(f, d.total, d.totalCapped === true, d.rows.length, d.now)}`;
}
