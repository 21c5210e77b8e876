/**
 * GET /admin/sessions on both stores: every filter alone and combined, the UTC day bounds
 * (`created_to` includes its day), pagination without duplicates, per_page bounds, and bad
 * input answered with a 400 naming the field, as HTML and as JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  dayStart,
  HOUR,
  isoDay,
  listJson,
  matchCount,
  pageErrorCode,
  plantSession,
  rowIds,
  signedIn,
} from './helpers.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`GET /admin/sessions (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    /** Session ids by name; `root` is the acting superuser's own, signed in just now. */
    const ids: Record<string, string> = {};
    const d1 = isoDay(dayStart(1));
    const d2 = isoDay(dayStart(2));
    const d3 = isoDay(dayStart(3));

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.com', 'superuser');
      const alice = await t.createUser('Alice.Smith@Example.com', 'user');
      const bob = await t.createUser('bob@example.org', 'admin');
      const carol = await t.createUser('carol@EXAMPLE.com', 'superuser');
      const dave = await t.createUser('dave_x@example.net', 'user');

      const signIn = await signedIn(t, 'root@example.com');
      admin = signIn.client;
      ids.root = signIn.sessionId;

      const plant = async (name: string, userId: number, createdAt: number, expired = false) => {
        ids[name] = (await plantSession(t, userId, { createdAt, expired })).id;
      };
      // Created on the three days before today, at the edges of the days where it matters.
      await plant('a1', alice.id, dayStart(1) + 10 * HOUR);
      await plant('a2', alice.id, dayStart(1) - 1); // 23:59:59.999 of d2
      await plant('a3', alice.id, dayStart(3), true); // 00:00:00.000 of d3
      await plant('b1', bob.id, dayStart(1)); // 00:00:00.000 of d1
      await plant('b2', bob.id, dayStart(2) + 12 * HOUR, true);
      await plant('c1', carol.id, dayStart(3) + 12 * HOUR);
      await plant('d1', dave.id, dayStart(2) + 8 * HOUR, true);
    });

    afterAll(async () => {
      await t?.close();
    });

    const sorted = (names: string[]) => names.map((n) => ids[n]).sort();

    /** The "Next" link of a sessions page, unless it is disabled (the last page). */
    function nextLink(body: string): string | null {
      const m =
        /<li class="page-item( disabled)?">\s*<a class="page-link" href="([^"]*)"\s*>Next ›/.exec(
          body,
        );
      return m && !m[1] ? m[2].replace(/&amp;/g, '&') : null;
    }

    async function expectMatches(search: string, names: string[]) {
      const json = await listJson(admin, search);
      expect(json.total).toBe(names.length);
      expect(json.items.map((i) => i.id).sort()).toEqual(sorted(names));

      const page = await admin.get(`/admin/sessions${search}`);
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(matchCount(page.body)).toBe(names.length);
      expect(rowIds(page.body).sort()).toEqual(sorted(names));
    }

    it('should list every session, newest first, as HTML by default', async () => {
      const page = await admin.get('/admin/sessions');
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(matchCount(page.body)).toBe(8);
      expect(rowIds(page.body)).toEqual(
        ['root', 'a1', 'b1', 'a2', 'b2', 'd1', 'c1', 'a3'].map((n) => ids[n]),
      );
      // The acting superuser's own row is marked.
      expect(page.body).toMatch(
        /root@example\.com<\/a> <span class="badge text-bg-info">you<\/span>/,
      );
    });

    it('should answer JSON with the total, the active count and the current session flagged', async () => {
      const json = await listJson(admin);
      expect(json).toMatchObject({ total: 8, page: 1, perPage: 50, skipped: 0, active: 5 });
      expect(json.items.filter((i) => i.current).map((i) => i.id)).toEqual([ids.root]);
      const statuses = Object.fromEntries(json.items.map((i) => [i.id, i.status]));
      expect(statuses[ids.a3]).toBe('expired');
      expect(statuses[ids.a1]).toBe('active');
    });

    it('should filter by a part of the email, ignoring case', async () => {
      await expectMatches('?email=ALICE', ['a1', 'a2', 'a3']);
      await expectMatches('?email=example.com', ['a1', 'a2', 'a3', 'c1', 'root']);
      await expectMatches('?email=nobody', []);
      await expectMatches('?email=%20%20aLiCe.SMITH%40%20', ['a1', 'a2', 'a3']);
    });

    it('should take the email filter literally, not as a LIKE pattern', async () => {
      await expectMatches('?email=_', ['d1']);
      await expectMatches('?email=%25', []);
    });

    it('should filter by status', async () => {
      await expectMatches('?status=active', ['a1', 'a2', 'b1', 'c1', 'root']);
      await expectMatches('?status=expired', ['a3', 'b2', 'd1']);
      await expectMatches('?status=all', ['a1', 'a2', 'a3', 'b1', 'b2', 'c1', 'd1', 'root']);
    });

    it('should filter by role', async () => {
      await expectMatches('?role=user', ['a1', 'a2', 'a3', 'd1']);
      await expectMatches('?role=admin', ['b1', 'b2']);
      await expectMatches('?role=superuser', ['c1', 'root']);
      await expectMatches('?role=all', ['a1', 'a2', 'a3', 'b1', 'b2', 'c1', 'd1', 'root']);
    });

    it('should filter by creation day from, inclusive of its first millisecond', async () => {
      await expectMatches(`?created_from=${d2}`, ['a1', 'a2', 'b1', 'b2', 'd1', 'root']);
      await expectMatches(`?created_from=${d3}`, [
        'a1',
        'a2',
        'a3',
        'b1',
        'b2',
        'c1',
        'd1',
        'root',
      ]);
    });

    it('should include the whole of the created_to day and nothing after it', async () => {
      await expectMatches(`?created_to=${d2}`, ['a2', 'a3', 'b2', 'c1', 'd1']);
      await expectMatches(`?created_from=${d2}&created_to=${d2}`, ['a2', 'b2', 'd1']);
      await expectMatches(`?created_from=${d3}&created_to=${d3}`, ['a3', 'c1']);
      await expectMatches(`?created_from=${d1}&created_to=${d1}`, ['a1', 'b1']);
    });

    it('should combine every filter', async () => {
      await expectMatches('?email=alice&status=active', ['a1', 'a2']);
      await expectMatches('?role=user&status=expired', ['a3', 'd1']);
      await expectMatches(`?role=user&status=expired&created_from=${d2}`, ['d1']);
      await expectMatches(`?email=EXAMPLE&role=admin&status=active&created_to=${d1}`, ['b1']);
      await expectMatches(`?email=example.com&role=superuser&created_to=${d1}`, ['c1']);
      await expectMatches('?email=bob&role=user', []);
    });

    it('should show an empty table with a zero count when nothing matches', async () => {
      const page = await admin.get('/admin/sessions?email=nobody');
      expect(matchCount(page.body)).toBe(0);
      expect(page.body).toContain('No session matches these filters.');
    });

    it('should page through every session once, with the same exact total on each page', async () => {
      const seen: string[] = [];
      for (const p of [1, 2, 3]) {
        const json = await listJson(admin, `?per_page=3&page=${p}`);
        expect(json.total).toBe(8);
        expect(json.items).toHaveLength(p < 3 ? 3 : 2);
        seen.push(...json.items.map((i) => i.id));
      }
      expect(new Set(seen).size).toBe(8);
      expect(seen.sort()).toEqual(Object.values(ids).sort());

      const beyond = await listJson(admin, '?per_page=3&page=4');
      expect(beyond).toMatchObject({ total: 8, page: 4, items: [] });
    });

    it('should page through a filtered view without duplicates', async () => {
      const seen: string[] = [];
      for (const p of [1, 2, 3]) {
        const page = await admin.get(`/admin/sessions?status=active&per_page=2&page=${p}`);
        expect(matchCount(page.body)).toBe(5);
        seen.push(...rowIds(page.body));
      }
      expect(seen).toHaveLength(5);
      expect(seen.sort()).toEqual(sorted(['a1', 'a2', 'b1', 'c1', 'root']));
    });

    it('should keep the filters in the page links and show no row twice when someone signs in meanwhile', async () => {
      const first = await admin.get('/admin/sessions?status=active&role=all&per_page=2');
      expect(matchCount(first.body)).toBe(5);
      const seen = rowIds(first.body);

      // A sign-in after the first page was shown would push a row from page 1 onto page 2.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const late = await signedIn(t, 'alice.smith@example.com');
      try {
        let body = first.body;
        for (const p of [2, 3]) {
          const next = nextLink(body);
          expect(next).toMatch(
            new RegExp(`^/admin/sessions\\?status=active&page=${p}&per_page=2&as_of=\\d+$`),
          );
          const page = await admin.get(next!);
          expect(matchCount(page.body)).toBe(5);
          seen.push(...rowIds(page.body));
          body = page.body;
        }
        expect(nextLink(body)).toBeNull();
        expect(seen).toHaveLength(5);
        expect(seen.sort()).toEqual(sorted(['a1', 'a2', 'b1', 'c1', 'root']));
        // Back on a fresh first page, the new session is there.
        expect(rowIds((await admin.get('/admin/sessions?status=active')).body)).toContain(
          late.sessionId,
        );
      } finally {
        await t.store.delete(late.sessionId);
      }
    });

    it('should give a JSON client the moment to page from, as the page links carry it', async () => {
      const first = (await admin.get('/admin/sessions?status=active&per_page=2', 'json')).json();
      expect(first.asOf).toEqual(expect.any(Number));
      await new Promise((resolve) => setTimeout(resolve, 5));
      const late = await signedIn(t, 'alice.smith@example.com');
      try {
        const ids: string[] = first.items.map((i: { id: string }) => i.id);
        for (const p of [2, 3]) {
          const page = (
            await admin.get(
              `/admin/sessions?status=active&per_page=2&page=${p}&as_of=${first.asOf}`,
              'json',
            )
          ).json();
          expect(page.asOf).toBe(first.asOf);
          ids.push(...page.items.map((i: { id: string }) => i.id));
        }
        // Every session of that moment once, and not the one signed in after it.
        expect(new Set(ids).size).toBe(5);
        expect(ids).not.toContain(late.sessionId);
      } finally {
        await t.store.delete(late.sessionId);
      }
    });

    it('should accept per_page from 1 to 200 and refuse anything else, naming the field', async () => {
      expect((await listJson(admin, '?per_page=1')).items).toHaveLength(1);
      expect((await listJson(admin, '?per_page=200')).items).toHaveLength(8);
      for (const bad of ['0', '201', '-1', 'ten', '2.5']) {
        const res = await admin.get(`/admin/sessions?per_page=${bad}`, 'json');
        expect(res.statusCode, `per_page=${bad}`).toBe(400);
        expect(res.json().error).toMatchObject({
          code: 'WARDEN_VALIDATION',
          details: { field: 'per_page' },
        });
      }
    });

    it('should refuse a page below 1, naming the field', async () => {
      const res = await admin.get('/admin/sessions?page=0', 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.field).toBe('page');
    });

    it.each([
      ['created_from', '2026-02-30', 'is not a real date'],
      ['created_from', '2026-13-01', 'is not a real date'],
      ['created_to', '04/12/2026', ''],
      ['created_to', 'yesterday', ''],
      ['status', 'revoked', ''],
      ['role', 'root', ''],
      ['email', 'x'.repeat(255), ''],
    ])('should answer 400 naming %s for %s, in JSON and HTML', async (field, value, words) => {
      const search = `?${field}=${encodeURIComponent(value)}`;
      const json = await admin.get(`/admin/sessions${search}`, 'json');
      expect(json.statusCode).toBe(400);
      const error = json.json().error;
      expect(error.code).toBe('WARDEN_VALIDATION');
      // The part of the request, as every refusal names it: a date refused by its meaning too.
      expect(error.details).toMatchObject({ field, where: 'querystring' });
      expect(error.message).toContain(field);
      expect(error.message).toContain(words);

      const page = await admin.get(`/admin/sessions${search}`);
      expect(page.statusCode).toBe(400);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(pageErrorCode(page.body)).toBe('WARDEN_VALIDATION');
      expect(page.body).toContain(field);
    });

    it('should refuse a parameter the page does not take, rather than show everything', async () => {
      // A typo of status, and a name with brackets as some clients send lists.
      for (const [search, name] of [
        ['status=active&stauts=active', 'stauts'],
        ['email%5B%5D=a', 'email[]'],
      ]) {
        const json = await admin.get(`/admin/sessions?${search}`, 'json');
        expect(json.statusCode, search).toBe(400);
        expect(json.json().error.details).toMatchObject({ field: name, where: 'querystring' });
        expect(json.json().error.message).toMatch(
          new RegExp(
            `^Invalid request: ${name.replace(/[[\]]/g, '\\$&')} is not a parameter of this page \\(it takes email, status, `,
          ),
        );
      }
      // A direction control in the name is shown as its escape on the page, not obeyed.
      const bidi = await admin.get('/admin/sessions?%E2%80%AEevil=1', 'html');
      expect(bidi.statusCode).toBe(400);
      expect(bidi.body).toContain('\\u202eevil is not a parameter');
      expect(bidi.body).not.toContain('\u202e');
      // The page offers the same view without it.
      const page = await admin.get('/admin/sessions?status=active&stauts=active');
      expect(page.statusCode).toBe(400);
      expect(page.body).toContain(
        'href="/admin/sessions?status=active">Open this page without stauts',
      );
    });

    it('should refuse any parameter on the console pages that take none', async () => {
      for (const path of ['/admin/sessions/stats', '/admin/policy', '/admin/live']) {
        const json = await admin.get(`${path}?x=1`, 'json');
        expect(json.statusCode, path).toBe(400);
        expect(json.json().error.message).toBe(
          'Invalid request: x is not a parameter of this page (it takes none)',
        );
        expect((await admin.get(path, 'json')).statusCode, path).toBe(200);
      }
      const unnamed = await admin.get('/admin/sessions/stats?=1', 'json');
      expect(unnamed.json().error.message).toBe(
        'Invalid request: "" is not a parameter of this page (it takes none)',
      );
      const page = await admin.get('/admin/sessions/stats?x=1', 'html');
      expect(page.statusCode).toBe(400);
      expect(page.body).toContain(
        'href="/admin/sessions/stats">Open this page without its filters',
      );
      // A page whose address holds a value (a user's) is named with it.
      const user = await t.createUser('query-on-a-user@example.com');
      const detail = await admin.get(`/admin/users/${user.id}?x=1`, 'html');
      expect(detail.statusCode).toBe(400);
      expect(detail.body).toContain(
        `href="/admin/users/${user.id}">Open this page without its filters`,
      );
      // Not when that address would be refused too.
      const odd = await admin.get('/admin/users/abc?x=1', 'html');
      expect(odd.statusCode).toBe(400);
      expect(odd.body).not.toContain('Open this page without');
    });

    it('should refuse a day before 2000 in every date filter of the console, in the same words', async () => {
      for (const [path, field] of [
        ['/admin/sessions', 'created_from'],
        ['/admin/sessions', 'created_to'],
        ['/admin/sessions/ended', 'ended_from'],
        ['/admin/users', 'from'],
        ['/admin/audit', 'to'],
        ['/admin/analytics', 'from'],
      ]) {
        const res = await admin.get(`${path}?${field}=0000-01-01`, 'json');
        expect(res.statusCode, `${path} ${field}`).toBe(400);
        expect(res.json().error, `${path} ${field}`).toMatchObject({
          message: `Invalid request: ${field} must be 2000-01-01 or later`,
          details: { field },
        });
      }
      expect((await admin.get('/admin/sessions?created_from=2000-01-01', 'json')).statusCode).toBe(
        200,
      );
    });

    it('should refuse a created_from after created_to', async () => {
      const res = await admin.get(`/admin/sessions?created_from=${d1}&created_to=${d3}`, 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.field).toBe('created_from');
    });

    it('should treat empty filters as no filter, as the blank form submits them', async () => {
      const json = await listJson(admin, '?email=&status=&role=&created_from=&created_to=');
      expect(json.total).toBe(8);
    });

    it('should send /admin to the sessions page', async () => {
      const res = await admin.get('/admin');
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/admin/sessions');
    });

    it('should match nothing before the first day and only the new sign-in from today', async () => {
      await expectMatches(`?created_to=${isoDay(dayStart(4))}`, []);
      await expectMatches(`?created_from=${isoDay(dayStart(0))}`, ['root']);
    });
  });
}
