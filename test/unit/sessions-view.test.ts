/**
 * The sessions table when the store stopped counting at the page's cap: the page says "more
 * than", offers no last page it cannot know, keeps Next open while pages come back full, and
 * leaves the exact number to revoke-matching's confirmation.
 */
import { describe, expect, it } from 'vitest';
import { readFilters } from '../../src/admin/session-filters.js';
import { type SessionRowView, sessionsView } from '../../src/admin/sessions-view.js';

const NOW = Date.UTC(2026, 0, 15, 12);

function rows(n: number): SessionRowView[] {
  return Array.from({ length: n }, (_, i) => ({
    id: String(i).padStart(64, '0'),
    userId: i + 1,
    email: `u${i}@example.com`,
    role: 'admin',
    status: 'active',
    createdAt: NOW - i * 60_000,
    lastSeenAt: NOW,
    expiresAt: NOW + 3_600_000,
    ip: '127.0.0.1',
    browser: 'Firefox',
    os: 'Linux',
    own: false,
  }));
}

function page(opts: { total: number; totalCapped?: boolean; page: number; rows: number }) {
  return sessionsView({
    filters: readFilters({ role: 'admin', page: opts.page, per_page: 50 }),
    rows: rows(opts.rows),
    total: opts.total,
    ...(opts.totalCapped ? { totalCapped: true } : {}),
    skipped: 0,
    activeCount: 5,
    now: NOW,
    csrfToken: 'token',
    keep: new Set(),
  }).value;
}

describe('sessions view with a capped count', () => {
  it('should say "more than" the cap, with no last page and no number to revoke', () => {
    const body = page({ total: 10_000, totalCapped: true, page: 1, rows: 50 });
    expect(body).toContain('more than 10,000 matching');
    expect(body).toContain('Showing 1–50 of more than 10,000 (filtered)');
    expect(body).not.toContain('Last (');
    expect(body).toContain('Revoke all matching…');
    expect(body).toMatch(/href="\/admin\/sessions\?role=admin&amp;page=2[^"]*"\s*>Next/);
  });

  it('should keep Next open past the counted pages while pages are full, and close it on a short one', () => {
    const past = page({ total: 10_000, totalCapped: true, page: 200, rows: 50 });
    expect(past).toContain('Showing 9,951–10,000 of more than 10,000');
    expect(past).toMatch(/page=201[^"]*"\s*>Next/);

    const end = page({ total: 10_000, totalCapped: true, page: 230, rows: 7 });
    // A short last page knows the exact total.
    expect(end).toContain('Showing 11,451–11,457 of 11,457');
    const beyond = page({ total: 10_000, totalCapped: true, page: 231, rows: 0 });
    expect(beyond).toContain('Page 231 is past the last of these more than 10,000');
    expect(beyond).toContain('Nothing on this page: it is past the last one.');
    // Back to the pages the count vouches for, not to the empty one before this.
    expect(beyond).toMatch(/href="\/admin\/sessions\?role=admin&amp;page=200[^"]*"\s*>‹ Previous/);
    // Disabled items are text: Bootstrap's class alone would leave the link followable.
    expect(end).toContain(
      '<li class="page-item disabled"><span class="page-link" aria-disabled="true">Next ›</span></li>',
    );
    expect(end).not.toMatch(/href="[^"]*"\s*>Next/);
  });

  it('should offer no link to First or Previous on the first page', () => {
    const first = page({ total: 10_000, totalCapped: true, page: 1, rows: 50 });
    for (const label of ['« First', '‹ Previous']) {
      expect(first).toContain(`<span class="page-link" aria-disabled="true">${label}</span>`);
      expect(first).not.toMatch(new RegExp(`href="[^"]*"\\s*>${label}`));
    }
    const second = page({ total: 10_000, totalCapped: true, page: 2, rows: 50 });
    expect(second).toMatch(/href="\/admin\/sessions[^"]*"\s*>‹ Previous/);
  });

  it('should say "more than" the cap of active sessions too, and the exact number below it', () => {
    const capped = sessionsView({
      filters: readFilters({}),
      rows: rows(3),
      total: 3,
      skipped: 0,
      activeCount: 1_000,
      activeCapped: true,
      now: NOW,
      csrfToken: 'token',
      keep: new Set(),
    }).value;
    // Past the cap the page leaves the figure to the header's live count, which is exact.
    expect(capped).not.toContain('active in all');
    expect(page({ total: 120, page: 1, rows: 50 })).toContain('>5 active in all');
  });

  it('should lead from a page past the last back to the last', () => {
    const body = page({ total: 120, page: 7, rows: 0 });
    expect(body).toContain('Nothing on this page: it is past the last one.');
    expect(body).toMatch(/href="\/admin\/sessions\?role=admin&amp;page=3[^"]*"\s*>‹ Previous/);
    expect(body).toMatch(/href="\/admin\/sessions\?role=admin&amp;page=3[^"]*"\s*>Last \(3\) »/);
  });

  it('should show an exact count with its last page as before', () => {
    const body = page({ total: 120, page: 1, rows: 50 });
    expect(body).toContain('120 matching');
    expect(body).toContain('Last (3) »');
    expect(body).toContain('Revoke all 120 matching…');
  });

  it('should offer no revoke-matching link to follow when nothing matches', () => {
    const body = page({ total: 0, page: 1, rows: 0 });
    expect(body).toContain('aria-disabled="true">Revoke all 0 matching…</span>');
    expect(body).not.toContain('href="/admin/sessions/revoke-matching');
  });
});

describe('sessions view rows', () => {
  it("should link each row's email to that user's page", () => {
    const body = page({ total: 1, page: 1, rows: 1 });
    const [r] = rows(1);
    expect(body).toMatch(
      new RegExp(
        `<td class="text-email" data-label="Email" id="owner-${r!.id}"><a href="/admin/users/${r!.userId}"[^>]*>${r!.email.replace('.', '\\.')}</a>`,
      ),
    );
  });
});
