/**
 * The live console in headless Chromium: with the sessions page open, a sign-in made
 * elsewhere appears in the table and the header count without a reload, within two seconds,
 * keeping the rows the superuser had selected; a revocation elsewhere removes its row. When
 * the server drops every connection and comes back on the same port, the page reconnects by
 * itself and carries on. Every page must run without a page error or CSP violation.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import { makeApp, PASSWORD, storeKindsToRun } from '../support/app.js';
import {
  BrowserSession,
  chromiumGate,
  launchChromium,
  serve,
  signInThroughForm,
  useBrowser,
} from '../support/browser.js';
import { redisServerAvailable, startOwnRedis } from '../support/redis-server.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end console tests (live)');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@warden.test';
const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const LIVE_WITHIN_MS = 2_000;
/** Browser-side behaviour that does not depend on the store runs on the first store kind only. */
const BROWSER_KIND = kinds.find((k) => k.skip === null)?.kind;

const row = (page: Page, id: string) => page.locator(`#sessions-table tr[data-session-id="${id}"]`);
const headerCount = (page: Page) => page.locator('#live-active').getAttribute('data-active');
const liveState = (page: Page) => page.locator('#live-active').getAttribute('data-state');

/** Set on the page once; a reload would lose it. */
async function markPage(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { wardenMark: boolean }).wardenMark = true;
  });
}
const stillSamePage = (page: Page) =>
  page.evaluate(() => (window as unknown as { wardenMark?: boolean }).wardenMark === true);

/**
 * Chromium's console lines about the live requests that failed while the server was down, and
 * about the tab's icon, which Chromium may ask for late enough to meet the server gone.
 */
const DOWN_NOISE =
  /net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING) \(http:\/\/127\.0\.0\.1:\d+\/(admin\/(events|live)|static\/favicon\.svg)/;
/** What the live requests answer while the store is away. */
const STORE_DOWN_NOISE = /(503 GET|status of 503).*\/(admin\/(events|live|sessions)|readyz)/;

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`live console in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    const signInElsewhere = async (user: UserRow) =>
      (await e2e.t.app.warden.sessions.signIn(user, { ip: '198.51.100.9', userAgent: UA })).session
        .id;

    async function openConsole(): Promise<Page> {
      const page = await e2e.s.person('root');
      await signInThroughForm(page, ROOT, PASSWORD);
      await page.goto('/admin/sessions');
      await expect.poll(() => liveState(page)).toBe('live');
      await markPage(page);
      return page;
    }

    it('should lift the store banner once the table is answered again, when the stream never saw the store away', async () => {
      const { t } = e2e;
      await t.createUser(ROOT, 'superuser');
      const kim = await t.createUser('kim@example.test');
      const page = await openConsole();
      // One table refresh refused as if the store had paused for a moment; the stream's own
      // check never sees it, so no "store up" event will come.
      let refused = 0;
      await page.route('**/admin/sessions', async (route) => {
        if (refused > 0 || route.request().resourceType() !== 'fetch') return route.continue();
        refused++;
        await route.fulfill({ status: 503, contentType: 'text/html', body: '<p>away</p>' });
      });
      const fresh = await signInElsewhere(kim);
      await page.locator('#store-banner').waitFor({ timeout: LIVE_WITHIN_MS });
      // The table asks again by itself, is answered, and the banner goes.
      await row(page, fresh).waitFor({ timeout: 5_000 });
      await page.locator('#store-banner').waitFor({ state: 'detached', timeout: 1_000 });
      expect(refused).toBe(1);
      expect(await page.locator('#live-active').getAttribute('data-stale')).toBeNull();
    });

    it('should show sign-ins and revocations made elsewhere without a reload, keeping the selection', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      const kim = await t.createUser('kim@example.test');
      const selected = await signInElsewhere(kim);
      const page = await openConsole();
      await expect.poll(() => headerCount(page)).toBe('2');
      expect(await page.locator('#live-active').isVisible()).toBe(true);
      await row(page, selected).getByRole('checkbox').check();

      // A sign-in somewhere else: a new row at the top, the header count up, no reload.
      const started = performance.now();
      const fresh = await signInElsewhere(kim);
      await row(page, fresh).waitFor({ timeout: LIVE_WITHIN_MS });
      await expect.poll(() => headerCount(page), { timeout: LIVE_WITHIN_MS }).toBe('3');
      expect(performance.now() - started).toBeLessThan(LIVE_WITHIN_MS + 500);
      expect(await page.locator('#match-count').getAttribute('data-total')).toBe('3');
      expect(await row(page, selected).getByRole('checkbox').isChecked()).toBe(true);
      expect(await row(page, fresh).getByRole('checkbox').isChecked()).toBe(false);

      // A revocation by another superuser: the row goes, the count comes down.
      await t.createUser('deputy@warden.test', 'superuser');
      const deputy = t.client();
      await deputy.login('deputy@warden.test');
      const res = await deputy.postJson(`/admin/sessions/revoke/${fresh}`);
      expect(res.json().counts.revoked).toBe(1);
      await row(page, fresh).waitFor({ state: 'detached', timeout: LIVE_WITHIN_MS });
      // Root, the selected session and now the deputy's own.
      await expect.poll(() => headerCount(page), { timeout: LIVE_WITHIN_MS }).toBe('3');
      expect(await row(page, selected).getByRole('checkbox').isChecked()).toBe(true);
      expect(await stillSamePage(page)).toBe(true);

      // The header count follows on every console page, not only the sessions table.
      await page.goto('/admin/users');
      await expect.poll(() => liveState(page)).toBe('live');
      const before = Number(await headerCount(page));
      await signInElsewhere(kim);
      await expect
        .poll(() => headerCount(page), { timeout: LIVE_WITHIN_MS })
        .toBe(String(before + 1));

      expect(s.problemLines()).toEqual([]);
    });

    it.skipIf(kind !== BROWSER_KIND)(
      'should share one stream among the tabs of a browser, and hand it on when that tab closes',
      async () => {
        const { t, s } = e2e;
        await t.createUser(ROOT, 'superuser');
        const kim = await t.createUser('kim@example.test');
        const first = await openConsole();
        const streams: string[] = [];
        first.context().on('request', (r) => {
          if (r.url().endsWith('/admin/events')) streams.push(r.url());
        });
        const second = await first.context().newPage();
        await second.goto('/admin/sessions');
        await expect.poll(() => liveState(second)).toBe('live');
        await expect.poll(() => headerCount(second)).toBe(await headerCount(first));

        // Both tabs follow the change through the first tab's stream.
        const fresh = await signInElsewhere(kim);
        await row(first, fresh).waitFor({ timeout: LIVE_WITHIN_MS });
        await row(second, fresh).waitFor({ timeout: LIVE_WITHIN_MS });
        expect(streams).toEqual([]);

        // The tab with the stream goes away: the other one opens its own and carries on.
        await first.close();
        await expect.poll(() => streams.length, { timeout: 5_000 }).toBe(1);
        const next = await signInElsewhere(kim);
        await row(second, next).waitFor({ timeout: LIVE_WITHIN_MS });
        await expect.poll(() => headerCount(second)).toBe('3');
        expect(s.problemLines()).toEqual([]);
      },
    );

    // The Redis setup has its own reconnect test below, through a store outage.
    it.skipIf(kind !== BROWSER_KIND)(
      'should reconnect by itself after the server drops the connection and comes back',
      async () => {
        const { t, s } = e2e;
        await t.createUser(ROOT, 'superuser');
        const kim = await t.createUser('kim@example.test');
        const page = await openConsole();
        const port = Number(new URL(s.baseURL).port);

        // The server goes away: every connection cut, nothing listening on the port.
        const server = t.app.server;
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeAllConnections();
        await closed;
        await expect.poll(() => liveState(page), { timeout: 5_000 }).toBe('reconnecting');
        // A change while the page cannot hear it.
        const missed = await signInElsewhere(kim);
        await new Promise((r) => setTimeout(r, 1_500));

        // Back on the same port: the page reconnects, catches up, and hears the next change.
        await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
        await expect.poll(() => liveState(page), { timeout: 8_000 }).toBe('live');
        await row(page, missed).waitFor({ timeout: LIVE_WITHIN_MS });
        const next = await signInElsewhere(kim);
        await row(page, next).waitFor({ timeout: LIVE_WITHIN_MS });
        expect(await stillSamePage(page)).toBe(true);

        const problems = s.problemLines().filter((p) => !DOWN_NOISE.test(p));
        expect(problems).toEqual([]);
      },
    );
  });
}

const fleet = kinds.find((k) => k.kind === 'redis+postgres');
const ownRedisReason =
  fleet?.skip ??
  (fleet ? null : 'redis+postgres not selected') ??
  (chromium.action === 'skip' ? chromium.reason : null) ??
  (redisServerAvailable() ? null : 'no redis-server binary');

describe.skipIf(ownRedisReason !== null)('live console in Chromium while Redis goes away', () => {
  // An outage and two recoveries in one browser: 19 s on a slow 2-core machine in a full run.
  it('should show the store banner while the store is away, and recover by itself when it returns', {
    timeout: 90_000,
  }, async () => {
    const redis = await startOwnRedis();
    const t = await makeApp('redis+postgres', { redisUrl: redis.url });
    const browser = await launchChromium();
    const s = new BrowserSession(browser, await serve(t));
    try {
      await t.createUser(ROOT, 'superuser');
      const page = await s.person('root');
      await signInThroughForm(page, ROOT, PASSWORD);
      await page.goto('/admin/sessions');
      await expect.poll(() => liveState(page)).toBe('live');
      await markPage(page);
      const banner = page.locator('#store-banner');
      expect(await banner.count()).toBe(0);

      // Redis stops answering: the open stream says so.
      redis.pause();
      await banner.waitFor({ timeout: 5_000 });
      expect(await banner.textContent()).toContain('session store is unreachable');
      // The header's count is the last known one, and says so.
      const count = page.locator('#live-active');
      expect(await count.getAttribute('data-stale')).toBe('true');
      expect(await count.getAttribute('title')).toContain(
        'when the session store was last reached',
      );

      // A page opened meanwhile is refused, and waits to reload by itself.
      const late = await page.context().newPage();
      const refused = await late.goto('/admin/sessions');
      expect(refused?.status()).toBe(503);
      expect(await late.locator('[data-error-code]').getAttribute('data-error-code')).toBe(
        'WARDEN_STORE_UNAVAILABLE',
      );
      expect(await late.locator('a[data-reload-when-ready]').count()).toBe(1);

      // The connection drops too: reconnecting meets 503 until Redis is back.
      t.app.server.closeAllConnections();
      await expect.poll(() => liveState(page), { timeout: 5_000 }).toBe('reconnecting');
      // Long enough for the browser's own retry to be refused, so that the script takes over.
      await page.waitForResponse((r) => r.url().endsWith('/admin/live') && r.status() === 503, {
        timeout: 8_000,
      });
      redis.resume();
      await expect.poll(() => liveState(page), { timeout: 10_000 }).toBe('live');
      await banner.waitFor({ state: 'detached', timeout: 5_000 });
      expect(await count.getAttribute('data-stale')).toBeNull();
      expect(await stillSamePage(page)).toBe(true);
      // The refused page came back on its own, with no click.
      await late.locator('#sessions-table').waitFor({ timeout: 10_000 });

      const lines = s.problemLines();
      // The outage showed up as the expected failed live requests, and as nothing else.
      expect(lines.some((p) => STORE_DOWN_NOISE.test(p))).toBe(true);
      const problems = lines.filter((p) => !DOWN_NOISE.test(p) && !STORE_DOWN_NOISE.test(p));
      expect(problems).toEqual([]);
    } finally {
      redis.resume();
      await s.close();
      await browser.close();
      await t.close();
      await redis.stop();
    }
  });
});
