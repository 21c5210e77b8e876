import { describe, expect, it } from 'vitest';
import { pager } from '../../src/views/layout.js';

const href = (p: number) => `/list?page=${p}`;
const render = (page: number, pages: number) => String(pager('Pages', page, pages, href));
/** The link a pager item leads to, or null when the item is text (disabled). */
function target(html: string, label: string): string | null {
  const item = html.split('<li').find((li) => li.includes(label));
  if (!item) throw new Error(`no item ${label}`);
  return item.match(/href="([^"]+)"/)?.[1] ?? null;
}

describe('the pager of the console lists', () => {
  it('should say where the reader is and lead to the pages around it', () => {
    const html = render(2, 3);
    expect(html).toContain('Page 2 of 3');
    expect(target(html, 'Previous')).toBe('/list?page=1');
    expect(target(html, 'Next')).toBe('/list?page=3');
    expect(target(html, 'Last (3)')).toBe('/list?page=3');
    expect(target(render(3, 3), 'Last (3)')).toBeNull();
    expect(target(render(1, 3), 'First')).toBeNull();
  });

  it('should say a page past the last is past it, and lead back to the last', () => {
    const html = render(7, 3);
    expect(html).toContain('Page 7 is past the last (3)');
    expect(html).not.toContain('Page 7 of 3');
    expect(target(html, 'Previous')).toBe('/list?page=3');
    expect(target(html, 'Last (3)')).toBe('/list?page=3');
    expect(target(html, 'Next')).toBeNull();
    // Even when the list has a single page.
    expect(target(render(5, 1), 'Previous')).toBe('/list?page=1');
  });

  it('should not show for a single page', () => {
    expect(render(1, 1)).toBe('');
  });
});
