/**
 * @module admin/users-view
 * The console's users page: filters, approval of pending accounts, role changes,
 * disable and enable.
 */
import { ROLES, USER_STATUSES, type UserRow } from '../db/schema.js';
import { html, type SafeHtml } from '../views/html.js';
import { timeCell } from '../views/layout.js';

export interface UserFilters {
  email: string;
  role: string;
  status: string;
  page: number;
  perPage: number;
}

const STATUS_BADGE: Record<string, string> = {
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
  if (page !== 1) p.set('page', String(page));
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

function actions(u: UserRow, selfId: number, csrf: string, back: string): SafeHtml {
  const button = (path: string, label: string, cls: string) =>
    html`<form method="post" action="/admin/users/${u.id}/${path}" class="d-inline">
      <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="return_to" value="${back}">
      <button class="btn btn-sm ${cls}" type="submit">${label}</button></form>`;
  const isSelf = u.id === selfId;
  return html`${u.status === 'pending' ? html`${button('approve', 'Approve', 'btn-success')} ${button('reject', 'Reject', 'btn-outline-secondary')}` : ''}
    ${u.status === 'approved' && !isSelf ? button('disable', 'Disable', 'btn-outline-danger') : ''}
    ${u.status === 'disabled' || u.status === 'rejected' ? button('enable', 'Enable', 'btn-outline-success') : ''}
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

export function usersView(d: {
  filters: UserFilters;
  users: UserRow[];
  total: number;
  now: number;
  selfId: number;
  csrfToken: string;
}): SafeHtml {
  const f = d.filters;
  const back = `/admin/users${userSearch(f)}`;
  const pages = Math.max(1, Math.ceil(d.total / f.perPage));
  return html`<div class="d-flex align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">Users</h1><span class="fs-5" id="user-count">${d.total.toLocaleString('en')} matching</span>
</div>
<form method="get" action="/admin/users" class="row g-2 align-items-end mb-3" role="search" aria-label="Filter users">
  <div class="col-sm-6 col-lg-3">
    <label class="form-label small mb-0" for="u-email">Email contains</label>
    <input class="form-control form-control-sm" id="u-email" name="email" value="${f.email}" maxlength="254">
  </div>
  ${select('role', 'Role', ROLES, f.role)}
  ${select('status', 'Status', USER_STATUSES, f.status)}
  <div class="col-lg-2 d-flex gap-1">
    <button class="btn btn-primary btn-sm" type="submit">Filter</button>
    <a class="btn btn-outline-secondary btn-sm" href="/admin/users">Clear</a>
  </div>
</form>
<div class="table-responsive"><table class="table table-sm align-middle" id="users-table">
<thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th>
<th scope="col">Registered</th><th scope="col">Last sign-in</th><th scope="col">Actions</th></tr></thead>
<tbody>
${d.users.map(
  (u) => html`<tr data-user-id="${u.id}">
  <td class="text-break"><a href="/admin/sessions?email=${encodeURIComponent(u.email)}">${u.email}</a></td>
  <td>${u.role}</td>
  <td><span class="badge ${STATUS_BADGE[u.status] ?? ''}">${u.status}</span></td>
  <td>${timeCell(u.created_at, d.now)}</td>
  <td>${u.last_login_at ? timeCell(u.last_login_at, d.now) : '—'}</td>
  <td class="d-flex flex-wrap gap-1">${actions(u, d.selfId, d.csrfToken, back)}</td>
</tr>`,
)}
${d.users.length === 0 ? html`<tr><td colspan="6" class="text-center text-body-secondary py-4">No user matches.</td></tr>` : ''}
</tbody></table></div>
${
  pages > 1
    ? html`<nav aria-label="Pages of users"><ul class="pagination pagination-sm">
  <li class="page-item${f.page <= 1 ? ' disabled' : ''}"><a class="page-link" href="/admin/users${userSearch(f, f.page - 1)}">‹ Previous</a></li>
  <li class="page-item disabled"><span class="page-link">Page ${f.page} of ${pages}</span></li>
  <li class="page-item${f.page >= pages ? ' disabled' : ''}"><a class="page-link" href="/admin/users${userSearch(f, f.page + 1)}">Next ›</a></li>
</ul></nav>`
    : ''
}`;
}
