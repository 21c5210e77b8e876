/** @module bench/lib/stats — medians, percentiles and the table printer. */

export function median(values: readonly number[]): number {
  const sorted = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export function fmt(n: number, digits = 0): string {
  if (Number.isNaN(n)) return 'n/a';
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A GitHub-flavoured Markdown table; numbers right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const numeric = head.map((_, i) => rows.every((r) => /^[-\d.,×x%n/a ]*$/.test(r[i] ?? '')));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(head),
    line(head.map((_, i) => (numeric[i] ? '---:' : '---'))),
    ...rows.map(line),
  ].join('\n');
}
