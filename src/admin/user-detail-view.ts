/**
 * @module admin/user-detail-view
 * One user's page in the console: who they are and how their account was decided, the
 * actions on the account, their live sessions (each with a revoke button, and one to end them
 * all) and their session history, newest first.
 */
import type { UserRow } from '../db/schema.js';
import { html, type SafeHtml } from '../views/html.js';
import { pageItem, timeCell } from '../views/layout.js';
import type { HistoryRow } from './ended-query.js';
import { eventCells } from './ended-view.js';
import { STATUS_BADGE, userActions } from './users-view.js';

export const HISTORY_PER_PAGE = 50;

export interface LiveSessionView {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string;
  browser: string;
  os: string;
  /** The session of the superuser looking at the page. */
  own: boolean;
}

export interface UserDetailData {
  user: UserRow;
  approvedBy: string | null;
  rejectedBy: string | null;
  sessions: LiveSessionView[];
  /** Expired sessions still stored, waiting for cleanup. */
  expiredCount: number;
  history: HistoryRow[];
  historyTotal: number;
  historyPage: number;
  now: number;
  selfId: number;
  csrfToken: string;
}

function fact(label: string, value: SafeHtml | string): SafeHtml {
  return html`<dt class="col-sm-4 col-lg-3">${label}</dt><dd class="col-sm-8 col-lg-9">${value}</dd>`;
}

function when(at: number | null, now: number, by: string | null): SafeHtml | string {
  if (at === null) return '—';
  return html`${timeCell(at, now)}${by ? html` by ${by}` : ''}`;
}

function hidden(csrf: string, back: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="return_to" value="${back}">`;
}

function liveSessions(d: UserDetailData, back: string): SafeHtml {
  const u = d.user;
  const others = d.sessions.filter((s) => !s.own).length;
  return html`<section class="mb-4" aria-labelledby="live-title">
  <div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
    <h2 class="h5 mb-0" id="live-title">Live sessions</h2>
    <span id="live-count" data-total="${d.sessions.length}">${d.sessions.length} active</span>
    ${
      others > 0
        ? html`<form method="post" action="/admin/sessions/revoke-user/${u.id}" class="d-inline">
      ${hidden(d.csrfToken, back)}
      <button class="btn btn-outline-danger btn-sm text-break" type="submit"
        data-confirm="End ${others === 1 ? 'the 1 session' : `all ${others} sessions`} of ${u.email}?">Revoke all sessions of ${u.email}</button></form>`
        : ''
    }
    ${
      d.expiredCount > 0
        ? html`<span class="small text-body-secondary">${d.expiredCount} expired, not yet cleaned up</span>`
        : ''
    }
  </div>
  <div class="table-responsive"><table class="table table-sm align-middle table-stack" id="user-sessions">
    <thead><tr><th scope="col">Created</th><th scope="col">Last seen</th><th scope="col">Expires</th>
      <th scope="col">IP</th><th scope="col">Browser</th><th scope="col">OS</th><th scope="col">Actions</th></tr></thead>
    <tbody>
    ${d.sessions.map(
      (s) => html`<tr data-session-id="${s.id}">
      <td data-label="Created">${timeCell(s.createdAt, d.now)}</td>
      <td data-label="Last seen">${timeCell(s.lastSeenAt, d.now)}</td>
      <td data-label="Expires">${timeCell(s.expiresAt, d.now)}</td>
      <td class="text-nowrap" data-label="IP">${s.ip}</td>
      <td data-label="Browser">${s.browser}</td><td data-label="OS">${s.os}</td>
      <td data-actions>${
        s.own
          ? html`<span class="badge text-bg-info">your current session</span>`
          : html`<form method="post" action="/admin/sessions/revoke/${s.id}" class="d-inline">
        ${hidden(d.csrfToken, back)}
        <button class="btn btn-outline-danger btn-sm" type="submit">Revoke</button></form>`
      }</td>
    </tr>`,
    )}
    ${d.sessions.length === 0 ? html`<tr><td colspan="7" class="text-center text-body-secondary py-3">No live session.</td></tr>` : ''}
    </tbody>
  </table></div>
</section>`;
}

function history(d: UserDetailData): SafeHtml {
  const pages = Math.max(1, Math.ceil(d.historyTotal / HISTORY_PER_PAGE));
  const link = (p: number, label: string, disabled: boolean) =>
    pageItem(
      `/admin/users/${d.user.id}${p === 1 ? '' : `?history_page=${p}`}#history-title`,
      label,
      { disabled },
    );
  return html`<section aria-labelledby="history-title">
  <div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
    <h2 class="h5 mb-0" id="history-title">Session history</h2>
    <span id="history-count" data-total="${d.historyTotal}">${d.historyTotal} events</span>
  </div>
  <div class="table-responsive"><table class="table table-sm align-middle table-stack" id="user-history">
    <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">By</th>
      <th scope="col">IP</th><th scope="col">Client</th><th scope="col">Session</th></tr></thead>
    <tbody>
    ${d.history.map(
      (r) => html`<tr data-kind="${r.kind}" data-session-id="${r.sessionId}">
      <td data-label="When">${timeCell(r.at, d.now)}</td>${eventCells(r, 'What')}</tr>`,
    )}
    ${d.history.length === 0 ? html`<tr><td colspan="7" class="text-center text-body-secondary py-3">${d.historyTotal > 0 ? html`Page ${d.historyPage} is past the last of these events: <a href="/admin/users/${d.user.id}#history-title">the newest</a>.` : 'No session history.'}</td></tr>` : ''}
    </tbody>
  </table></div>
  ${
    pages > 1
      ? html`<nav aria-label="Pages of session history"><ul class="pagination pagination-sm">
    ${link(Math.max(1, d.historyPage - 1), '‹ Newer', d.historyPage <= 1)}
    <li class="page-item active"><span class="page-link" aria-current="page">Page ${d.historyPage} of ${pages}</span></li>
    ${link(Math.min(pages, d.historyPage + 1), 'Older ›', d.historyPage >= pages)}
  </ul></nav>`
      : ''
  }
</section>`;
}

export function userDetailView(d: UserDetailData): SafeHtml {
  const u = d.user;
  const back = `/admin/users/${u.id}`;
  return html`<nav aria-label="breadcrumb"><ol class="breadcrumb small mb-2">
  <li class="breadcrumb-item"><a href="/admin/users">Users</a></li>
  <li class="breadcrumb-item active text-break" aria-current="page">${u.email}</li>
</ol></nav>
<div class="d-flex flex-wrap align-items-baseline gap-3 mb-3">
  <h1 class="h3 mb-0 text-break" id="user-email">${u.email}</h1>
  <span class="badge ${STATUS_BADGE[u.status] ?? ''}" id="user-status">${u.status}</span>
  <span class="text-body-secondary" id="user-role">${u.role}</span>
</div>
<div class="row g-3 mb-3">
  <div class="col-lg-7"><dl class="row mb-0 small">
    ${fact('Registered', timeCell(u.created_at, d.now))}
    ${fact('Approved', when(u.approved_at, d.now, d.approvedBy))}
    ${u.rejected_at !== null ? fact('Rejected', when(u.rejected_at, d.now, d.rejectedBy)) : ''}
    ${fact('Last sign-in', u.last_login_at === null ? 'never' : timeCell(u.last_login_at, d.now))}
  </dl></div>
  <div class="col-lg-5 d-flex flex-wrap gap-1 align-items-start" id="user-actions">
    ${userActions(u, d.selfId, d.csrfToken, back)}
  </div>
</div>
${liveSessions(d, back)}
${history(d)}`;
}
