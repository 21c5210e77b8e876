/**
 * In Chromium: every console and personal page, rendered with hostile user agents, emails, a
 * forwarded IP, filter values and a saved view's name in it, opens no dialog and reports no CSP
 * violation, console error or server error; a toast with a hostile email shows it as text. And
 * step-up in the browser: a sensitive action past the window shows the password page, which
 * then carries out the very action, including a bulk revoke the script had started.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantSession } from '../routes/helpers.js';
import { makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  BrowserSession,
  chromiumGate,
  launchChromium,
  serve,
  signInThroughForm,
  toastTexts,
} from '../support/browser.js';
import {
  HOSTILE_AGENTS,
  HOSTILE_EMAILS,
  HOSTILE_FILTER,
  type Seeded,
  seedHostile,
} from './hostile.js';
import { makeWorld, routesOf, urlFor, type World } from './support.js';

const FORWARDED_IP = `<img/src=x/onerror=alert('xss-xff')>`;
const gate = await chromiumGate('security browser tests');
if (gate.action === 'fail') throw new Error(gate.reason);
const kinds = await storeKindsToRun();

describe.skipIf(gate.action === 'skip')('security in Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const { kind, skip } of kinds) {
    describe.skipIf(skip !== null)(`on ${kind}`, () => {
      let t: TestApp;
      let w: World;
      let seeded: Seeded;
      let s: BrowserSession;
      /** The hostile user's cookie, signed in through a trusted proxy with a hostile agent. */
      let hostileCookie: string;

      beforeAll(async () => {
        t = await makeApp(kind, {
          env: { TRUST_PROXY: 'true', STEP_UP_WINDOW: '1s', STEP_UP_BULK_THRESHOLD: '2' },
        });
        w = await makeWorld(t);
        seeded = await seedHostile(t, w.su);
        const c = t.client();
        c.userAgent = HOSTILE_AGENTS[1];
        const token = await c.csrf();
        const login = await c.request({
          method: 'POST',
          url: '/api/auth/login',
          json: { email: HOSTILE_EMAILS[2], password: PASSWORD },
          headers: { 'x-csrf-token': token, 'x-forwarded-for': FORWARDED_IP },
        });
        expect(login.statusCode, login.body).toBe(200);
        hostileCookie = c.cookies.get('warden_session')!;
        await w.su.postJson(`/admin/sessions/revoke/${seeded.sessionIds[1]}`, {});
        s = new BrowserSession(browser, await serve(t));
      });
      afterAll(async () => {
        await s?.close();
        await t?.close();
      });

      /**
       * Collects every dialog a page opens (the browser session answers them): none may come
       * from the hostile data, only Warden's own questions before an action.
       */
      function watchDialogs(page: Page): string[] {
        const opened: string[] = [];
        page.on('dialog', (d) => opened.push(d.message()));
        return opened;
      }

      /** The HTML pages a superuser can open, from the route table, and hostile variants. */
      async function htmlPages(): Promise<string[]> {
        const filter = encodeURIComponent(HOSTILE_FILTER);
        const candidates = [
          ...routesOf(t)
            .filter(
              (r) => r.method === 'GET' && !r.url.startsWith('/static/') && !r.schema.produces,
            )
            .map((r) => urlFor(w, r)),
          ...seeded.userIds.map((id) => `/admin/users/${id}`),
          `/admin/sessions?email=${filter}&status=all`,
          `/admin/users?email=${filter}`,
        ];
        const pages: string[] = [];
        for (const url of candidates) {
          const res = await w.su.get(url, 'html');
          const isPage = String(res.headers['content-type']).startsWith('text/html');
          if (isPage && res.statusCode === 200) pages.push(url);
        }
        return pages;
      }

      it('should open no dialog and break no CSP rule on any page with hostile data in it', async () => {
        const page = await s.person('superuser');
        const dialogs = watchDialogs(page);
        await signInThroughForm(page, 'su@example.test', PASSWORD);
        const pages = await htmlPages();
        expect(pages.length).toBeGreaterThan(15);
        for (const url of pages) {
          await page.goto(url, { waitUntil: 'load' });
          // Charts draw and the live script connects after load: give them a moment.
          await page.waitForTimeout(url.includes('analytics') || url.includes('stats') ? 300 : 30);
        }

        // A toast that names a hostile user.
        await page.goto(`/admin/users/${seeded.userIds[1]}`);
        const csrf = await page.locator('meta[name="csrf-token"]').getAttribute('content');
        const res = await page.request.post(`/admin/users/${seeded.userIds[1]}/disable`, {
          form: { _csrf: csrf!, return_to: '/admin/users' },
          maxRedirects: 0,
        });
        expect(res.status()).toBe(303);
        await page.goto('/admin/users');
        expect(await toastTexts(page)).toEqual([
          `${HOSTILE_EMAILS[1]} is now disabled; 3 sessions ended.`,
        ]);

        // The hostile user's own sessions page, in their own browser.
        const own = await s.person('hostile');
        const ownDialogs = watchDialogs(own);
        await own
          .context()
          .addCookies([{ name: 'warden_session', value: hostileCookie, url: s.baseURL }]);
        await own.goto('/me/sessions');
        // A forwarded address that is no IP address is kept as "unknown", never as sent.
        const main = await own.locator('main').textContent();
        expect(main).not.toContain(FORWARDED_IP);
        expect(main).toContain('unknown');

        expect([...dialogs, ...ownDialogs]).toEqual([]);
        expect(s.problemLines()).toEqual([]);
      });

      it('should ask for the password in the browser and then carry out the action asked for', async () => {
        const victim = seeded.userIds[3];
        const ids = [
          (await plantSession(t, victim)).id,
          (await plantSession(t, victim)).id,
          (await plantSession(t, victim)).id,
        ];
        const page = await s.person('step-up');
        const dialogs = watchDialogs(page);
        await signInThroughForm(page, 'su@example.test', PASSWORD);
        await page.waitForTimeout(1_100);

        // The script's bulk revoke meets the step-up and falls back to the form itself.
        await page.goto(`/admin/sessions?email=${encodeURIComponent(HOSTILE_EMAILS[3])}`);
        for (const id of ids)
          await page.locator(`tr[data-session-id="${id}"] input[name="ids"]`).check();
        await page.getByRole('button', { name: 'Bulk revoke selected' }).click();
        await page.getByRole('heading', { name: 'Confirm your password' }).waitFor();
        await page.getByLabel('Password').fill(PASSWORD);
        await Promise.all([
          page.waitForURL((u) => u.pathname === '/admin/sessions'),
          page.getByRole('button', { name: 'Confirm and continue' }).click(),
        ]);
        expect(await toastTexts(page)).toEqual(['3 revoked.']);
        for (const id of ids) expect(await t.store.get(id)).toBeNull();

        // Warden's own question before the bulk revoke, and nothing else.
        expect(dialogs).toEqual(['End the 3 selected sessions?']);
        // The script's request that met the step-up answered 403 (the browser logs it), and so
        // did the password page.
        expect(
          s
            .problemLines({ expectedPageStatuses: [403] })
            .filter((l) => !/bulk-revoke.*403/.test(l)),
        ).toEqual([]);
      });
    });
  }
});
