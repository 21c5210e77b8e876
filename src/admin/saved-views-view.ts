/**
 * @module admin/saved-views-view
 * The saved-views menu of the sessions and users pages: a dropdown of the viewer's views
 * (each a link to the page with its filters, and a delete button) and a small form that
 * saves the current filters under a name.
 */
import type { SavedViewRow } from '../db/schema.js';
import { html, type SafeHtml, showDirectionControls } from '../views/html.js';

export function savedViewsMenu(d: {
  page: 'sessions' | 'users';
  views: readonly SavedViewRow[];
  /** The current filters, as a query string without `?`. */
  query: string;
  csrfToken: string;
}): SafeHtml {
  const back = `/admin/${d.page}${d.query ? `?${d.query}` : ''}`;
  const items =
    d.views.length === 0
      ? html`<li><span class="dropdown-item-text small text-body-secondary">No saved views yet.</span></li>`
      : d.views.map(
          (v) => html`<li class="d-flex align-items-center gap-1 pe-2" data-view-id="${v.id}">
  <a class="dropdown-item text-truncate" href="/admin/${d.page}${v.query ? `?${v.query}` : ''}"
    title="${v.query || 'no filters'}">${showDirectionControls(v.name)}</a>
  <form method="post" action="/admin/saved-views/${v.id}/delete" class="d-inline">
    <input type="hidden" name="_csrf" value="${d.csrfToken}">
    <input type="hidden" name="return_to" value="${back}">
    <button class="btn btn-outline-danger btn-sm py-0" type="submit" aria-label="Delete view ${showDirectionControls(v.name)}"
      title="Delete">×</button>
  </form>
</li>`,
        );

  return html`<div class="d-flex flex-wrap align-items-center gap-2" id="saved-views" data-page="${d.page}">
  <div class="dropdown">
    <button class="btn btn-outline-secondary btn-sm dropdown-toggle" type="button" data-bs-toggle="dropdown"
      aria-expanded="false" id="saved-views-toggle">Saved views (${d.views.length})</button>
    <ul class="dropdown-menu" aria-labelledby="saved-views-toggle">${items}</ul>
  </div>
  <form method="post" action="/admin/saved-views" class="d-flex gap-1" aria-label="Save the current filters">
    <input type="hidden" name="_csrf" value="${d.csrfToken}">
    <input type="hidden" name="page" value="${d.page}">
    <input type="hidden" name="query" value="${d.query}">
    <input class="form-control form-control-sm" name="name" maxlength="80" required
      placeholder="Name these filters" aria-label="Name of the view">
    <button class="btn btn-outline-primary btn-sm text-nowrap" type="submit">Save view</button>
  </form>
</div>`;
}
