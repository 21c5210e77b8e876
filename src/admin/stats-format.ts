/**
 * @module admin/stats-format
 * How the statistics page writes its figures. /static/stats.js writes refreshed figures with
 * the same rules (same names, same output), so a figure reads alike before and after a refresh.
 */

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
export const NUMERIC: ReadonlySet<Format> = new Set([
  'int',
  'bytes',
  'ms',
  'ratio',
  'percent',
  'duration',
]);

const DASH = '—';

function int(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${int(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as the two largest units: "3 d 4 h", "5 min 2 s". */
function duration(seconds: number): string {
  const parts: [number, string][] = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const out: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [size, label] of parts) {
    if (rest >= size || (out.length === 0 && size === 1)) {
      out.push(`${Math.floor(rest / size)} ${label}`);
      rest %= size;
    }
    if (out.length === 2) break;
  }
  return out.join(' ');
}

export function formatFigure(value: unknown, format: Format): string {
  if (value === null || value === undefined) return DASH;
  if (format === 'text') return String(value);
  const n = Number(value);
  if (!Number.isFinite(n)) return DASH;
  switch (format) {
    case 'int':
      return int(n);
    case 'bytes':
      return bytes(n);
    case 'ms':
      return `${n.toFixed(2)} ms`;
    case 'ratio':
      return n.toFixed(2);
    case 'percent':
      return `${(n * 100).toFixed(1)} %`;
    case 'duration':
      return duration(n);
    case 'time':
      return `${new Date(n).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
    case 'hour':
      return `${new Date(n).toISOString().slice(11, 13)}:00`;
    case 'day':
      return new Date(n).toISOString().slice(0, 10);
  }
  return String(value);
}
