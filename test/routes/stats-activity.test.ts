/**
 * Sign-ins per hour and per day as the statistics page keeps them: counted in full once, then
 * from the history rows added since, on SQLite and on PostgreSQL. Each answer is checked
 * against a count of the rows the test wrote, including rows dated into an earlier hour and
 * rows outside the window.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignInCounts } from '../../src/admin/stats-activity.js';
import type { SessionEventKind } from '../../src/db/schema.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR, MINUTE } from './helpers.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`sign-ins per period (${kind})`, () => {
    let t: TestApp;
    const written: { at: number; kind: SessionEventKind }[] = [];
    const now = Date.now();

    beforeAll(async () => {
      t = await makeApp(kind);
    });

    afterAll(async () => {
      await t?.close();
    });

    async function write(at: number, what: SessionEventKind = 'signed_in') {
      written.push({ at, kind: what });
      const id = createHash('sha256').update(`${at}:${written.length}`).digest('hex');
      await t.database.db
        .insertInto('session_events')
        .values({ session_id: id, user_id: 1, kind: what, at })
        .execute();
    }

    function expected(sizeMs: number, periods: number) {
      const last = Math.floor(now / sizeMs);
      return Array.from({ length: periods }, (_, i) => {
        const start = (last - periods + 1 + i) * sizeMs;
        const count = written.filter(
          (w) => w.kind === 'signed_in' && w.at >= start && w.at < start + sizeMs,
        ).length;
        return { start, count };
      });
    }

    it('should count the window once, then keep it current from the rows added since', async () => {
      const hours = new SignInCounts(t.database.db, HOUR, 24);
      const days = new SignInCounts(t.database.db, DAY, 30);
      for (const ago of [0, 5 * MINUTE, 2 * HOUR, 2 * HOUR + 1, 23 * HOUR, 3 * DAY, 40 * DAY]) {
        await write(now - ago);
      }
      await write(now - MINUTE, 'signed_out');

      expect(await hours.counts(now)).toEqual(expected(HOUR, 24));
      expect(await days.counts(now)).toEqual(expected(DAY, 30));

      // New rows: now, back-dated into an hour already counted, outside both windows, and
      // other kinds that must not count.
      await write(now - 1);
      await write(now - 5 * HOUR);
      await write(now - 60 * DAY);
      await write(now - 2 * MINUTE, 'revoked');

      const hourly = await hours.counts(now);
      expect(hourly).toEqual(expected(HOUR, 24));
      expect(hourly.reduce((n, h) => n + h.count, 0)).toBe(7);
      expect(await days.counts(now)).toEqual(expected(DAY, 30));
    });

    it('should move its window on as time passes, dropping the periods that fell out', async () => {
      const hours = new SignInCounts(t.database.db, HOUR, 24);
      const first = await hours.counts(now);
      const later = await hours.counts(now + 3 * HOUR);

      expect(later[0]!.start).toBe(first[3]!.start);
      expect(later.slice(0, 21)).toEqual(first.slice(3));
      expect(later.slice(21).every((h) => h.count === 0)).toBe(true);
    });
  });
}
