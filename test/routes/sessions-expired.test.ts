/**
 * GET /admin/sessions?status=expired on both stores: expired sessions are listed most recently
 * expired first (the page says so), whatever order they began in, with or without a user
 * filter, and the pages of one as_of stay put when a session ends between two of them.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { HOUR, listJson, MINUTE, matchCount, rowIds, signedIn } from './helpers.js';

/** The "Next" link of a sessions page, unless it is disabled (the last page). */
function nextLink(body: string): string | null {
  const m =
    /<li class="page-item( disabled)?">\s*<a class="page-link" href="([^"]*)"\s*>Next ›/.exec(body);
  return m && !m[1] ? m[2].replace(/&amp;/g, '&') : null;
}

function listOrder(body: string): string | undefined {
  return /<span id="list-order">([^<]*)<\/span>/.exec(body)?.[1];
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`GET /admin/sessions?status=expired (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    // The app's clock runs this far ahead of the machine's (moved on by the paging test).
    let shift = 0;
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      t = await makeApp(kind, { clock: () => Date.now() + shift });
      await t.createUser('root@example.com', 'superuser');
      const alice = await t.createUser('alice@example.com', 'user');
      const bob = await t.createUser('bob@example.com', 'admin');
      admin = (await signedIn(t, 'root@example.com')).client;

      const plant = async (
        name: string,
        userId: number,
        createdAgo: number,
        ends: { idle: number; absolute?: number },
      ) => {
        const now = Date.now();
        const createdAt = now - createdAgo;
        const s: SessionRecord = {
          id: createHash('sha256').update(`${name}-${now}-${kind}`).digest('hex'),
          userId,
          createdAt,
          lastSeenAt: createdAt,
          idleExpiresAt: now + ends.idle,
          absoluteExpiresAt: now + (ends.absolute ?? 12 * HOUR),
          ip: '203.0.113.7',
          userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
        };
        await t.store.create(s);
        ids[name] = s.id;
      };
      // Newest sign-in first these would be e4, e3, e2, e1, e5; by their end, e5 to e2.
      await plant('e1', alice.id, 5 * HOUR, { idle: -10 * MINUTE });
      await plant('e2', bob.id, 4 * HOUR, { idle: -3 * HOUR });
      await plant('e3', alice.id, 3 * HOUR, { idle: HOUR, absolute: -20 * MINUTE });
      await plant('e4', bob.id, 2 * HOUR, { idle: -90 * MINUTE });
      await plant('e5', alice.id, 6 * HOUR, { idle: -5 * MINUTE });
      // Live when the first page is shown, ended by the time the second is.
      await plant('soon', alice.id, HOUR, { idle: 5 * MINUTE });
    });

    afterAll(async () => {
      await t?.close();
    });

    const named = (names: string[]) => names.map((n) => ids[n]);

    it('should list expired sessions most recently expired first and say so', async () => {
      const page = await admin.get('/admin/sessions?status=expired');
      expect(page.statusCode).toBe(200);
      expect(matchCount(page.body)).toBe(5);
      expect(rowIds(page.body)).toEqual(named(['e5', 'e1', 'e3', 'e4', 'e2']));
      expect(listOrder(page.body)).toBe('most recently expired first');
      const json = await listJson(admin, '?status=expired');
      expect(json.items.map((i) => i.id)).toEqual(named(['e5', 'e1', 'e3', 'e4', 'e2']));

      const all = await admin.get('/admin/sessions');
      expect(listOrder(all.body)).toBe('newest sign-in first');
    });

    it('should keep that order with a user filter', async () => {
      const alice = await admin.get('/admin/sessions?status=expired&email=alice');
      expect(rowIds(alice.body)).toEqual(named(['e5', 'e1', 'e3']));
      const admins = await admin.get('/admin/sessions?status=expired&role=admin');
      expect(rowIds(admins.body)).toEqual(named(['e4', 'e2']));
    });

    it('should show each expired session once across the pages of one as_of, even when one ends meanwhile', async () => {
      const first = await admin.get('/admin/sessions?status=expired&per_page=2');
      expect(matchCount(first.body)).toBe(5);
      const seen = rowIds(first.body);
      expect(seen).toEqual(named(['e5', 'e1']));

      // 'soon' ends now: judged at this moment it would head the list and push e1 to page 2.
      shift = 10 * MINUTE;
      let body = first.body;
      for (const p of [2, 3]) {
        const next = nextLink(body);
        expect(next).toMatch(
          new RegExp(`^/admin/sessions\\?status=expired&page=${p}&per_page=2&as_of=\\d+$`),
        );
        const page = await admin.get(next!);
        expect(matchCount(page.body)).toBe(5);
        seen.push(...rowIds(page.body));
        body = page.body;
      }
      expect(nextLink(body)).toBeNull();
      expect(seen).toEqual(named(['e5', 'e1', 'e3', 'e4', 'e2']));

      // A fresh first page judges at its own time: the session that just ended comes first.
      const fresh = await admin.get('/admin/sessions?status=expired&per_page=2');
      expect(matchCount(fresh.body)).toBe(6);
      expect(rowIds(fresh.body)).toEqual(named(['soon', 'e5']));
    });
  });
}
