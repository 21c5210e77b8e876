/**
 * The statistics page in headless Chromium: a superuser opens it from the menu, sees the
 * figures of the seeded fleet and the charts drawn, then a sign-in made by the test shows up
 * on the page by itself (no reload), and the whole visit runs without a console error, a page
 * error or a CSP violation.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { formatFigure } from '../../src/public/stats-format.js';
import { PASSWORD, storeKindsToRun } from '../support/app.js';
import { chromiumGate, signInThroughForm, useBrowser } from '../support/browser.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end statistics tests (stats)');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@warden.test';
const UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** Whether a canvas has any pixel drawn on it. */
function drawn(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((el) => {
    const canvas = el as HTMLCanvasElement;
    const ctx = canvas.getContext('2d');
    if (!ctx || canvas.width === 0 || canvas.height === 0) return false;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
    return false;
  });
}

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`statistics page in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    it('should show the figures and refresh them by itself when someone signs in', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      const una = await t.createUser('una@example.test');
      for (let i = 0; i < 4; i++) {
        await t.app.warden.sessions.signIn(una, { ip: `192.0.2.${i + 1}`, userAgent: UA });
      }

      const admin = await s.person('A');
      await signInThroughForm(admin, ROOT, PASSWORD);
      await admin.getByRole('link', { name: 'Statistics', exact: true }).click();
      await admin.waitForURL('**/admin/sessions/stats');

      // Four of Una's sessions and the superuser's own.
      const active = admin.locator('#stat-active');
      expect(await active.textContent()).toBe('5');
      expect(await admin.locator('#stat-expired').textContent()).toBe('0');
      const topUser = admin.locator('tbody[data-rows="topUsers"] tr').first();
      expect(await topUser.locator('td').allTextContents()).toEqual([
        'una@example.test',
        'user',
        '4',
      ]);
      await expect
        .poll(() => admin.locator('#stats').getAttribute('data-refreshes'))
        .not.toBeNull();
      for (const chart of ['signInsPerHour', 'signInsPerDay', 'remaining']) {
        expect(await drawn(admin, `canvas[data-chart="${chart}"]`), chart).toBe(true);
      }
      const browsers = admin.locator('tbody[data-rows="browsers"] tr');
      expect(await browsers.first().locator('td').first().textContent()).toBe('Chrome');

      // A marker that a reload would wipe out.
      await admin.evaluate(() => {
        (window as unknown as { notReloaded: boolean }).notReloaded = true;
      });
      const taken = await admin.locator('[data-section="sessions"] time[data-taken]').first();
      const takenBefore = await taken.getAttribute('datetime');

      await t.app.warden.sessions.signIn(una, { ip: '192.0.2.77', userAgent: UA });

      await expect.poll(() => active.textContent(), { timeout: 12_000, interval: 250 }).toBe('6');
      expect(await topUser.locator('td').last().textContent()).toBe('5');
      expect(await taken.getAttribute('datetime')).not.toBe(takenBefore);
      expect(
        await admin.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
      ).toBe(true);
      expect(s.problemLines()).toEqual([]);

      // Refreshes that fail must not leave "closed" shown: with a 503 that says nothing the
      // state is unknown; with one that says the store is away, the store is failing (the
      // breaker itself, /readyz says, is still closed: it is not called open).
      const refreshesAnswer = async (body: string, shown: string) => {
        await admin.unroute('**/admin/sessions/stats*');
        await admin.route('**/admin/sessions/stats*', (route) =>
          route.request().headers().accept?.includes('application/json')
            ? route.fulfill({ status: 503, contentType: 'application/json', body })
            : route.continue(),
        );
        await expect
          .poll(() => admin.locator('#breaker-state').textContent(), {
            timeout: 40_000,
            interval: 250,
          })
          .toBe(shown);
      };
      await refreshesAnswer('{}', 'unknown: refresh failed');
      // Nor the time of the state it no longer knows; and every card says its figures are old.
      expect(
        await admin.locator('[data-section="breaker"] [data-stat="since"]').textContent(),
      ).toBe('unknown');
      const stale = admin.locator('[data-section="sessions"] [data-error]').first();
      await expect.poll(() => stale.isVisible()).toBe(true);
      expect(await stale.textContent()).toContain(
        'Could not refresh these figures: refresh failed',
      );
      await refreshesAnswer(
        JSON.stringify({ error: { code: 'WARDEN_STORE_UNAVAILABLE', message: 'x' } }),
        'failing: the session store does not answer',
      );
      // Once the breaker has opened, /readyz says so and since when: the card shows both.
      const since = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
      const readyzSays = async (state: string) => {
        await admin.unroute('**/readyz');
        await admin.route('**/readyz', (route) =>
          route.fulfill({
            status: 503,
            contentType: 'application/json',
            body: JSON.stringify({
              status: 'not_ready',
              sessionStore: { circuit: { state, since: since.toISOString() } },
            }),
          }),
        );
      };
      const badgeReads = (shown: string, timeout: number) =>
        expect
          .poll(() => admin.locator('#breaker-state').textContent(), { timeout, interval: 250 })
          .toBe(shown);
      await readyzSays('open');
      await badgeReads('open', 40_000);
      expect(
        await admin.locator('[data-section="breaker"] [data-stat="since"]').textContent(),
      ).toBe(formatFigure(since.getTime(), 'time'));

      // Backing off (12 s between refreshes by now), the page still notices within a few
      // seconds that Warden is ready again, and shows the figures as they are.
      await expect
        .poll(() => admin.locator('#stats-refresh').textContent(), {
          timeout: 40_000,
          interval: 250,
        })
        .toMatch(/retrying in (1[2-9]|[2-3]\d) s/);
      // Meanwhile the card follows /readyz, not the last failed refresh: a trial under way.
      await readyzSays('half_open');
      await badgeReads('half open', 8_000);
      await admin.unroute('**/readyz');
      await admin.unroute('**/admin/sessions/stats*');
      await badgeReads('closed', 8_000);
    });
  });
}
