/**
 * @module admin/users-view
 * The console's users page: filters (email, role, status, registration days), pagination,
 * approval of one or many pending accounts, role changes, disable and enable. Plain data in,
 * HTML out.
 */

import { ROLES, USER_STATUSES, type UserRow } from '../db/schema.js';
import { html, type SafeHtml } from '../views/html.js';
import { pager, timeCell } from '../views/layout.js';
import { rangeText } from '../views/range.js';

export const DEFAULT_USERS_PER_PAGE = 50;

export interface UserFilters {
  email: string;
  role: string;
  status: string;
  /** Registered on or after this UTC day (`YYYY-MM-DD`), or ''. */
  from: string;
  /** Registered on or before this UTC day, or ''. */
  to: string;
  page: number;
  perPage: number;
}

export const STATUS_BADGE: Record<string, string> = {
  pending: 'text-bg-warning',
  approved: 'text-bg-success',
  rejected: 'text-bg-secondary',
  disabled: 'text-bg-dark',
};

export function userSearch(f: UserFilters, page = f.page): string {
  const p = new URLSearchParams();
  if (f.email) p.set('email', f.email);
  if (f.role) p.set('role', f.role);
  if (f.status) p.set('status', f.status);
  if (f.from) p.set('from', f.from);
  if (f.to) p.set('to', f.to);
  if (page !== 1) p.set('page', String(page));
  if (f.perPage !== DEFAULT_USERS_PER_PAGE) p.set('per_page', String(f.perPage));
  const s = p.toString();
  return s ? `?${s}` : '';
}

function select(name: string, label: string, values: readonly string[], current: string): SafeHtml {
  return html`<div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="u-${name}">${label}</label>
    <select class="form-select form-select-sm" id="u-${name}" name="${name}">
      <option value="">All</option>
      ${values.map((v) => html`<option value="${v}"${v === current ? html` selected` : ''}>${v}</option>`)}
    </select></div>`;
}

/** The buttons that change one user; `back` is where the answer returns to. */
export function userActions(u: UserRow, selfId: number, csrf: string, back: string): SafeHtml {
  const button = (path: string, label: string, cls: string, confirm?: string) =>
    html`<form method="post" action="/admin/users/${u.id}/${path}" class="d-inline">
      <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="return_to" value="${back}">
      <button class="btn btn-sm ${cls}" type="submit"${confirm ? html` data-confirm="${confirm}"` : ''}>${label}</button></form>`;
  const isSelf = u.id === selfId;
  return html`${u.status === 'pending' ? html`${button('approve', 'Approve', 'btn-success')} ${button('reject', 'Reject', 'btn-outline-secondary')}` : ''}
    ${u.status === 'approved' && !isSelf ? button('disable', 'Disable', 'btn-outline-danger', `Disable ${u.email}? Their sessions stop working at once.`) : ''}
    ${u.status === 'disabled' ? button('enable', 'Enable', 'btn-outline-success') : ''}
    ${
      // Enabling a rejected account approves it: said so, and asked first, as a rejection was a decision.
      u.status === 'rejected'
        ? button(
            'enable',
            'Approve',
            'btn-outline-success',
            `Approve ${u.email}, who was rejected? They can sign in at once.`,
          )
        : ''
    }
    ${
      isSelf
        ? ''
        : html`<form method="post" action="/admin/users/${u.id}/role" class="d-inline-flex gap-1">
      <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="return_to" value="${back}">
      <select class="form-select form-select-sm w-auto" name="role" aria-label="Role of ${u.email}">
        ${ROLES.map((r) => html`<option value="${r}"${r === u.role ? html` selected` : ''}>${r}</option>`)}
      </select>
      <button class="btn btn-sm btn-outline-primary" type="submit">Set role</button></form>`
    }`;
}

function filterForm(f: UserFilters): SafeHtml {
  return html`<form method="get" action="/admin/users" class="row g-2 align-items-end mb-3" role="search" aria-label="Filter users">
  <div class="col-sm-6 col-lg">
    <label class="form-label small mb-0" for="u-email">Email contains</label>
    <input class="form-control form-control-sm" id="u-email" name="email" value="${f.email}" maxlength="254">
  </div>
  ${select('role', 'Role', ROLES, f.role)}
  ${select('status', 'Status', USER_STATUSES, f.status)}
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="u-from">Registered from</label>
    <input class="form-control form-control-sm" type="date" id="u-from" name="from" value="${f.from}">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="u-to">Registered to</label>
    <input class="form-control form-control-sm" type="date" id="u-to" name="to" value="${f.to}">
  </div>
  <div class="col-auto d-flex gap-1">
    <button class="btn btn-primary btn-sm" type="submit">Filter</button>
    <a class="btn btn-outline-secondary btn-sm" href="/admin/users">Clear</a>
  </div>
</form>`;
}

function pagination(f: UserFilters, total: number): SafeHtml | '' {
  return pager(
    'Pages of users',
    f.page,
    Math.max(1, Math.ceil(total / f.perPage)),
    (p) => `/admin/users${userSearch(f, p)}`,
  );
}

export function usersView(d: {
  filters: UserFilters;
  users: UserRow[];
  total: number;
  now: number;
  selfId: number;
  csrfToken: string;
  /** The viewer's saved views of this table, and the form that saves the current filters. */
  savedViews?: SafeHtml;
}): SafeHtml {
  const f = d.filters;
  const back = `/admin/users${userSearch(f)}`;
  const pendingHere = d.users.some((u) => u.status === 'pending');
  // The checkboxes sit in the table but belong to this form through their form attribute,
  // because each row's own buttons are forms of their own and forms cannot nest.
  return html`<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">Users</h1><span class="fs-5" id="user-count">${d.total.toLocaleString('en')} matching</span>
  <div class="ms-auto">${d.savedViews ?? ''}</div>
</div>
${filterForm(f)}
<form method="post" action="/admin/users/bulk-approve" id="users-bulk" class="d-flex flex-wrap gap-2 mb-2">
  <input type="hidden" name="_csrf" value="${d.csrfToken}">
  <input type="hidden" name="return_to" value="${back}">
  <button class="btn btn-success btn-sm" type="submit" data-action="bulk-approve" data-needs-selection="user"${pendingHere ? '' : html` disabled`}>Approve selected</button>
  <button class="btn btn-outline-secondary btn-sm" type="submit" formaction="/admin/users/bulk-reject"
    data-action="bulk-reject" data-needs-selection="user"${pendingHere ? '' : html` disabled`}>Reject selected</button>
  <span class="small text-body-secondary align-self-center">Only pending accounts can be selected.</span>
</form>
<div class="table-responsive"><table class="table table-sm align-middle table-stack" id="users-table">
<caption class="small">${rangeText({ page: f.page, perPage: f.perPage, total: d.total, rows: d.users.length })}. Registration days are UTC days.</caption>
<thead><tr><th scope="col"><input class="form-check-input" type="checkbox" id="select-all-users"
  aria-label="Select every pending user on this page"${pendingHere ? '' : html` disabled`}><label
  class="d-xl-none ms-2 fw-normal" for="select-all-users">All pending on this page</label></th>
<th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th>
<th scope="col">Registered</th><th scope="col">Last sign-in</th><th scope="col">Actions</th></tr></thead>
<tbody>
${d.users.map(
  (u) => html`<tr data-user-id="${u.id}">
  <td${u.status === 'pending' ? html` data-label="Select"` : ''}>${
    u.status === 'pending'
      ? html`<input class="form-check-input" type="checkbox" name="ids" value="${u.id}" form="users-bulk"
    aria-label="Select ${u.email}">`
      : ''
  }</td>
  <td class="text-email" data-label="Email"><a href="/admin/users/${u.id}">${u.email}</a></td>
  <td data-label="Role">${u.role}</td>
  <td data-label="Status"><span class="badge ${STATUS_BADGE[u.status] ?? ''}">${u.status}</span></td>
  <td data-label="Registered">${timeCell(u.created_at, d.now)}</td>
  <td data-label="Last sign-in">${u.last_login_at ? timeCell(u.last_login_at, d.now) : '—'}</td>
  <td data-actions><div class="d-flex flex-wrap gap-1">${userActions(u, d.selfId, d.csrfToken, back)}</div></td>
</tr>`,
)}
${d.users.length === 0 ? html`<tr><td colspan="7" class="text-center text-body-secondary py-4">No user matches.</td></tr>` : ''}
</tbody></table></div>
${pagination(f, d.total)}`;
}
