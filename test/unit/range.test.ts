import { describe, expect, it } from 'vitest';
import { rangeText } from '../../src/views/range.js';

describe('the "Showing" line of paged tables', () => {
  it('should give the rows of a page and the total', () => {
    expect(rangeText({ page: 2, perPage: 50, total: 301, rows: 50 })).toBe('Showing 51–100 of 301');
    expect(rangeText({ page: 7, perPage: 50, total: 301, rows: 1 })).toBe('Showing 301–301 of 301');
    expect(rangeText({ page: 1, perPage: 50, total: 0, rows: 0 })).toBe('Showing 0 of 0');
  });

  it('should say a page is past the end rather than give a backwards range', () => {
    expect(rangeText({ page: 99, perPage: 50, total: 301, rows: 0 })).toBe(
      'Page 99 is past the last of these 301',
    );
  });

  it('should say "more than" a capped count until a short page gives the exact total', () => {
    const capped = { perPage: 50, total: 1_000, capped: true };
    expect(rangeText({ ...capped, page: 21, rows: 50 })).toBe(
      'Showing 1,001–1,050 of more than 1,000',
    );
    expect(rangeText({ ...capped, page: 22, rows: 3 })).toBe('Showing 1,051–1,053 of 1,053');
  });
});
