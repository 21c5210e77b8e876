/**
 * The Ended tab on a long history: counted up to ENDED_COUNT_CAP and then "more than", with
 * Next open while pages come back full and no last page, as the sessions page does; the rows
 * are the same newest-first rows an exact count would page through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENDING_KINDS, listHistory } from '../../src/admin/ended-query.js';
import { ENDED_COUNT_CAP } from '../../src/admin/ended-routes.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { signedIn } from './helpers.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`ended tab past its count cap (${kind})`, () => {
    let t: TestApp;
    let boss: Client;
    const now = Date.now();

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('boss@capped.test', 'superuser');
      boss = (await signedIn(t, 'boss@capped.test')).client;
      const user = await t.createUser('long@capped.test');
      const ended = Array.from({ length: ENDED_COUNT_CAP + 50 }, (_, i) => ({
        id: `${String(i).padStart(8, '0')}${'c'.repeat(56)}`,
        userId: user.id,
        ip: '192.0.2.1',
        userAgent: 'capped',
      }));
      // One ending a millisecond apart, newest last, within the retention.
      for (let i = 0; i < ended.length; i += 1_000) {
        const chunk = ended.slice(i, i + 1_000);
        await t.app.warden.events.recordEach(
          chunk.map((session, j) => ({
            session,
            event: { kind: 'revoked', reason: 'by_admin', actorId: null },
            at: now - 3_600_000 + i + j,
          })),
        );
      }
    }, 60_000);

    afterAll(async () => {
      await t?.close();
    });

    it('should say "more than" the cap, with Next open and no last page', async () => {
      const page = await boss.get('/admin/sessions/ended');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain(`more than ${ENDED_COUNT_CAP.toLocaleString('en')} ended`);
      expect(page.body).toContain('Showing 1–50 of more than');
      expect(page.body).not.toContain('Last (');
      expect(page.body).toMatch(/<a class="page-link" href="[^"]*page=2[^"]*"\s*>Next ›<\/a>/);

      const json = (await boss.get('/admin/sessions/ended', 'json')).json() as {
        total: number;
        totalCapped: boolean;
        items: { sessionId: string }[];
      };
      expect(json).toMatchObject({ total: ENDED_COUNT_CAP, totalCapped: true });
      // Newest first: the last one recorded leads.
      expect(json.items[0]!.sessionId).toBe(
        `${String(ENDED_COUNT_CAP + 49).padStart(8, '0')}${'c'.repeat(56)}`,
      );
    });

    it('should page through the same rows capped as counted in full', async () => {
      const filter = { kinds: ENDING_KINDS, from: now - 7_200_000, to: now + 1 };
      for (const offset of [0, 50, 9_990]) {
        const capped = await listHistory(t.app.warden.events, filter, { offset, limit: 25 }, 100);
        const exact = await listHistory(t.app.warden.events, filter, { offset, limit: 25 });
        expect(capped.totalCapped).toBe(true);
        expect(capped.total).toBe(100);
        expect(exact).toMatchObject({ total: ENDED_COUNT_CAP + 50, totalCapped: false });
        expect(capped.items.map((r) => r.sessionId)).toEqual(exact.items.map((r) => r.sessionId));
      }
      // Under the cap the count is exact.
      const few = await listHistory(
        t.app.warden.events,
        { ...filter, from: now - 3_600_000 + ENDED_COUNT_CAP + 40 },
        { offset: 0, limit: 25 },
        100,
      );
      expect(few).toMatchObject({ total: 10, totalCapped: false });
    });
  });
}
