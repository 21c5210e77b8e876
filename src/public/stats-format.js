// How the statistics page writes its figures, in one module for both sides: the server
// renders the page with it (src/admin/stats-view.ts, typed by stats-format.d.ts) and
// /static/stats.js rewrites refreshed figures with it, so a figure reads alike before and
// after a refresh. Plain JavaScript, as the browser gets no build step.

/** Formats whose cells are right-aligned in tables. */
export const NUMERIC = new Set(['int', 'bytes', 'ms', 'ratio', 'percent', 'duration']);

const DASH = '—';

/** @param {number} n */
function int(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** @param {number} n */
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${int(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Seconds as the two largest units: "3 d 4 h", "5 min 2 s".
 * @param {number} seconds
 */
function duration(seconds) {
  /** @type {[number, string][]} */
  const parts = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const out = [];
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

/**
 * A figure as the page shows it; a dash for a missing or non-numeric one.
 * @param {unknown} value
 * @param {string} format one of the Format names in stats-format.d.ts
 * @returns {string}
 */
export function formatFigure(value, format) {
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
    default:
      return String(value);
  }
}
