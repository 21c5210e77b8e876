/**
 * @module admin/export-view
 * The export buttons of a console table: links that carry the table's current filters, so
 * the file holds exactly the rows the table matches (every page of them).
 */
import { html, type SafeHtml } from '../views/html.js';

/** "Export CSV" and "Export JSON" for `${base}.csv` / `${base}.json` with the query `search`. */
export function exportButtons(base: string, search: string): SafeHtml {
  return html`<div class="btn-group btn-group-sm" role="group" aria-label="Export the matching rows">
  <a class="btn btn-outline-secondary" href="${base}.csv${search}" data-export="csv" download>Export CSV</a>
  <a class="btn btn-outline-secondary" href="${base}.json${search}" data-export="json" download>Export JSON</a>
</div>`;
}
