/**
 * Saved views on both stores: a superuser names the current filters of the sessions or users
 * table, finds them in the page's menu and reopens them; a query is checked against the page's
 * own filter schema; only the owner can delete a view; saving and deleting are audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { auditRows, hiddenInput, lastAudit, signedIn, toastAfter } from './helpers.js';

interface ViewJson {
  id: number;
  page: string;
  name: string;
  query: string;
  url: string;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`saved views (${kind})`, () => {
    let t: TestApp;
    let root: Client;
    let other: Client;

    const listViews = async (c: Client, page: string) => {
      const res = await c.get(`/admin/saved-views?page=${page}`, 'json');
      expect(res.statusCode).toBe(200);
      return (res.json() as { items: ViewJson[] }).items;
    };
    const save = (c: Client, body: Record<string, unknown>) =>
      c.postJson('/admin/saved-views', body);

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('root@views.test', 'superuser');
      await t.createUser('other@views.test', 'superuser');
      root = (await signedIn(t, 'root@views.test')).client;
      other = (await signedIn(t, 'other@views.test')).client;
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should save the filters shown on the sessions page and reopen them from its menu', async () => {
      const page = await root.get('/admin/sessions?status=active&role=user&page=1', 'html');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('id="saved-views"');
      const query = hiddenInput(page.body, 'query');
      expect(query).toBe('status=active&role=user');

      const res = await root.postForm('/admin/saved-views', {
        page: 'sessions',
        name: 'Active users',
        query,
      });
      expect(res.headers.location).toBe('/admin/sessions?status=active&role=user');
      expect(await toastAfter(root, res)).toBe('Saved view "Active users".');

      const after = await root.get('/admin/sessions', 'html');
      expect(after.body).toContain('Saved views (1)');
      expect(after.body).toMatch(
        /href="\/admin\/sessions\?status=active&amp;role=user"[^>]*>Active users<\/a>/,
      );
      const [view] = await listViews(root, 'sessions');
      expect(view).toMatchObject({ name: 'Active users', query: 'status=active&role=user' });
      expect((await root.get(view.url, 'html')).statusCode).toBe(200);

      const audit = await lastAudit(t, 'saved_views.create');
      expect(audit).toMatchObject({ actor_email: 'root@views.test', target: `view:${view.id}` });
      expect(audit.details).toEqual({ page: 'sessions', name: 'Active users', query: view.query });

      // Another superuser has menus of their own.
      expect(await listViews(other, 'sessions')).toEqual([]);
    });

    it('should save views of the users page against its own filters', async () => {
      const res = await save(root, {
        page: 'users',
        name: 'Pending admins',
        query: '?role=admin&status=pending&from=2026-01-01',
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().view).toMatchObject({
        url: '/admin/users?role=admin&status=pending&from=2026-01-01',
      });
      const page = await root.get('/admin/users', 'html');
      expect(page.body).toContain('Pending admins</a>');
      expect(page.body).toContain('<input type="hidden" name="page" value="users">');
      // A filter of the sessions page is not one of the users page.
      const wrong = await save(root, {
        page: 'users',
        name: 'x',
        query: 'created_from=2026-01-01',
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().error.details.field).toBe('query.created_from');
    });

    it('should leave the page and snapshot out of a saved query', async () => {
      const res = await save(root, {
        page: 'sessions',
        name: 'Expired, page 3',
        query: 'status=expired&page=3&as_of=1700000000000&per_page=100',
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().view.query).toBe('status=expired&per_page=100');
    });

    it('should answer 400 naming the field for a bad name or query', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ page: 'sessions', name: '   ', query: '' }, 'name'],
        [{ page: 'sessions', name: 'x'.repeat(81), query: '' }, 'name'],
        [{ page: 'sessions', name: 'Active users', query: 'status=all' }, 'name'],
        // A right-to-left override would show "\u202eevil" as "live", and reverse what follows.
        [{ page: 'sessions', name: '\u202eevil', query: 'role=admin' }, 'name'],
        // Names that differ by a zero-width space or a soft hyphen would read alike.
        [{ page: 'sessions', name: 'Admins\u200b', query: 'role=admin' }, 'name'],
        [{ page: 'sessions', name: 'Ad\u00admins', query: 'role=admin' }, 'name'],
        [{ page: 'sessions', name: 'a', query: 'colour=red' }, 'query.colour'],
        [{ page: 'sessions', name: 'a', query: 'status=zombie' }, 'query.status'],
        [{ page: 'sessions', name: 'a', query: 'status=active&status=expired' }, 'query.status'],
        [{ page: 'sessions', name: 'a', query: 'created_from=2025-02-30' }, 'query.created_from'],
        [{ page: 'sessions', name: 'a', query: 'per_page=5000' }, 'query.per_page'],
        [{ page: 'users', name: 'a', query: 'role=emperor' }, 'query.role'],
        // The users page's own date rules too, not only its schema.
        [{ page: 'users', name: 'a', query: 'from=0000-01-01' }, 'query.from'],
        [{ page: 'users', name: 'a', query: 'to=2026-13-45' }, 'query.to'],
        [{ page: 'users', name: 'a', query: 'from=2026-05-01&to=2026-01-01' }, 'query.from'],
        [{ page: 'audit', name: 'a', query: '' }, 'page'],
      ];
      for (const [body, field] of cases) {
        const res = await save(root, body);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json().error.details.field, JSON.stringify(body)).toBe(field);
      }
      expect(
        (await save(root, { page: 'sessions', name: 'é'.repeat(80), query: '' })).statusCode,
      ).toBe(201);
      // As a form: back to the page with its filters, which says what was wrong.
      const form = await root.postForm('/admin/saved-views', {
        page: 'sessions',
        name: '',
        query: 'status=active&role=superuser',
      });
      expect(form.statusCode).toBe(303);
      expect(form.headers.location).toBe('/admin/sessions?status=active&role=superuser');
      const back = await root.get(form.headers.location as string, 'html');
      expect(back.body).toContain('The view was not saved: name is required.');
      // A query that is no filter of the page goes back to the page without it.
      const query = await root.postForm('/admin/saved-views', {
        page: 'sessions',
        name: 'a',
        query: 'colour=red',
      });
      expect(query.headers.location).toBe('/admin/sessions');
    });

    it("should say what is wrong with a saved query in the words of the page's own filters", async () => {
      for (const [page, query] of [
        ['sessions', 'status=zombie'],
        ['sessions', 'per_page=abc'],
        ['sessions', `email=${'a'.repeat(300)}`],
        ['users', 'role=emperor'],
      ] as const) {
        const saved = await save(root, { page, name: `bad ${query.slice(0, 20)}`, query });
        const shown = await root.get(`/admin/${page}?${query}`, 'json');
        expect(saved.statusCode).toBe(400);
        expect(shown.statusCode).toBe(400);
        // "query.status must be one of: …" where the page says "status must be one of: …".
        const pageSays = shown.json().error.message.replace(/^Invalid request: /, '');
        expect(saved.json().error.message).toBe(`Invalid request: query.${pageSays}`);
        expect(saved.json().error.message).not.toMatch(/expected|union/i);
      }
    });

    it('should refuse a save without a CSRF token', async () => {
      const res = await root.postJson(
        '/admin/saved-views',
        { page: 'sessions', name: 'no token', query: '' },
        { csrf: null },
      );
      expect(res.statusCode).toBe(403);
      expect((await listViews(root, 'sessions')).map((v) => v.name)).not.toContain('no token');
    });

    it('should show a name as text, never as markup', async () => {
      await save(root, { page: 'sessions', name: '<img src=x onerror=alert(1)>', query: '' });
      const page = await root.get('/admin/sessions', 'html');
      expect(page.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
      expect(page.body).not.toContain('<img src=x');
    });

    it('should read a form value with a malformed escape as a browser shows it, not keep it raw', async () => {
      // `%ED%A0%80` encodes a lone surrogate, which no UTF-8 decoder accepts; the rest of the
      // value decodes as usual. (That every key of a long form is read, auth-api tests.)
      const res = await t.app.inject({
        method: 'POST',
        url: '/admin/saved-views',
        headers: {
          cookie: root.cookieHeader(),
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'text/html',
        },
        payload: `_csrf=${encodeURIComponent(await root.csrf())}&page=sessions&query=&name=caf%C3%A9+%ED%A0%80x`,
      });
      expect(res.statusCode, res.body).toBe(303);
      const names = (await listViews(root, 'sessions')).map((v) => v.name);
      expect(names).toContain('café \ufffd\ufffd\ufffdx');
      expect(names.some((n) => n.includes('%'))).toBe(false);
    });

    it('should keep emoji and scripts that need joiners or tags in a name', async () => {
      for (const name of [
        'Team \u{1F469}\u200d\u{1F4BB}',
        // Scotland's flag is made of tag characters; Persian needs the zero-width non-joiner.
        'Scots \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}',
        '\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645',
      ]) {
        const res = await save(root, { page: 'sessions', name, query: '' });
        expect(res.statusCode, res.body).toBe(201);
      }
    });

    it('should send a form whose name is taken back to its page, filters kept, saying so', async () => {
      const body = { page: 'sessions', name: 'Taken once', query: 'status=active' };
      expect((await save(root, body)).statusCode).toBe(201);
      const again = await root.postForm('/admin/saved-views', body);
      expect(again.statusCode).toBe(303);
      expect(again.headers.location).toBe('/admin/sessions?status=active');
      const page = await root.get(again.headers.location as string, 'html');
      expect(page.body).toContain('The view was not saved:');
      expect(page.body).toContain('is taken');
    });

    it("should delete one's own view, and answer someone else's as not found", async () => {
      const mine = (
        await save(other, { page: 'sessions', name: 'Mine', query: 'role=admin' })
      ).json().view as ViewJson;

      const refused = await root.postJson(`/admin/saved-views/${mine.id}/delete`);
      expect(refused.statusCode).toBe(404);
      expect((await listViews(other, 'sessions')).map((v) => v.id)).toEqual([mine.id]);
      expect((await lastAudit(t, 'saved_views.delete')).outcome).toBe('failure');

      const res = await other.postForm(`/admin/saved-views/${mine.id}/delete`, {
        return_to: '/admin/sessions?role=admin',
      });
      expect(res.headers.location).toBe('/admin/sessions?role=admin');
      expect(await toastAfter(other, res)).toBe('Deleted view "Mine".');
      expect(await listViews(other, 'sessions')).toEqual([]);
      const deletes = await auditRows(t, 'saved_views.delete');
      expect(deletes.at(-1)).toMatchObject({
        actor_email: 'other@views.test',
        outcome: 'success',
        target: `view:${mine.id}`,
      });
    });
  });
}
