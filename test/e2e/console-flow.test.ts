/**
 * The console as people use it, in headless Chromium against a Warden listening on loopback:
 * an anonymous person registers, a superuser approves them, they sign in, and the superuser
 * finds their session through the filter and revokes it; the Clear link resets the filters.
 * On a phone both tables stack, a row to a block. Every page visited must run without a console
 * error, page error or CSP violation.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import { PASSWORD, storeKindsToRun } from '../support/app.js';
import { chromiumGate, signInThroughForm, toastTexts, useBrowser } from '../support/browser.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end console tests (console-flow)');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@warden.test';
const UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15';

/** Rows of the sessions table (the "no match" row has no session id). */
const sessionRows = (page: Page) => page.locator('#sessions-table tbody tr[data-session-id]');

/** How far the page or any table's box scrolls sideways, in CSS pixels. */
const scrollsSideways = (page: Page) =>
  page.evaluate(() =>
    Math.max(
      document.documentElement.scrollWidth - document.documentElement.clientWidth,
      ...Array.from(document.querySelectorAll('.table-responsive')).map(
        (e) => e.scrollWidth - e.clientWidth,
      ),
    ),
  );

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`console flow in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    /** Sessions started outside the browser, as other devices would have them. */
    async function sessionsFor(user: UserRow, n: number) {
      for (let i = 0; i < n; i++) {
        await e2e.t.app.warden.sessions.signIn(user, { ip: `192.0.2.${i + 1}`, userAgent: UA });
      }
    }

    it("should end the user's session when a superuser revokes it from the filtered table", async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      // Decoys: one shares the first name and domain, one the surname; neither contains the filter.
      await sessionsFor(await t.createUser('dana@example.test'), 1);
      await sessionsFor(await t.createUser('reyes@other.test'), 2);
      const email = 'Dana.Reyes@Example.test';

      // A: an anonymous person registers.
      const anon = await s.person('A');
      await anon.goto('/register');
      const form = anon.locator('main form[action="/register"]');
      await form.getByLabel('Email').fill(email);
      await form.getByLabel('Password').fill('a long enough passphrase');
      await form.getByRole('button', { name: 'Register' }).click();
      await expect.poll(() => anon.locator('main h1').textContent()).toBe('Thanks for registering');
      expect(await anon.locator('main strong').textContent()).toBe(email);

      // B: the superuser signs in and approves the account from the users page.
      const admin = await s.person('B');
      await signInThroughForm(admin, ROOT, PASSWORD);
      await admin.getByRole('link', { name: 'Users', exact: true }).click();
      await admin.waitForURL('**/admin/users');
      const userRow = admin.locator('#users-table tbody tr', { hasText: email });
      expect(await userRow.locator('.badge').textContent()).toBe('pending');
      await userRow.getByRole('button', { name: 'Approve' }).click();
      expect(await toastTexts(admin)).toEqual([`${email} is now approved.`]);
      // Read out too: the page's live region, empty when it loaded, gets the toast's words.
      await expect
        .poll(() => admin.locator('#announcer').textContent())
        .toBe(`${email} is now approved.`);
      await expect.poll(() => userRow.locator('.badge').textContent()).toBe('approved');
      // The first Tab reaches a link past the navigation, which takes the focus to the page.
      await admin.keyboard.press('Tab');
      expect(await admin.evaluate(() => document.activeElement?.textContent)).toBe(
        "Skip to the page's content",
      );
      await admin.keyboard.press('Enter');
      await expect.poll(() => admin.evaluate(() => document.activeElement?.id)).toBe('main');
      // A field reached by keyboard wears a solid ring, not Bootstrap's pale glow alone.
      await admin.locator('main input.form-control').first().focus();
      expect(
        await admin.evaluate(() => {
          const style = getComputedStyle(document.activeElement as Element);
          return `${style.outlineStyle} ${style.outlineWidth}`;
        }),
      ).toBe('solid 3px');

      // C: the approved user signs in through the form and lands on the home page.
      const user = await s.person('C');
      await signInThroughForm(user, email, 'a long enough passphrase');
      expect(new URL(user.url()).pathname).toBe('/');
      expect(await user.getByTestId('whoami').textContent()).toBe(email);

      // B: part of the email, in another case, finds exactly that session.
      await admin.getByRole('link', { name: 'Sessions', exact: true }).click();
      await admin.waitForURL('**/admin/sessions');
      expect(await sessionRows(admin).count()).toBe(5);
      await admin.getByLabel('User email contains').fill('DANA.reyes@EXAMPLE');
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.get('email') === 'DANA.reyes@EXAMPLE'),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('1');
      expect(await admin.locator('#match-count').textContent()).toBe('1 matching');
      const rows = sessionRows(admin);
      expect(await rows.count()).toBe(1);
      expect(await rows.locator('td').nth(1).textContent()).toBe(email);
      expect(await rows.locator('[data-status]').textContent()).toBe('active');
      expect(await rows.locator('td').nth(8).textContent()).toMatch(/^Chrome Headless \d+$/);

      await rows.getByRole('button', { name: 'Revoke', exact: true }).click();
      expect(await toastTexts(admin)).toEqual(['1 revoked.']);
      // Back on the same filtered view, which no longer lists the session.
      expect(new URL(admin.url()).searchParams.get('email')).toBe('DANA.reyes@EXAMPLE');
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('0');
      expect(await sessionRows(admin).count()).toBe(0);
      expect(await admin.locator('#sessions-table tbody').textContent()).toContain(
        'No session matches these filters.',
      );

      // C: the user's next navigation is signed out.
      await user.reload();
      expect(new URL(user.url()).pathname).toBe('/login');
      expect(await user.locator('main h1').textContent()).toBe('Sign in');
      expect(await user.getByRole('link', { name: 'Sign in' }).count()).toBe(1);
      expect(await user.locator('nav').textContent()).not.toContain(email);

      // The superuser is still signed in, and the decoys' sessions are untouched.
      await admin.getByRole('link', { name: 'Clear' }).click();
      await admin.waitForURL((url) => url.pathname === '/admin/sessions' && url.search === '');
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('4');

      // "Revoke all of user" asks first, naming the user: a "no" ends nothing, a "yes" all.
      const decoy = sessionRows(admin).filter({ hasText: 'reyes@other.test' }).first();
      s.answerDialogs = 'dismiss';
      await decoy.getByRole('button', { name: 'Revoke all of user' }).click();
      await expect.poll(() => s.dialogs.at(-1)).toBe('End every session of reyes@other.test?');
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('4');
      s.answerDialogs = 'accept';
      await decoy.getByRole('button', { name: 'Revoke all of user' }).click();
      expect(await toastTexts(admin)).toEqual(['2 revoked.']);
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('2');

      // Every page of the flow was visited, and none logged an error or broke the CSP.
      expect(s.visitedPaths().sort()).toEqual(
        ['/', '/admin/sessions', '/admin/users', '/login', '/register'].sort(),
      );
      expect(s.problemLines()).toEqual([]);
    });

    it('should reset every filter to its default when Clear is clicked', async () => {
      const { t, s } = e2e;
      // The UTC day the sessions below are created on (the filter's days are UTC days).
      const today = new Date().toISOString().slice(0, 10);
      await t.createUser(ROOT, 'superuser');
      await sessionsFor(await t.createUser('carol@example.test'), 2);
      await sessionsFor(await t.createUser('carl@example.test', 'superuser'), 1);
      await sessionsFor(await t.createUser('ivan@example.test'), 3);
      const admin = await s.person('B');
      await signInThroughForm(admin, ROOT, PASSWORD);
      await admin.goto('/admin/sessions');
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('7');

      await admin.getByLabel('User email contains').fill('CAR');
      await admin.getByLabel('Status').selectOption('active');
      await admin.getByLabel('Role').selectOption('user');
      await admin.getByLabel('Created from').fill(today);
      await admin.getByLabel('Created to').fill(today);
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.has('email')),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      const query = Object.fromEntries(new URL(admin.url()).searchParams);
      expect(query).toEqual({
        email: 'CAR',
        status: 'active',
        role: 'user',
        created_from: today,
        created_to: today,
      });
      // carol's two; carl is a superuser and ivan does not match.
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('2');
      expect(await admin.locator('#sessions-table caption').textContent()).toContain('(filtered)');
      expect(await admin.getByLabel('User email contains').inputValue()).toBe('CAR');
      expect(await admin.getByLabel('Role').inputValue()).toBe('user');

      await admin.getByRole('link', { name: 'Clear' }).click();
      await admin.waitForURL((url) => url.pathname === '/admin/sessions' && url.search === '');
      expect(await admin.getByLabel('User email contains').inputValue()).toBe('');
      expect(await admin.getByLabel('Status').inputValue()).toBe('all');
      expect(await admin.getByLabel('Role').inputValue()).toBe('all');
      expect(await admin.getByLabel('Created from').inputValue()).toBe('');
      expect(await admin.getByLabel('Created to').inputValue()).toBe('');
      expect(await admin.locator('#match-count').getAttribute('data-total')).toBe('7');
      expect(await sessionRows(admin).count()).toBe(7);
      expect(await admin.locator('#sessions-table caption').textContent()).not.toContain(
        '(filtered)',
      );

      expect(s.problemLines()).toEqual([]);
    });

    it('should keep each navbar link on one line and Sign out on the screen at laptop widths', async () => {
      const { t, s } = e2e;
      const long = 'maximiliana.vandersteen-oyelaran@a-long-domain.example.test';
      await t.createUser(long, 'superuser');
      const page = await s.person('L');
      await signInThroughForm(page, long, PASSWORD);
      for (const width of [800, 1024, 1280]) {
        await page.setViewportSize({ width, height: 700 });
        await page.goto('/admin/sessions');
        const heights = await page
          .locator('nav .nav-link')
          .evaluateAll((links) => links.map((l) => Math.round(l.getBoundingClientRect().height)));
        expect(new Set(heights).size, `${width}: ${heights}`).toBe(1);
        const signOut = await page.getByRole('button', { name: 'Sign out' }).boundingBox();
        expect(signOut!.x + signOut!.width, String(width)).toBeLessThanOrEqual(width);
        expect(signOut!.height, String(width)).toBeLessThan(40);
        expect(await page.locator('.nav-account').getAttribute('title')).toBe(
          `${long} (superuser)`,
        );
      }
      expect(s.problemLines()).toEqual([]);
    });

    it("should fit the console's tables on a phone, each row a block with its buttons in reach", async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      const long = await t.createUser(
        'maximiliana.vandersteen-oyelaran@a-long-domain.example.test',
      );
      await sessionsFor(long, 2);
      await t.app.warden.sessions.signIn(long, {
        ip: '2001:db8:85a3:1319:8a2e:370:7348:1234',
        userAgent: UA,
      });
      await t.createUser('waiting@example.test', 'user', 'pending');

      const phone = await s.person('P');
      await phone.setViewportSize({ width: 390, height: 844 });
      await signInThroughForm(phone, ROOT, PASSWORD);
      const sideways = () => scrollsSideways(phone);

      await phone.goto('/admin/sessions');
      // The navigation, opened over the page, closes with Escape and gives the focus back.
      const toggler = phone.getByRole('button', { name: 'Toggle navigation' });
      await toggler.click();
      await expect.poll(() => phone.locator('#nav').getAttribute('class')).toContain('show');
      await phone.keyboard.press('Escape');
      await expect.poll(() => phone.locator('#nav').getAttribute('class')).not.toContain('show');
      expect(await toggler.evaluate((b) => b === document.activeElement)).toBe(true);
      const rows = sessionRows(phone);
      expect(await rows.count()).toBe(4);
      expect(await sideways()).toBeLessThanOrEqual(0);
      const row = rows.filter({ hasText: '2001:db8:85a3' });
      // Each cell says which column it is; the buttons sit inside the screen.
      expect(
        await row
          .locator('td[data-label="IP"]')
          .evaluate((td) => getComputedStyle(td, '::before').content),
      ).toBe('"IP"');
      const revoke = row.getByRole('button', { name: 'Revoke', exact: true });
      const box = await revoke.boundingBox();
      expect(box!.x + box!.width).toBeLessThanOrEqual(390);
      const allOf = await row.getByRole('button', { name: 'Revoke all of user' }).boundingBox();
      expect(allOf!.x + allOf!.width).toBeLessThanOrEqual(390);
      // The select-all box has its words beside it, and they select too.
      await phone.getByText('All on this page', { exact: true }).click();
      expect(await phone.locator('#sessions-table tbody input[name="ids"]:checked').count()).toBe(
        4,
      );
      await phone.getByText('All on this page', { exact: true }).click();
      expect(await phone.locator('#sessions-table tbody input[name="ids"]:checked').count()).toBe(
        0,
      );
      await revoke.click();
      expect(await toastTexts(phone)).toEqual(['1 revoked.']);
      expect(await sideways()).toBeLessThanOrEqual(0);

      await phone.goto('/admin/users');
      expect(await sideways()).toBeLessThanOrEqual(0);
      const pending = phone.locator('#users-table tbody tr', { hasText: 'waiting@example.test' });
      const approve = await pending.getByRole('button', { name: 'Approve' }).boundingBox();
      expect(approve!.x + approve!.width).toBeLessThanOrEqual(390);
      // The select-all box of the header stays; the column names move into the rows.
      expect(await phone.locator('#select-all-users').isVisible()).toBe(true);
      expect(await phone.locator('#users-table thead th', { hasText: 'Email' }).isVisible()).toBe(
        false,
      );

      // A user's own page: the live sessions stack, each Revoke on the screen.
      await phone.goto(`/admin/users/${long.id}`);
      expect(await sideways()).toBeLessThanOrEqual(0);
      const own = phone.locator('#user-sessions tbody tr[data-session-id]');
      expect(await own.count()).toBe(2);
      for (const button of await own.getByRole('button', { name: 'Revoke' }).all()) {
        const edge = await button.boundingBox();
        expect(edge!.x + edge!.width).toBeLessThanOrEqual(390);
      }
      // The Ended tab lists that revocation in the same way.
      await phone.goto('/admin/sessions/ended');
      expect(await sideways()).toBeLessThanOrEqual(0);
      expect(await phone.locator('#ended-table tbody tr[data-kind="revoked"]').count()).toBe(1);
      // The audit log too: the revocation above is a block of labelled lines.
      await phone.goto('/admin/audit');
      expect(await sideways()).toBeLessThanOrEqual(0);
      const entry = phone.locator('#audit-table tbody tr[data-audit-id]').first();
      expect(await entry.locator('td[data-action]').textContent()).toBe('sessions.revoke');
      expect(
        await entry
          .locator('td[data-label="Outcome"]')
          .evaluate((td) => getComputedStyle(td, '::before').content),
      ).toBe('"Outcome"');
      // The policy's limits per role: every column on the screen, no box scrolling sideways.
      await phone.goto('/admin/policy');
      expect(await sideways()).toBeLessThanOrEqual(0);
      const limits = phone.locator('#role-limits');
      expect(
        await limits.evaluate((t) => t.parentElement!.scrollWidth - t.parentElement!.clientWidth),
      ).toBeLessThanOrEqual(0);
      const choice = await phone.locator('#p-on_limit_superuser').boundingBox();
      expect(choice!.x + choice!.width).toBeLessThanOrEqual(390);
      // Each choice reads whole in its closed field: the longest option's words fit between
      // the field's paddings (the arrow sits in the right one).
      const cut = await phone.locator('#role-limits select').evaluateAll((selects) =>
        (selects as HTMLSelectElement[]).map((select) => {
          const style = getComputedStyle(select);
          const ctx = document.createElement('canvas').getContext('2d')!;
          ctx.font = style.font;
          const words = Math.max(
            ...Array.from(select.options).map((o) => ctx.measureText(o.text).width),
          );
          const room =
            select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
          return words - room;
        }),
      );
      expect(cut).toHaveLength(3);
      for (const c of cut) expect(c).toBeLessThanOrEqual(0);

      expect(s.problemLines()).toEqual([]);
    });

    it('should fit the sessions table on a tablet and a laptop, every row with its buttons in view', async () => {
      const { t, s } = e2e;
      // No hyphen before the @: nothing to wrap at but what the page allows.
      const long = 'maximiliana.vandersteenoyelaran.administrator@a-long-domain.example.test';
      const admin = await t.createUser(long, 'superuser');
      await sessionsFor(admin, 3);
      await t.app.warden.sessions.signIn(admin, {
        ip: '2001:0db8:85a3:1319:8a2e:0370:7348:1234',
        userAgent: UA,
      });
      await sessionsFor(await t.createUser('elena.larsen50@example.test'), 1);
      const page = await s.person('T');
      await signInThroughForm(page, long, PASSWORD);
      // One ended session, with the long address and a long IPv6 address, for the Ended tab.
      await page.goto('/admin/sessions');
      await sessionRows(page)
        .filter({ hasText: '2001:0db8:85a3' })
        .getByRole('button', { name: 'Revoke', exact: true })
        .click();
      expect(await toastTexts(page)).toEqual(['1 revoked.']);
      // Below 1200 px the rows stack as on a phone; from there on the table keeps its columns.
      for (const [width, stacked] of [
        [800, true],
        [1024, true],
        [1200, false],
        [1280, false],
        [1440, false],
      ] as const) {
        await page.setViewportSize({ width, height: 800 });
        await page.goto('/admin/sessions');
        expect(await scrollsSideways(page), String(width)).toBeLessThanOrEqual(0);
        expect(
          await page.locator('#sessions-table thead th', { hasText: 'Actions' }).isVisible(),
        ).toBe(!stacked);
        const rights = await page
          .locator('#sessions-table tbody [data-action]')
          .evaluateAll((buttons) => buttons.map((b) => b.getBoundingClientRect().right));
        expect(rights.length, String(width)).toBe(2 * 5);
        expect(Math.max(...rights), String(width)).toBeLessThanOrEqual(width);
        // An ordinary address keeps one line, in columns as in a stacked row.
        const lines = await page
          .locator('#sessions-table td[data-label="Email"]', { hasText: 'elena.larsen50' })
          .evaluate((td) => {
            const range = document.createRange();
            range.selectNodeContents(td.firstChild!);
            return new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top))).size;
          });
        expect(lines, String(width)).toBe(1);
        await page.goto('/admin/users');
        expect(await scrollsSideways(page), `users ${width}`).toBeLessThanOrEqual(0);
        await page.goto('/admin/sessions/ended');
        expect(await page.locator('#ended-table tbody tr[data-kind="revoked"]').count()).toBe(1);
        expect(await scrollsSideways(page), `ended ${width}`).toBeLessThanOrEqual(0);
        // The user's own page: the address in the breadcrumb and in "Revoke all sessions of".
        await page.goto(`/admin/users/${admin.id}`);
        expect(await scrollsSideways(page), `user page ${width}`).toBeLessThanOrEqual(0);
      }
      // The home page names the account: a long address wraps on a phone.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`/admin/users/${admin.id}`);
      expect(await scrollsSideways(page), 'user page 390').toBeLessThanOrEqual(0);
      await page.goto('/');
      expect(await page.getByTestId('whoami').textContent()).toBe(long);
      expect(await scrollsSideways(page)).toBeLessThanOrEqual(0);
      // And the statistics, where that address leads the users with the most sessions.
      await page.goto('/admin/sessions/stats');
      await expect.poll(() => page.locator('[data-rows="topUsers"]').textContent()).toContain(long);
      expect(await scrollsSideways(page)).toBeLessThanOrEqual(0);
      expect(s.problemLines()).toEqual([]);
    });
  });
}
