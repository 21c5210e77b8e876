/**
 * The console's many-session actions in headless Chromium: bulk revoke of a filtered view
 * through the script's progress bar, the superuser's own session kept unless they say
 * otherwise, and revoke-matching behind its typed confirmation. Every page visited must run
 * without a console error, page error or CSP violation.
 */
import type { Page, Route } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import { PASSWORD, storeKindsToRun } from '../support/app.js';
import { chromiumGate, signInThroughForm, toastTexts, useBrowser } from '../support/browser.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end console tests (console-bulk)');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@warden.test';
const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';

const sessionRows = (page: Page) => page.locator('#sessions-table tbody tr[data-session-id]');
const matchCount = (page: Page) => page.locator('#match-count').getAttribute('data-total');

/**
 * Holds every request to a path until the test lets it go, so the page can be looked at
 * between the batches of a bulk action.
 */
async function holdRequests(page: Page, glob: string) {
  const waiting: Route[] = [];
  let arrived: (() => void) | undefined;
  await page.route(glob, (route) => {
    waiting.push(route);
    arrived?.();
  });
  return {
    /** How many requests arrived and wait. */
    count: () => waiting.length,
    async next(): Promise<Route> {
      while (waiting.length === 0) {
        await new Promise<void>((resolve) => {
          arrived = resolve;
        });
      }
      return waiting.shift()!;
    },
  };
}

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`console bulk actions in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    async function sessionsFor(user: UserRow, n: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const { session } = await e2e.t.app.warden.sessions.signIn(user, {
          ip: `198.51.100.${(i % 250) + 1}`,
          userAgent: UA,
        });
        ids.push(session.id);
      }
      return ids;
    }

    /** The superuser, signed in through the form in a context of their own. */
    async function superuser(): Promise<Page> {
      await e2e.t.createUser(ROOT, 'superuser');
      const admin = await e2e.s.person('B');
      await signInThroughForm(admin, ROOT, PASSWORD);
      return admin;
    }

    it('should revoke every selected session of a filtered view in batches behind a progress bar', async () => {
      const { t, s } = e2e;
      // 120 sessions over three users match "fleet"; two others do not.
      const fleet: string[] = [];
      for (const name of ['fleet-a', 'fleet-b', 'fleet-c']) {
        fleet.push(...(await sessionsFor(await t.createUser(`${name}@example.test`), 40)));
      }
      const others = await sessionsFor(await t.createUser('bystander@example.test'), 2);
      const admin = await superuser();

      // A view is a link: the filter plus a page large enough for every fleet session.
      await admin.goto('/admin/sessions?email=FLEET&per_page=200');
      expect(await matchCount(admin)).toBe('120');
      expect(await sessionRows(admin).count()).toBe(120);

      const held = await holdRequests(admin, '**/admin/sessions/bulk-revoke');
      const bulk = admin.getByRole('button', { name: 'Bulk revoke selected' });
      // Nothing ticked: it says so, with no question to answer, and sends nothing.
      await bulk.click();
      expect(await toastTexts(admin)).toEqual(['Select at least one session first.']);
      expect(s.dialogs).toEqual([]);
      expect(held.count()).toBe(0);
      // It asks first, naming how many; a "no" sends nothing and ends nothing.
      s.answerDialogs = 'dismiss';
      await admin.locator('#sessions-table input[name="ids"]').first().check();
      await bulk.click();
      await expect.poll(() => s.dialogs.at(-1)).toBe('End the 1 selected session?');
      await admin.getByLabel('Select all on this page').check();
      expect(await admin.locator('#sessions-table input[name="ids"]:checked').count()).toBe(120);
      await bulk.click();
      await expect.poll(() => s.dialogs.at(-1)).toBe('End the 120 selected sessions?');
      expect(held.count()).toBe(0);
      // The fleet's 120, the bystander's 2 and the superuser's own: all still there.
      expect((await t.store.list({ now: Date.now(), offset: 0, limit: 0 })).total).toBe(123);
      s.answerDialogs = 'accept';
      await bulk.click();

      // First batch in flight: the script posts JSON with the page's CSRF token.
      const first = await held.next();
      const headers = first.request().headers();
      expect(headers['content-type']).toBe('application/json');
      expect(headers.accept).toBe('application/json');
      expect(headers['x-csrf-token']).toBe(
        await admin.locator('meta[name="csrf-token"]').getAttribute('content'),
      );
      const firstIds = first.request().postDataJSON().ids as string[];
      expect(firstIds).toHaveLength(100);
      const progress = admin.locator('#bulk-progress');
      await progress.waitFor({ state: 'visible' });
      expect(await progress.getAttribute('aria-valuenow')).toBe('0');
      expect(await progress.textContent()).toContain('0 / 120');
      expect(await bulk.isDisabled()).toBe(true);
      await first.continue();

      // Second batch in flight: the first one's rows are struck out, the bar moved on.
      const second = await held.next();
      const secondIds = second.request().postDataJSON().ids as string[];
      expect(secondIds).toHaveLength(20);
      expect(new Set([...firstIds, ...secondIds])).toEqual(new Set(fleet));
      expect(await progress.getAttribute('aria-valuenow')).toBe('83');
      expect(await progress.textContent()).toContain('100 / 120');
      expect(await admin.locator('#sessions-table tr.revoked').count()).toBe(100);
      await Promise.all([admin.waitForEvent('load'), second.continue()]);

      // The page reloaded itself: the toast counts every session, and the rows are gone.
      expect(await toastTexts(admin)).toEqual(['120 revoked.']);
      expect(new URL(admin.url()).searchParams.get('email')).toBe('FLEET');
      expect(await matchCount(admin)).toBe('0');
      expect(await sessionRows(admin).count()).toBe(0);
      await admin.reload();
      expect(await matchCount(admin)).toBe('0');

      // Outside the filter nothing changed: the bystander's two and the superuser's own.
      await admin.getByRole('link', { name: 'Clear' }).click();
      await admin.waitForURL((url) => url.search === '');
      expect(await matchCount(admin)).toBe('3');
      const left = await sessionRows(admin).evaluateAll((rows) =>
        rows.map((r) => r.getAttribute('data-session-id')),
      );
      expect(left).toEqual(expect.arrayContaining(others));

      expect(s.problemLines()).toEqual([]);
    });

    it('should send a bulk revocation whose session lapsed to sign in, saying it was not done', async () => {
      const { t } = e2e;
      const admin = await superuser();
      const others = await sessionsFor(await t.createUser('lapse@example.test'), 3);
      // The live stream would notice the session end and leave by itself (a laptop asleep
      // would not): without it, the page stays until its next request.
      await admin.route('**/admin/events', (route) => route.abort());
      await admin.goto('/admin/sessions?email=lapse@');
      expect(await matchCount(admin)).toBe('3');
      const root = (await t.app.warden.users.repo.findByEmail(ROOT))!;
      for (const s of await t.store.listByUser(root.id)) await t.store.delete(s.id);
      await admin.getByLabel('Select all on this page').check();
      await admin.getByRole('button', { name: 'Bulk revoke selected' }).click();
      await admin.waitForURL((url) => url.pathname === '/login');
      expect(new URL(admin.url()).searchParams.get('next')).toBe('/admin/sessions?email=lapse@');
      expect(await toastTexts(admin)).toEqual([
        'You were not signed in, so the rest was not done. Sign in, then do it again.',
      ]);
      for (const id of others) expect(await t.store.get(id)).not.toBeNull();
    });

    it("should keep the superuser's own session unless 'Include my own session' is checked", async () => {
      const { t, s } = e2e;
      const admin = await superuser();
      // The same superuser signed in on another device too.
      const root = (await t.app.warden.users.repo.findByEmail(ROOT))!;
      const [otherDevice] = await sessionsFor(root, 1);

      await admin.goto('/admin/sessions');
      await admin.getByLabel('User email contains').fill('ROOT@');
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.get('email') === 'ROOT@'),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      expect(await matchCount(admin)).toBe('2');
      const own = sessionRows(admin).filter({ has: admin.locator('.badge', { hasText: 'you' }) });
      expect(await own.count()).toBe(1);
      const ownId = await own.getAttribute('data-session-id');

      // The row's own Revoke, without the box: kept.
      await own.getByRole('button', { name: 'Revoke', exact: true }).click();
      expect(await toastTexts(admin)).toEqual(['1 kept (your own session).']);
      // The toast leaves the page's controls free while it shows.
      const toast = (await admin.locator('#toasts [data-warden-toast]').first().boundingBox())!;
      for (const control of [
        admin.locator('#saved-views-toggle'),
        admin.locator('[data-export="csv"]'),
        admin.locator('[data-export="json"]'),
        admin.getByRole('button', { name: 'Filter' }),
        admin.getByRole('button', { name: 'Bulk revoke selected' }),
      ]) {
        const box = (await control.boundingBox())!;
        const apart =
          toast.x >= box.x + box.width ||
          box.x >= toast.x + toast.width ||
          toast.y >= box.y + box.height ||
          box.y >= toast.y + toast.height;
        expect(apart, await control.evaluate((el) => el.outerHTML.slice(0, 60))).toBe(true);
      }
      expect(await matchCount(admin)).toBe('2');

      // Select-all through the script, without the box: the other device goes, own stays.
      await admin.getByLabel('Select all on this page').check();
      await Promise.all([
        admin.waitForEvent('load'),
        admin.getByRole('button', { name: 'Bulk revoke selected' }).click(),
      ]);
      expect(await toastTexts(admin)).toEqual(['1 revoked, 1 kept (your own session).']);
      expect(await matchCount(admin)).toBe('1');
      expect(await sessionRows(admin).getAttribute('data-session-id')).toBe(ownId);
      expect(await t.store.get(otherDevice)).toBeNull();

      // With the box, the row's Revoke ends the superuser's own session: signed out.
      await admin.getByLabel('Include my own session').check();
      await sessionRows(admin).getByRole('button', { name: 'Revoke', exact: true }).click();
      await admin.waitForURL((url) => url.pathname === '/login');
      expect(await toastTexts(admin)).toEqual(['1 revoked.']);
      expect(await t.store.get(ownId!)).toBeNull();
      await admin.goto('/admin/sessions');
      expect(new URL(admin.url()).pathname).toBe('/login');

      expect(s.problemLines()).toEqual([]);
    });

    it('should revoke exactly the matching sessions once their number is typed to confirm', async () => {
      const { t, s } = e2e;
      await sessionsFor(await t.createUser('temp-a@example.test'), 3);
      await sessionsFor(await t.createUser('TEMP-b@example.test', 'superuser'), 2);
      const kept = await sessionsFor(await t.createUser('keeper@example.test'), 2);
      const admin = await superuser();

      await admin.goto('/admin/sessions');
      await admin.getByLabel('User email contains').fill('temp-');
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.has('email')),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      expect(await matchCount(admin)).toBe('5');
      await admin.getByRole('link', { name: 'Revoke all 5 matching…' }).click();
      await admin.waitForURL('**/admin/sessions/revoke-matching?email=temp-');
      expect(await admin.locator('#matching-total').textContent()).toBe('5');

      // A wrong number is refused with the form again, and nothing ends.
      await admin.getByLabel('Type 5 to confirm').fill('4');
      await admin.getByRole('button', { name: 'Revoke 5 sessions' }).click();
      await admin.locator('main .alert-danger').waitFor();
      expect(await admin.locator('main .alert-danger').textContent()).toContain('4');
      expect(
        await t.store.list({ now: Date.now(), status: 'all', offset: 0, limit: 0 }),
      ).toMatchObject({ total: 8 });

      // The right number, on the form the refusal handed back.
      await admin.getByLabel('Type 5 to confirm').fill('5');
      await admin.getByRole('button', { name: 'Revoke 5 sessions' }).click();
      await admin.waitForURL((url) => url.pathname === '/admin/sessions');
      expect(await toastTexts(admin)).toEqual(['5 revoked.']);
      expect(new URL(admin.url()).searchParams.get('email')).toBe('temp-');
      expect(await matchCount(admin)).toBe('0');

      await admin.getByRole('link', { name: 'Clear' }).click();
      await admin.waitForURL((url) => url.search === '');
      expect(await matchCount(admin)).toBe('3');
      const left = await sessionRows(admin).evaluateAll((rows) =>
        rows.map((r) => r.getAttribute('data-session-id')),
      );
      expect(left).toEqual(expect.arrayContaining(kept));

      // The refused confirmation answered 400 on purpose; nothing else may show up.
      expect(s.problemLines({ expectedPageStatuses: [400] })).toEqual([]);
    });
  });
}
