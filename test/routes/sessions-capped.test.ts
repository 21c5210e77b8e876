/**
 * GET /admin/sessions when a filter matches more sessions than the page counts (1,000): the
 * page says "more than 1,000", lists the newest first as the exact JSON listing does, and
 * pages on past the count; JSON keeps the exact total. On every store.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { sessionIdOf } from '../../src/sessions/tokens.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { listJson, matchCount, rowIds, signedIn } from './helpers.js';

const SESSIONS = 1_060;

function record(userId: number, createdAt: number, expired: boolean): SessionRecord {
  return {
    id: sessionIdOf(randomBytes(16).toString('hex')),
    userId,
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: expired ? createdAt + 1_000 : Date.now() + 3_600_000,
    absoluteExpiresAt: createdAt + 7_200_000,
    ip: '198.51.100.7',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
  };
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`GET /admin/sessions past the count (${kind})`, () => {
    let t: TestApp;
    let admin: Client;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.com', 'superuser');
      admin = (await signedIn(t, 'root@example.com')).client;
      const owners: number[] = [];
      for (let i = 0; i < 3; i++)
        owners.push((await t.createUser(`ops${i}@corp.test`, 'admin')).id);
      const other = (await t.createUser('someone@example.com', 'user')).id;
      const now = Date.now();
      const records = Array.from({ length: SESSIONS }, (_, i) =>
        // Every tenth one expired; a few of another user's in between, never matching.
        record(i % 50 === 7 ? other : owners[i % 3]!, now - 60_000 - i * 1_000, i % 10 === 3),
      );
      for (let i = 0; i < records.length; i += 200) {
        await Promise.all(records.slice(i, i + 200).map((r) => t.store.create(r)));
      }
    }, 120_000);

    afterAll(async () => {
      await t?.close();
    });

    it('should say "more than 1,000" and list the newest first, paging on past the count', async () => {
      const exact = await listJson(admin, '?role=admin&per_page=200');
      expect(exact.total).toBeGreaterThan(1_000);

      const first = await admin.get('/admin/sessions?role=admin&per_page=50', 'html');
      expect(first.statusCode).toBe(200);
      expect(matchCount(first.body)).toBe(1_000);
      expect(first.body).toContain('more than 1,000 matching');
      expect(first.body).not.toContain('Last (');
      expect(rowIds(first.body)).toEqual(exact.items.slice(0, 50).map((r) => r.id));

      // Page 21 holds what lies past the first 1,000: Next stays shut on this short page.
      const asOf = /as_of=(\d+)/.exec(first.body)![1];
      const last = await admin.get(
        `/admin/sessions?role=admin&per_page=50&page=21&as_of=${asOf}`,
        'html',
      );
      const tail = (await listJson(admin, '?role=admin&per_page=50&page=21')).items;
      expect(rowIds(last.body)).toEqual(tail.map((r) => r.id));
      expect(rowIds(last.body).length).toBe(exact.total - 1_000);
      const n = exact.total.toLocaleString('en');
      expect(last.body).toContain(`Showing 1,001–${n} of ${n}`);
    });

    it('should count exactly when the matches are fewer, with a status and an email filter', async () => {
      const expired = await listJson(admin, '?role=admin&status=expired&per_page=200');
      expect(expired.total).toBeLessThan(1_000);
      const page = await admin.get('/admin/sessions?email=corp.test&status=expired', 'html');
      expect(matchCount(page.body)).toBe(expired.total);
      expect(page.body).not.toContain('more than');
      expect(rowIds(page.body)).toEqual(expired.items.slice(0, 50).map((r) => r.id));

      const activeJson = await listJson(admin, '?email=corp.test&status=active');
      const active = await admin.get('/admin/sessions?email=corp.test&status=active', 'html');
      expect(matchCount(active.body)).toBe(activeJson.total);
      expect(rowIds(active.body)).toEqual(activeJson.items.map((r) => r.id));
    });
  });
}
