/**
 * The audit page and the exports in headless Chromium: a superuser filters the audit log by
 * actor, action and date through the form, downloads its CSV, and downloads a sessions export
 * of a filtered table (the browser's own download) whose rows are exactly the table's rows.
 * Every page must run without a console error, page error or CSP violation.
 */
import fs from 'node:fs';
import type { Download, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/events/audit.js';
import { PASSWORD, storeKindsToRun } from '../support/app.js';
import { chromiumGate, signInThroughForm, useBrowser } from '../support/browser.js';
import { csvObjects } from '../support/csv.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end audit and export tests');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@e2e-audit.test';
const DAY = 86_400_000;
const UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15';

const isoDay = (at: number) => new Date(at).toISOString().slice(0, 10);

/** Clicks a link that downloads, and answers the file's text and suggested name. */
async function download(page: Page, selector: string) {
  const [file] = (await Promise.all([
    page.waitForEvent('download'),
    page.locator(selector).click(),
  ])) as [Download, unknown];
  const path = await file.path();
  return { name: file.suggestedFilename(), text: fs.readFileSync(path, 'utf8') };
}

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`audit page and exports in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    it('should filter the audit log by actor, action and date, and export what it shows', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      const today = Math.floor(Date.now() / DAY) * DAY;
      const at = (daysAgo: number) =>
        new AuditLog(t.database.db, () => today - daysAgo * DAY + 3_600_000);
      const write = (daysAgo: number, email: string, action: string, target: string) =>
        at(daysAgo).write(
          { id: null, email, ip: '203.0.113.5' },
          { action, target, outcome: 'success' },
          t.app.log,
        );
      await write(5, 'ops@e2e-audit.test', 'users.approve', 'user:1');
      await write(3, 'ops@e2e-audit.test', 'sessions.revoke', 'first');
      await write(2, 'mallory@e2e-audit.test', 'sessions.revoke', '=SUM(1,2)');
      await write(1, 'ops@e2e-audit.test', 'sessions.revoke', 'last');

      const admin = await s.person('A');
      await signInThroughForm(admin, ROOT, PASSWORD);
      await admin.getByRole('link', { name: 'Audit', exact: true }).click();
      await admin.waitForURL('**/admin/audit');
      const rows = admin.locator('#audit-table tbody tr[data-audit-id]');
      expect(await rows.count()).toBe(4);

      await admin.getByLabel('Actor email contains').fill('OPS@');
      await admin.getByLabel('Action', { exact: true }).selectOption('sessions.revoke');
      await admin.getByLabel('From', { exact: true }).fill(isoDay(today - 4 * DAY));
      await admin.getByLabel('To', { exact: true }).fill(isoDay(today - DAY));
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.has('actor')),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      expect(Object.fromEntries(new URL(admin.url()).searchParams)).toEqual({
        actor: 'OPS@',
        action: 'sessions.revoke',
        from: isoDay(today - 4 * DAY),
        to: isoDay(today - DAY),
      });
      expect(await admin.locator('#audit-count').getAttribute('data-total')).toBe('2');
      expect(await rows.locator('[data-action]').allTextContents()).toEqual([
        'sessions.revoke',
        'sessions.revoke',
      ]);
      expect(await rows.locator('td:nth-child(4)').allTextContents()).toEqual(['last', 'first']);
      expect(await admin.getByLabel('Action', { exact: true }).inputValue()).toBe(
        'sessions.revoke',
      );

      const shown = await rows.evaluateAll((trs) =>
        trs.map((tr) => tr.getAttribute('data-audit-id')),
      );
      const csv = await download(admin, '#audit-export-csv');
      expect(csv.name).toMatch(/^audit-\d{8}-\d{6}\.csv$/);
      expect(csvObjects(csv.text).map((r) => r.id)).toEqual(shown);

      await admin.getByRole('link', { name: 'Clear' }).click();
      await admin.waitForURL((url) => url.pathname === '/admin/audit' && url.search === '');
      // The export above is an admin action too, so it is listed now.
      expect(await admin.locator('#audit-count').getAttribute('data-total')).toBe('5');
      expect(await rows.first().locator('[data-action]').textContent()).toBe('audit.export');
      expect(await rows.nth(2).locator('td:nth-child(4)').textContent()).toBe('=SUM(1,2)');

      expect(s.problemLines()).toEqual([]);
    });

    it('should download a sessions export whose rows are the filtered table', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      const people = [
        await t.createUser('kim@e2e-export.test'),
        await t.createUser('kimberly@e2e-export.test', 'admin'),
        await t.createUser('lee@e2e-export.test'),
      ];
      for (const [i, user] of people.entries()) {
        for (let n = 0; n <= i; n++) {
          await t.app.warden.sessions.signIn(user, { ip: `192.0.2.${10 * i + n}`, userAgent: UA });
        }
      }

      const admin = await s.person('A');
      await signInThroughForm(admin, ROOT, PASSWORD);
      await admin.goto('/admin/sessions');
      await admin.getByLabel('User email contains').fill('KIM');
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.get('email') === 'KIM'),
        admin.getByRole('button', { name: 'Filter' }).click(),
      ]);
      const table = admin.locator('#sessions-table tbody tr[data-session-id]');
      expect(await table.count()).toBe(3);
      const ids = await table.evaluateAll((trs) =>
        trs.map((tr) => tr.getAttribute('data-session-id')),
      );
      const emails = await table.locator('td:nth-child(2)').allTextContents();

      const csv = await download(admin, 'a[data-export="csv"]');
      expect(csv.name).toMatch(/^sessions-\d{8}-\d{6}\.csv$/);
      const rows = csvObjects(csv.text);
      expect(rows.map((r) => r.id)).toEqual(ids);
      expect(rows.map((r) => r.email)).toEqual(emails.map((e) => e.trim()));
      expect(rows.every((r) => r.status === 'active' && r.browser.startsWith('Safari'))).toBe(true);

      const json = await download(admin, 'a[data-export="json"]');
      expect(json.name).toMatch(/^sessions-\d{8}-\d{6}\.json$/);
      expect(JSON.parse(json.text).map((r: { id: string }) => r.id)).toEqual(ids);

      expect(s.problemLines()).toEqual([]);
    });
  });
}
