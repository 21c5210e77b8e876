/** Types of stats-format.js, the statistics page's figure formats (server and browser). */

export type Format =
  | 'text'
  | 'int'
  | 'bytes'
  | 'ms'
  | 'ratio'
  | 'percent'
  | 'duration'
  | 'time'
  | 'hour'
  | 'day';

/** Formats whose cells are right-aligned in tables. */
export const NUMERIC: ReadonlySet<Format>;

/** A figure as the page shows it; a dash for a missing or non-numeric one. */
export function formatFigure(value: unknown, format: Format): string;
