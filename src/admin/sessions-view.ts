/**
 * @module admin/sessions-view
 * The console's sessions table: filters, pagination, per-row and bulk revocation,
 * and the confirmation page of revoke-matching. Plain data in, HTML out.
 */

import { ROLES } from '../db/schema.js';
import type { SessionStatus } from '../sessions/session-store.js';
import { html, type SafeHtml, showDirectionControls } from '../views/html.js';
import { ipCellClass, pageItem, timeCell, utc } from '../views/layout.js';
import { rangeText } from '../views/range.js';
import { sessionTabs } from './ended-view.js';
import { exportButtons } from './export-view.js';
import { filterSearch, hasFilters, type SessionFilters } from './session-filters.js';

/** What a cleanup button asks before it removes anything (warden.js, data-confirm). */
export const CLEANUP_QUESTION =
  'Remove every expired session now? Live sessions are not touched; the ended ones stay in the Ended tab.';

export interface SessionRowView {
  id: string;
  userId: number;
  email: string;
  role: string;
  status: SessionStatus;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string;
  browser: string;
  os: string;
  own: boolean;
}

export interface SessionsPageData {
  filters: SessionFilters;
  rows: SessionRowView[];
  total: number;
  /** More than `total` match: the count stopped there (the store's countUpTo). */
  totalCapped?: boolean;
  skipped: number;
  activeCount: number;
  /** More than `activeCount` sessions are active (counted up to the same cap as `total`). */
  activeCapped?: boolean;
  now: number;
  csrfToken: string;
  /** Ids to show selected (failed in the last bulk action). */
  keep: ReadonlySet<string>;
  /** The viewer's saved views of this table, and the form that saves the current filters. */
  savedViews?: SafeHtml;
}

const STATUS_BADGE: Record<SessionStatus, string> = {
  active: 'text-bg-success',
  expired: 'text-bg-secondary',
};

function option(value: string, label: string, selected: string): SafeHtml {
  return html`<option value="${value}"${value === selected ? html` selected` : ''}>${label}</option>`;
}

function filterForm(f: SessionFilters): SafeHtml {
  return html`<form method="get" action="/admin/sessions" class="row g-2 align-items-end mb-3" role="search"
    aria-label="Filter sessions">
  <div class="col-sm-6 col-lg">
    <label class="form-label small mb-0" for="f-email">User email contains</label>
    <input class="form-control form-control-sm" id="f-email" name="email" value="${f.email}"
      placeholder="e.g. alice" maxlength="254">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="f-status">Status</label>
    <select class="form-select form-select-sm" id="f-status" name="status">
      ${option('all', 'All', f.status)}${option('active', 'Active', f.status)}${option('expired', 'Expired', f.status)}
    </select>
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="f-role">Role</label>
    <select class="form-select form-select-sm" id="f-role" name="role">
      ${option('all', 'All', f.role)}${ROLES.map((r) => option(r, r, f.role))}
    </select>
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="f-from">Created from</label>
    <input class="form-control form-control-sm" type="date" id="f-from" name="created_from" value="${f.createdFrom}">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="f-to">Created to</label>
    <input class="form-control form-control-sm" type="date" id="f-to" name="created_to" value="${f.createdTo}">
  </div>
  <div class="col-auto d-flex gap-1">
    <button class="btn btn-primary btn-sm" type="submit">Filter</button>
    <a class="btn btn-outline-secondary btn-sm" href="/admin/sessions">Clear</a>
  </div>
</form>`;
}

function pagination(
  f: SessionFilters,
  total: number,
  now: number,
  capped: boolean,
  rows: number,
): SafeHtml | '' {
  // A capped count knows no last page: Next stays open while pages come back full. A page that
  // came back empty is past the end, and only the counted pages are known to hold sessions.
  const counted = Math.max(1, Math.ceil(total / f.perPage));
  const reached = rows >= f.perPage ? f.page + 1 : rows > 0 ? f.page : counted;
  const pages = capped ? Math.max(counted, reached) : counted;
  if (pages === 1 && f.page === 1) return '';
  const asOf = f.asOf ?? now;
  const link = (p: number, label: string, disabled: boolean, current = false) =>
    pageItem(`/admin/sessions${filterSearch(f, { page: p, asOf })}`, label, { disabled, current });
  const around = [f.page - 2, f.page - 1, f.page, f.page + 1, f.page + 2].filter(
    (p) => p >= 1 && p <= pages,
  );
  return html`<nav aria-label="Pages of sessions"><ul class="pagination pagination-sm flex-wrap">
    ${link(1, '« First', f.page === 1)}
    ${link(Math.max(1, Math.min(pages, f.page - 1)), '‹ Previous', f.page === 1)}
    ${around.map((p) => link(p, String(p), false, p === f.page))}
    ${link(Math.min(pages, f.page + 1), 'Next ›', f.page >= pages)}
    ${capped ? '' : link(pages, `Last (${pages}) »`, f.page === pages)}
  </ul></nav>`;
}

function row(r: SessionRowView, now: number, keep: ReadonlySet<string>): SafeHtml {
  // An email may break anywhere too, for the same reason (see ipCellClass).
  const ipBreaks = ipCellClass(r.ip);
  return html`<tr data-session-id="${r.id}" data-user-id="${r.userId}">
  <td data-label="Select"><input class="form-check-input" type="checkbox" name="ids" value="${r.id}"
    aria-label="Select session of ${r.email}"${keep.has(r.id) ? html` checked` : ''}></td>
  <td class="text-email" data-label="Email" id="owner-${r.id}"><a href="/admin/users/${r.userId}" title="This user's page: their sessions and history">${r.email}</a>${r.own ? html` <span class="badge text-bg-info">you</span>` : ''}</td>
  <td data-label="Role">${r.role}</td>
  <td data-label="Status"><span class="badge ${STATUS_BADGE[r.status]}" data-status>${r.status}</span></td>
  <td data-label="Created">${timeCell(r.createdAt, now)}</td>
  <td data-label="Last seen">${timeCell(r.lastSeenAt, now)}</td>
  <td data-label="Expires">${timeCell(r.expiresAt, now)}</td>
  <td${ipBreaks} data-label="IP">${r.ip}</td>
  <td data-label="Browser">${r.browser}</td>
  <td data-label="OS">${r.os}</td>
  <td data-actions><div class="d-flex flex-wrap gap-1">
    <button class="btn btn-outline-danger btn-sm text-nowrap" type="submit" formaction="/admin/sessions/revoke/${r.id}"
      data-action="revoke" title="End this session now" aria-describedby="owner-${r.id}">Revoke</button>
    <button class="btn btn-outline-warning btn-sm text-nowrap" type="submit"
      formaction="/admin/sessions/revoke-user/${r.userId}" data-action="revoke-user"
      data-confirm="End every session of ${r.email}?"
      title="End every session of ${r.email}" aria-describedby="owner-${r.id}">Revoke all of user</button>
  </div></td>
</tr>`;
}

export function sessionsView(d: SessionsPageData): SafeHtml {
  const f = d.filters;
  const returnTo = `/admin/sessions${filterSearch(f)}`;
  const capped = d.totalCapped === true;
  const matching = capped
    ? `more than ${d.total.toLocaleString('en')}`
    : d.total.toLocaleString('en');

  return html`<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">Sessions</h1>
  <span class="fs-5" id="match-count" data-total="${d.total}"${capped ? html` data-capped` : ''}>${matching} matching</span>
  <span class="text-body-secondary small" id="active-count">${d.activeCapped ? '' : `${d.activeCount.toLocaleString('en')} active in all`}</span>
  <div class="ms-auto d-flex flex-wrap align-items-center gap-2">${d.savedViews ?? ''}${exportButtons('/admin/sessions/export', filterSearch({ ...f, page: 1 }))}</div>
</div>
${sessionTabs('live')}
${filterForm(f)}
${
  // The pages of a listing keep the moment of its first page, so rows do not shift while someone
  // pages; a revocation's return keeps it too. Say so, or later sign-ins seem not to happen.
  f.asOf === undefined
    ? ''
    : html`<p class="small text-body-secondary mb-2" id="snapshot-note">Sessions signed in after
      ${utc(f.asOf)} are not listed on these pages.
      <a href="/admin/sessions${filterSearch({ ...f, page: 1, asOf: undefined })}">Show the latest</a></p>`
}
${
  d.skipped > 0
    ? html`<div class="alert alert-warning py-2" role="status">${d.skipped} unreadable
      entr${d.skipped === 1 ? 'y was' : 'ies were'} skipped; cleanup removes them.</div>`
    : ''
}
<form method="post" action="/admin/sessions/bulk-revoke" id="bulk-form" data-warden-bulk>
  <input type="hidden" name="_csrf" value="${d.csrfToken}">
  <input type="hidden" name="return_to" value="${returnTo}">
  <div class="d-flex flex-wrap align-items-center gap-2 mb-2">
    <button class="btn btn-danger btn-sm" type="submit" data-action="bulk-revoke"
      data-needs-selection="session" data-confirm="End the {n} selected session{s}?">Bulk revoke selected</button>
    ${
      d.total === 0
        ? // No link to follow, by keyboard either: Bootstrap's disabled only greys a link out.
          html`<span class="btn btn-outline-danger btn-sm disabled" aria-disabled="true">Revoke all 0 matching…</span>`
        : html`<a class="btn btn-outline-danger btn-sm"
      href="/admin/sessions/revoke-matching${filterSearch({ ...f, page: 1, asOf: undefined })}"
      >Revoke all ${capped ? '' : `${d.total.toLocaleString('en')} `}matching…</a>`
    }
    <button class="btn btn-outline-secondary btn-sm" type="submit" formaction="/admin/sessions/cleanup-expired"
      data-action="cleanup" data-confirm="${CLEANUP_QUESTION}">Clean up expired</button>
    <div class="form-check ms-2">
      <input class="form-check-input" type="checkbox" id="include-own" name="include_own" value="1">
      <label class="form-check-label small" for="include-own">Include my own session</label>
    </div>
    <div class="progress flex-grow-1 d-none" id="bulk-progress" role="progressbar" aria-label="Bulk revoke progress"
      aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
      <div class="progress-bar progress-bar-striped progress-bar-animated w-0"></div>
    </div>
  </div>
  <div class="table-responsive">
  <table class="table table-sm table-hover align-middle table-stack" id="sessions-table">
    <caption class="small">${rangeText({ page: f.page, perPage: f.perPage, total: d.total, capped, rows: d.rows.length })}${hasFilters(f) ? ' (filtered)' : ''},
      <span id="list-order">${f.status === 'expired' ? 'most recently expired first' : 'newest sign-in first'}</span>.
      Times are relative; hover for the exact UTC time.</caption>
    <thead><tr>
      <th scope="col"><input class="form-check-input" type="checkbox" id="select-all" aria-label="Select all on this page"><label
        class="d-xl-none ms-2 fw-normal" for="select-all">All on this page</label></th>
      <th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th>
      <th scope="col">Created</th><th scope="col">Last seen</th><th scope="col">Expires</th>
      <th scope="col">IP</th><th scope="col">Browser</th><th scope="col">OS</th><th scope="col">Actions</th>
    </tr></thead>
    <tbody>
      ${
        d.rows.length > 0
          ? d.rows.map((r) => row(r, d.now, d.keep))
          : html`<tr><td colspan="11" class="text-center text-body-secondary py-4">${f.page > 1 ? 'Nothing on this page: it is past the last one.' : 'No session matches these filters.'}</td></tr>`
      }
    </tbody>
  </table>
  </div>
</form>
${pagination(f, d.total, d.now, capped, d.rows.length)}`;
}

/** The filters in force, one per line, so a confirmation says what it acts on. */
function filterList(f: SessionFilters): SafeHtml | '' {
  const items: [string, string][] = [];
  if (f.email) items.push(['Email contains', f.email]);
  if (f.status !== 'all') items.push(['Status', f.status]);
  if (f.role !== 'all') items.push(['Role', f.role]);
  if (f.createdFrom) items.push(['Signed in from', f.createdFrom]);
  if (f.createdTo) items.push(['Signed in up to', f.createdTo]);
  if (items.length === 0) return '';
  return html`<dl class="row small mb-3" id="matching-filters">${items.map(
    ([label, value]) =>
      html`<dt class="col-sm-4">${label}</dt><dd class="col-sm-8 text-break">${showDirectionControls(value)}</dd>`,
  )}</dl>`;
}

export function revokeMatchingView(d: {
  filters: SessionFilters;
  total: number;
  csrfToken: string;
  error?: string;
}): SafeHtml {
  const f = d.filters;
  const search = filterSearch({ ...f, page: 1 });
  return html`<div class="col-lg-7">
  <h1 class="h3">Revoke every matching session</h1>
  ${d.error ? html`<div class="alert alert-danger" role="alert" id="confirm-error">${d.error}</div>` : ''}
  <p>${hasFilters(f) ? 'These filters match' : 'With no filter, this is every session:'} <strong id="matching-total">${d.total.toLocaleString('en')}</strong>
    session${d.total === 1 ? '' : 's'}. Those still active end at once; expired ones are removed.</p>
  ${filterList(f)}
  <form method="post" action="/admin/sessions/revoke-matching${search}">
    <input type="hidden" name="_csrf" value="${d.csrfToken}">
    <div class="mb-3">
      <label class="form-label" for="confirm">Type <strong>${d.total}</strong> to confirm</label>
      <input class="form-control${d.error ? ' is-invalid' : ''}" id="confirm" name="confirm" inputmode="numeric" autocomplete="off" required autofocus${d.error ? html` aria-invalid="true" aria-describedby="confirm-error"` : ''}>
    </div>
    <div class="form-check mb-3">
      <input class="form-check-input" type="checkbox" id="include-own-m" name="include_own" value="1">
      <label class="form-check-label" for="include-own-m">Include my own session if it matches</label>
    </div>
    <button class="btn btn-danger" type="submit">Revoke ${d.total.toLocaleString('en')} sessions</button>
    <a class="btn btn-link" href="/admin/sessions${search}">Cancel</a>
  </form>
</div>`;
}
