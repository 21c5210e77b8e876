/**
 * @module views/range
 * The "Showing 51–100 of 1,234" line of every paged console table, one definition for all.
 */

export interface Range {
  /** 1-based page number from the URL (may be past the end). */
  page: number;
  perPage: number;
  /** What the count said; with `capped`, the count stopped there ("more than"). */
  total: number;
  capped?: boolean;
  /** Rows actually on this page. */
  rows: number;
}

/**
 * Plain text (numbers and words only). A page past the end says so rather than "4901–301"; a
 * short last page of a capped count knows its exact total and gives it.
 */
export function rangeText(r: Range): string {
  const offset = (r.page - 1) * r.perPage;
  if (r.rows === 0) {
    if (r.page > 1 && (r.capped || r.total > 0)) {
      const of = r.capped
        ? `more than ${r.total.toLocaleString('en')}`
        : r.total.toLocaleString('en');
      return `Page ${r.page.toLocaleString('en')} is past the last of these ${of}`;
    }
    return 'Showing 0 of 0';
  }
  const first = offset + 1;
  const last = offset + r.rows;
  const full = r.rows === r.perPage;
  const total =
    r.capped && full
      ? `more than ${r.total.toLocaleString('en')}`
      : (r.capped ? last : Math.max(r.total, last)).toLocaleString('en');
  return `Showing ${first.toLocaleString('en')}–${last.toLocaleString('en')} of ${total}`;
}
