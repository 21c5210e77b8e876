/**
 * The analytics page in headless Chromium on seeded data: every chart canvas draws (its pixels
 * hold the colours of its data, not only axes), the figures open as a table, the range form
 * reloads the page with the new range, and nothing logs an error or breaks the CSP.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { rebuildActivity } from '../../src/users/activity.js';
import { PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import { chromiumGate, signInThroughForm, useBrowser } from '../support/browser.js';

const kinds = await storeKindsToRun();
const chromium = await chromiumGate('end-to-end analytics tests');
if (chromium.action === 'fail') throw new Error(`required service missing: ${chromium.reason}`);

const ROOT = 'root@warden.test';
const DAY = 86_400_000;
const CHARTS = [
  'registrations',
  'decisions',
  'approval-wait',
  'pending',
  'by-role',
  'by-status',
  'active-day',
  'active-week',
  'active-month',
];

/** Users over the last three weeks, some decided after a wait, and sign-ins of some of them. */
async function seed(t: TestApp) {
  const now = Date.now();
  const { db } = t.database;
  const rows = Array.from({ length: 40 }, (_, i) => {
    const created = now - (i % 20) * DAY - 3_600_000;
    const fate = i % 4;
    const decided = fate === 3 ? null : created + ((i % 5) + 1) * 3_600_000;
    return {
      email: `seed${i}@analytics.test`,
      email_normalized: `seed${i}@analytics.test`,
      password_hash: 'x',
      role: (['user', 'admin', 'user', 'superuser'] as const)[i % 4],
      status: (['approved', 'approved', 'rejected', 'pending'] as const)[fate],
      created_at: created,
      approved_at: fate < 2 ? decided : null,
      approved_by: null,
      rejected_at: fate === 2 ? decided : null,
      rejected_by: null,
      decided_at: decided,
      last_login_at: null,
      updated_at: decided ?? created,
    };
  });
  const ids = await db.insertInto('users').values(rows).returning('id').execute();
  await db
    .insertInto('session_events')
    .values(
      ids.flatMap(({ id }, i) =>
        [1, 3, 8].map((d) => ({
          session_id: `e${i}-${d}`,
          user_id: id,
          kind: 'signed_in' as const,
          reason: null,
          actor_id: null,
          at: now - ((i + d) % 25) * DAY - 60_000,
          ip: null,
          user_agent: null,
        })),
      ),
    )
    .execute();
  // History written directly (not through sign-in): the page's aggregates come from it.
  await rebuildActivity(db, t.database.dialect);
}

/**
 * For each chart canvas: its drawn size and how many of its pixels are saturated colour (the
 * datasets' colours; axes, grid and labels are grey), read back with getImageData.
 */
function readCanvases(page: Page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLCanvasElement>('canvas[data-chart]')).map((canvas) => {
      const ctx = canvas.getContext('2d')!;
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      let coloured = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] === 0) continue;
        painted++;
        const max = Math.max(data[i], data[i + 1], data[i + 2]);
        const min = Math.min(data[i], data[i + 1], data[i + 2]);
        if (max - min > 60) coloured++;
      }
      return {
        id: canvas.id.replace('chart-', ''),
        width: canvas.width,
        height: canvas.height,
        painted,
        coloured,
        drawn: canvas.dataset.drawn === 'true',
      };
    }),
  );
}

for (const { kind, skip } of kinds) {
  const reason = skip ?? (chromium.action === 'skip' ? chromium.reason : null);

  describe.skipIf(reason !== null)(`analytics in Chromium (${kind})`, () => {
    const e2e = useBrowser(kind);

    it('should draw every chart, show its figures as a table and follow the range form', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      await seed(t);
      const admin = await s.person('A');
      await signInThroughForm(admin, ROOT, PASSWORD);

      await admin.getByRole('link', { name: 'Analytics', exact: true }).click();
      await admin.waitForURL('**/admin/analytics');
      await admin
        .locator('canvas[data-drawn="true"]')
        .nth(CHARTS.length - 1)
        .waitFor();

      const canvases = await readCanvases(admin);
      expect(canvases.map((c) => c.id)).toEqual(CHARTS);
      for (const c of canvases) {
        expect(c.drawn, c.id).toBe(true);
        expect(c.width, c.id).toBeGreaterThan(100);
        expect(c.painted, c.id).toBeGreaterThan(500);
        expect(c.coloured, `${c.id} has no coloured pixels: ${JSON.stringify(c)}`).toBeGreaterThan(
          100,
        );
      }

      // The canvas is an image with a label; its table is there for those who open it.
      const canvas = admin.getByRole('img', { name: /^Registrations per day/ });
      expect(await canvas.count()).toBe(1);
      const table = admin.locator('#table-registrations');
      expect(await table.isVisible()).toBe(false);
      await admin.locator('[data-figures-for="registrations"] summary').click();
      expect(await table.isVisible()).toBe(true);
      expect(await table.locator('tbody tr').count()).toBe(30);
      const json = await admin.evaluate(async () => {
        const res = await fetch('/admin/analytics', { headers: { accept: 'application/json' } });
        return res.json();
      });
      const cells = await table.locator('tbody td').allTextContents();
      expect(cells.map(Number)).toEqual(
        json.periods.map((p: { registrations: number }) => p.registrations),
      );
      expect(json.totals.registrations).toBe(41);

      // Per week over a chosen range: the page reloads with it, and draws again.
      const to = new Date().toISOString().slice(0, 10);
      const from = new Date(Date.now() - 55 * DAY).toISOString().slice(0, 10);
      await admin.getByLabel('From', { exact: true }).fill(from);
      await admin.getByLabel('Per', { exact: true }).selectOption('week');
      await Promise.all([
        admin.waitForURL((url) => url.searchParams.get('granularity') === 'week'),
        admin.getByRole('button', { name: 'Show' }).click(),
      ]);
      expect(Object.fromEntries(new URL(admin.url()).searchParams)).toEqual({
        from,
        to,
        granularity: 'week',
      });
      await admin
        .locator('canvas[data-drawn="true"]')
        .nth(CHARTS.length - 1)
        .waitFor();
      expect(await admin.getByRole('img', { name: /^Registrations per week/ }).count()).toBe(1);
      for (const c of await readCanvases(admin)) expect(c.coloured, c.id).toBeGreaterThan(100);

      expect(s.problemLines()).toEqual([]);
    });

    it('should draw on a phone-sized screen too', async () => {
      const { t, s } = e2e;
      await t.createUser(ROOT, 'superuser');
      await seed(t);
      const phone = await s.person('P');
      await phone.setViewportSize({ width: 390, height: 844 });
      await signInThroughForm(phone, ROOT, PASSWORD);
      await phone.goto('/admin/analytics');
      await phone
        .locator('canvas[data-drawn="true"]')
        .nth(CHARTS.length - 1)
        .waitFor();
      for (const c of await readCanvases(phone)) {
        expect(c.coloured, c.id).toBeGreaterThan(50);
        // Fits the screen: no chart wider than the viewport (device pixels may be scaled).
        const box = await phone.locator(`#chart-${c.id}`).boundingBox();
        expect(box!.width, c.id).toBeLessThanOrEqual(390);
      }
      // The dates under a chart never run into each other (the line charts' did at this width).
      const crowded = await phone.evaluate(() => {
        type Scale = {
          ctx: CanvasRenderingContext2D;
          options: { ticks: { font: unknown } };
          getLabelItems(): { label: unknown; options: { translation: [number, number] } }[];
        };
        const { Chart } = window as unknown as {
          Chart: {
            getChart(c: HTMLCanvasElement): { scales: { x?: Scale } };
            helpers: { toFont(f: unknown): { string: string } };
          };
        };
        return Array.from(document.querySelectorAll<HTMLCanvasElement>('canvas[data-chart]'))
          .map((canvas) => {
            const x = Chart.getChart(canvas).scales.x;
            if (!x) return { id: canvas.id, overlap: 0 };
            x.ctx.font = Chart.helpers.toFont(x.options.ticks.font).string;
            const boxes = x.getLabelItems().map((item) => {
              const half = x.ctx.measureText(String(item.label)).width / 2;
              const at = item.options.translation[0];
              return [at - half, at + half] as const;
            });
            let overlap = 0;
            for (let i = 1; i < boxes.length; i++) {
              overlap = Math.max(overlap, boxes[i - 1]![1] - boxes[i]![0]);
            }
            return { id: canvas.id, overlap };
          })
          .filter((c) => c.overlap > 0);
      });
      expect(crowded).toEqual([]);
      // Each "Figures as a table", opened, shows its figures without scrolling in its box: by
      // day, and by week, whose periods are the longest labels.
      for (const path of ['/admin/analytics', '/admin/analytics?granularity=week']) {
        await phone.goto(path);
        const boxes = await phone.evaluate(() =>
          Array.from(document.querySelectorAll('details[data-figures-for]')).map((d) => {
            (d as HTMLDetailsElement).open = true;
            const box = d.querySelector('.table-responsive')!;
            return {
              id: d.getAttribute('data-figures-for'),
              over: box.scrollWidth - box.clientWidth,
            };
          }),
        );
        expect(boxes.length).toBe(CHARTS.length);
        for (const b of boxes) expect(b.over, `${path} ${b.id}`).toBeLessThanOrEqual(0);
      }
      expect(s.problemLines()).toEqual([]);
    });
  });
}
