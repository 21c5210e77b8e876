/**
 * @module admin/audit-view
 * The audit log page: filters, the entries newest first, pagination and the CSV export.
 * Read-only by construction: the page has no form that changes anything.
 */

import type { AuditRow } from '../db/schema.js';
import { html, type SafeHtml, showDirectionControls } from '../views/html.js';
import { pager, timeCell } from '../views/layout.js';
import { rangeText } from '../views/range.js';
import { AUDIT_PER_PAGE, type AuditFilters, auditSearch } from './audit-filters.js';

const OUTCOME_BADGE: Record<AuditRow['outcome'], string> = {
  success: 'text-bg-success',
  partial: 'text-bg-warning',
  failure: 'text-bg-danger',
  refused: 'text-bg-dark',
};

const DETAILS_SHOWN = 240;
// The hover text shows more, but a page of 50 entries must stay small: entries written before
// revocations capped their id lists can hold megabytes.
const DETAILS_TITLE = 4_000;

function filterForm(f: AuditFilters, actions: readonly string[]): SafeHtml {
  const known = f.action && !actions.includes(f.action) ? [f.action, ...actions] : actions;
  return html`<form method="get" action="/admin/audit" class="row g-2 align-items-end mb-3" role="search"
    aria-label="Filter the audit log">
  <div class="col-sm-6 col-lg-3">
    <label class="form-label small mb-0" for="a-actor">Actor email contains</label>
    <input class="form-control form-control-sm" id="a-actor" name="actor" value="${f.actor}" maxlength="254"
      placeholder="e.g. root@">
  </div>
  <div class="col-sm-6 col-lg-3">
    <label class="form-label small mb-0" for="a-action">Action</label>
    <select class="form-select form-select-sm" id="a-action" name="action">
      <option value="">All</option>
      ${known.map((a) => html`<option value="${a}"${a === f.action ? html` selected` : ''}>${a}${actions.includes(a) ? '' : ' (none on record)'}</option>`)}
    </select>
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="a-from">From</label>
    <input class="form-control form-control-sm" type="date" id="a-from" name="from" value="${f.from}">
  </div>
  <div class="col-6 col-lg-2">
    <label class="form-label small mb-0" for="a-to">To</label>
    <input class="form-control form-control-sm" type="date" id="a-to" name="to" value="${f.to}">
  </div>
  <div class="col-lg-2 d-flex gap-1">
    <button class="btn btn-primary btn-sm" type="submit">Filter</button>
    <a class="btn btn-outline-secondary btn-sm" href="/admin/audit">Clear</a>
  </div>
</form>`;
}

function details(stored: string): SafeHtml {
  if (stored === '{}') return html`<span class="text-body-secondary">—</span>`;
  // The same JSON, each direction control escaped, so no value can reverse the rest.
  const raw = showDirectionControls(stored);
  const short = raw.length > DETAILS_SHOWN ? `${raw.slice(0, DETAILS_SHOWN)}…` : raw;
  const title = raw.length <= DETAILS_SHOWN ? '' : cut(raw, DETAILS_TITLE);
  return html`<code class="small text-break" title="${title}">${short}</code>`;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (the whole entry is in the CSV export)` : text;
}

function row(r: AuditRow, now: number): SafeHtml {
  return html`<tr data-audit-id="${r.id}">
  <td class="text-nowrap" data-label="When">${timeCell(r.at, now)}</td>
  <td class="text-email" data-label="Actor" data-actor>${r.actor_email ?? html`<span class="text-body-secondary" title="Warden itself (the scheduled cleanup), a command on the server, or a request from no signed-in account">no account</span>`}</td>
  <td class="text-nowrap" data-label="Action" data-action>${r.action}</td>
  <td class="text-break" data-label="Target">${showDirectionControls(r.target ?? '')}</td>
  <td data-label="Outcome"><span class="badge ${OUTCOME_BADGE[r.outcome] ?? 'text-bg-secondary'}">${r.outcome}</span></td>
  <td data-label="Details">${details(r.details)}</td>
  <td class="text-nowrap" data-label="IP">${r.ip ?? ''}</td>
  <td data-label="Hash"><code class="small" title="${r.hash ?? ''}">${(r.hash ?? '').slice(0, 10)}</code></td>
</tr>`;
}

function pagination(f: AuditFilters, total: number, asOf: number): SafeHtml | '' {
  return pager(
    'Pages of the audit log',
    f.page,
    Math.max(1, Math.ceil(total / AUDIT_PER_PAGE)),
    (p) => `/admin/audit${auditSearch(f, { page: p, asOf })}`,
  );
}

/** Why the table is empty; an action no entry has (a typo, most likely) is named as such. */
function emptyText(f: AuditFilters, actions: readonly string[]): SafeHtml | string {
  if (f.page > 1) return 'Nothing on this page: it is past the last one.';
  if (f.action && !actions.includes(f.action)) {
    return html`No entry has ever had the action <code>${f.action}</code>: the Action menu lists those on record.`;
  }
  return 'No entry matches these filters.';
}

export function auditView(d: {
  filters: AuditFilters;
  rows: AuditRow[];
  total: number;
  actions: readonly string[];
  /** The newest id of the snapshot these pages show. */
  asOf: number;
  now: number;
}): SafeHtml {
  const f = d.filters;
  const exportSearch = auditSearch(f, { page: 1, asOf: d.asOf });
  return html`<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">Audit log</h1>
  <span class="fs-5" id="audit-count" data-total="${d.total}">${d.total.toLocaleString('en')} matching</span>
  <a class="btn btn-outline-secondary btn-sm ms-auto" id="audit-export-csv" data-export="csv"
    href="/admin/audit/export.csv${exportSearch}" download>Export CSV</a>
</div>
${filterForm(f, d.actions)}
<div class="table-responsive">
<table class="table table-sm align-middle table-stack" id="audit-table">
  <caption class="small">${rangeText({ page: f.page, perPage: AUDIT_PER_PAGE, total: d.total, rows: d.rows.length })}, newest first.
    Entries cannot be changed or removed here; each is chained to the one before it by hash
    (<code>warden audit verify</code> checks the chain).</caption>
  <thead><tr>
    <th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th>
    <th scope="col">Outcome</th><th scope="col">Details</th><th scope="col">IP</th><th scope="col">Hash</th>
  </tr></thead>
  <tbody>
    ${
      d.rows.length > 0
        ? d.rows.map((r) => row(r, d.now))
        : html`<tr><td colspan="8" class="text-center text-body-secondary py-4" id="audit-empty">${emptyText(f, d.actions)}</td></tr>`
    }
  </tbody>
</table>
</div>
${pagination(f, d.total, d.asOf)}`;
}
