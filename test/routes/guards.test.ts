/**
 * Who may use the console, on both stores: nobody signed in is sent to sign in (HTML) or
 * answered 401 (JSON); a signed-in user or admin gets 403 WARDEN_FORBIDDEN and an audit row;
 * a superuser's state-changing request without a valid CSRF token for their own session, or
 * from another origin, gets 403. In every refused case nothing changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  auditRows,
  clientWith,
  expectNoSecretsInAudit,
  type Planted,
  pageErrorCode,
  plantSession,
  signedIn,
  whoamiStatus,
} from './helpers.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`console guards (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    let live: Planted;
    let expired: Planted;
    let victimId: number;
    let pendingId: number;
    const secrets: string[] = [];

    const GETS = [
      '/admin',
      '/admin/sessions',
      '/admin/sessions?status=active&per_page=10',
      '/admin/sessions/revoke-matching?email=victim',
      '/admin/users',
    ];
    /** Every state-changing console route, with a body that would change something. */
    const posts = () =>
      [
        [`/admin/sessions/revoke/${live.id}`, {}],
        [`/admin/sessions/revoke-user/${victimId}`, {}],
        ['/admin/sessions/bulk-revoke', { ids: [live.id] }],
        ['/admin/sessions/revoke-matching?email=victim', { confirm: '2' }],
        ['/admin/sessions/cleanup-expired', {}],
        [`/admin/users/${pendingId}/approve`, {}],
        [`/admin/users/${pendingId}/reject`, {}],
        [`/admin/users/${victimId}/disable`, {}],
        [`/admin/users/${pendingId}/disable`, {}],
        [`/admin/users/${victimId}/role`, { role: 'superuser' }],
      ] as [string, Record<string, string | string[]>][];

    /** What any of those routes would change. */
    async function state() {
      const users = await t.database.db
        .selectFrom('users')
        .select(['id', 'role', 'status'])
        .orderBy('id')
        .execute();
      return {
        live: await whoamiStatus(clientWith(t, live)),
        expiredStored: (await t.store.get(expired.id)) !== null,
        users,
      };
    }

    async function expectNothingChanged(before: Awaited<ReturnType<typeof state>>) {
      expect(await state()).toEqual(before);
      expect(before.live).toBe(200);
      expect(before.expiredStored).toBe(true);
    }

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('su@example.com', 'superuser');
      await t.createUser('joe@example.com', 'user');
      await t.createUser('amy@example.com', 'admin');
      victimId = (await t.createUser('victim@example.com', 'user')).id;
      pendingId = (await t.createUser('victim.pending@example.com', 'user', 'pending')).id;
      live = await plantSession(t, victimId);
      expired = await plantSession(t, victimId, { expired: true });
      secrets.push(live.token, expired.token);
      admin = (await signedIn(t, 'su@example.com')).client;
      secrets.push(admin.cookies.get('warden_session')!);
    });

    afterAll(async () => {
      await t?.close();
    });

    describe('nobody signed in', () => {
      it('should send a form whose session lapsed to sign in and back to the page it was sent from', async () => {
        const c = t.client();
        const url = `/admin/sessions/revoke/${live.id}`;
        const from = '/admin/sessions?status=active&role=user';
        const sent = (referer: string) =>
          c.request({ method: 'POST', url, form: { _csrf: 'x' }, headers: { referer } });
        const same = await sent(`http://localhost:80${from}`);
        expect(same.statusCode).toBe(303);
        expect(same.headers.location).toBe(`/login?next=${encodeURIComponent(from)}`);
        // The sign-in page says the action was not done: signing in leads back to the page.
        const login = await c.get(same.headers.location as string, 'html');
        expect(login.body).toContain('You were not signed in, so that was not done.');
        // Another site's page is no place to come back to.
        expect((await sent(`https://evil.example${from}`)).headers.location).toBe('/login');
        // Nor a page that was a form's own answer (the password prompt of a sensitive action
        // shows at the action's address, which answers POST only): a GET there is a 405.
        const prompt = await sent('http://localhost:80/admin/sessions/cleanup-expired');
        expect(prompt.headers.location).toBe('/login');
        expect(await whoamiStatus(clientWith(t, live))).toBe(200);
      });

      it.each(GETS)(
        'should send a browser from GET %s to sign in, coming back after',
        async (url) => {
          const res = await t.client().get(url, 'html');
          expect(res.statusCode).toBe(303);
          expect(res.headers.location).toBe(`/login?next=${encodeURIComponent(url)}`);
        },
      );

      it.each(GETS)('should answer GET %s as JSON with 401', async (url) => {
        const res = await t.client().get(url, 'json');
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('WARDEN_AUTH_REQUIRED');
      });

      it('should refuse every console action, form or JSON, even with a valid token, and change nothing', async () => {
        const before = await state();
        for (const [url, body] of posts()) {
          const c = t.client();
          const form = await c.postForm(url, body);
          expect(form.statusCode, url).toBe(303);
          // Not back to the form's address, which answers POST only (405 after signing in).
          expect(form.headers.location).toBe('/login');

          const json = await c.postJson(url, body);
          expect(json.statusCode, url).toBe(401);
          expect(json.json().error.code).toBe('WARDEN_AUTH_REQUIRED');
        }
        await expectNothingChanged(before);
      });

      it('should refuse an unknown console path the same way, revealing nothing', async () => {
        const json = await t.client().get('/admin/no-such-page', 'json');
        expect(json.statusCode).toBe(401);
        const page = await t.client().get('/admin/no-such-page', 'html');
        expect(page.statusCode).toBe(303);
        expect(page.headers.location).toBe('/login?next=%2Fadmin%2Fno-such-page');
        // A superuser learns it does not exist.
        const known = await admin.get('/admin/no-such-page', 'json');
        expect(known.statusCode).toBe(404);
        expect(known.json().error.code).toBe('WARDEN_NOT_FOUND');
      });

      it('should answer a route asked with the wrong method 405, saying which methods it takes', async () => {
        for (const [method, url, allow] of [
          ['PUT', '/admin/sessions', 'GET, HEAD'],
          ['GET', '/admin/sessions/cleanup-expired', 'POST'],
          ['DELETE', `/admin/sessions/revoke/${live.id}`, 'POST'],
          ['GET', '/api/auth/login', 'POST'],
          ['PATCH', '/api/auth/session', 'GET, HEAD'],
        ] as const) {
          const res = await admin.request({ method, url, accept: 'json' });
          expect(res.statusCode, `${method} ${url}`).toBe(405);
          expect(res.headers.allow, `${method} ${url}`).toBe(allow);
          expect(res.json().error).toMatchObject({
            code: 'WARDEN_METHOD_NOT_ALLOWED',
            message: `${url} does not answer ${method}; it answers ${allow}`,
          });
        }
        const page = await admin.request({ method: 'GET', url: '/logout', accept: 'html' });
        expect(page.statusCode).toBe(405);
        expect(page.body).toContain('/logout does not answer GET; it answers POST');
        // Nothing was ended by the DELETE, and nobody signed out learns more than before.
        expect(await whoamiStatus(clientWith(t, live))).toBe(200);
        const anonymous = await t
          .client()
          .request({ method: 'PUT', url: '/admin/sessions', accept: 'json' });
        expect(anonymous.statusCode).toBe(401);
      });
    });

    describe.each([
      ['a user', 'joe@example.com', 'user'],
      ['an admin', 'amy@example.com', 'admin'],
    ])('signed in as %s', (_who, email, role) => {
      let member: Client;

      beforeAll(async () => {
        member = (await signedIn(t, email)).client;
        secrets.push(member.cookies.get('warden_session')!);
      });

      it.each(GETS)('should show a 403 page for GET %s', async (url) => {
        const res = await member.get(url, 'html');
        expect(res.statusCode).toBe(403);
        expect(res.headers['content-type']).toMatch(/^text\/html/);
        expect(pageErrorCode(res.body)).toBe('WARDEN_FORBIDDEN');
      });

      it.each([...GETS, '/admin/no-such-page'])(
        'should answer GET %s as JSON with 403 WARDEN_FORBIDDEN',
        async (url) => {
          const res = await member.get(url, 'json');
          expect(res.statusCode).toBe(403);
          expect(res.json().error.code).toBe('WARDEN_FORBIDDEN');
        },
      );

      it('should refuse every console action with a valid token of their own, change nothing and audit it', async () => {
        const before = await state();
        const audited = (await auditRows(t, 'admin.access')).length;
        for (const [url, body] of posts()) {
          const json = await member.postJson(url, body);
          expect(json.statusCode, url).toBe(403);
          expect(json.json().error.code).toBe('WARDEN_FORBIDDEN');

          const form = await member.postForm(url, body);
          expect(form.statusCode, url).toBe(403);
          expect(pageErrorCode(form.body)).toBe('WARDEN_FORBIDDEN');
        }
        await expectNothingChanged(before);
        expect(await whoamiStatus(member)).toBe(200);

        const rows = (await auditRows(t, 'admin.access')).slice(audited);
        expect(rows).toHaveLength(posts().length * 2);
        for (const row of rows) {
          expect(row).toMatchObject({ actor_email: email, outcome: 'refused' });
          expect(row.details).toMatchObject({ reason: 'not a superuser', role });
          expect(row.target).toMatch(/^POST \/admin\//);
        }
      });
    });

    describe('CSRF on every console action, as a superuser', () => {
      /** Sends one console action as JSON with these headers (and no token unless given). */
      const send = (c: Client, url: string, body: object, headers: Record<string, string>) =>
        c.request({ method: 'POST', url, json: body, headers });

      it('should refuse a request without a token, as JSON and as a form', async () => {
        const before = await state();
        for (const [url, body] of posts()) {
          const json = await admin.postJson(url, body, { csrf: null });
          expect(json.statusCode, url).toBe(403);
          expect(json.json().error).toMatchObject({
            code: 'WARDEN_CSRF_INVALID',
            details: { reason: 'missing token' },
          });
          const form = await admin.postForm(url, body, { csrf: null });
          expect(form.statusCode, url).toBe(403);
          expect(pageErrorCode(form.body)).toBe('WARDEN_CSRF_INVALID');
        }
        await expectNothingChanged(before);
      });

      it('should refuse a wrong token', async () => {
        const before = await state();
        for (const [url, body] of posts()) {
          for (const token of ['x', 'forged-token-1234567890', '']) {
            const res = await admin.postJson(url, body, { csrf: token || null });
            expect(res.statusCode, `${url} ${token}`).toBe(403);
            expect(res.json().error.code).toBe('WARDEN_CSRF_INVALID');
          }
        }
        await expectNothingChanged(before);
      });

      it("should refuse another browser's token and a token of this browser's earlier session", async () => {
        const other = await signedIn(t, 'su@example.com');
        secrets.push(other.client.cookies.get('warden_session')!);
        const foreignToken = await other.client.csrf();

        // Same browser (same CSRF cookie), new session: the old token was bound to the old one.
        const browser = (await signedIn(t, 'su@example.com')).client;
        const oldToken = await browser.csrf();
        await browser.login('su@example.com');
        secrets.push(browser.cookies.get('warden_session')!);

        const before = await state();
        for (const [url, body] of posts()) {
          const foreign = await admin.postJson(url, body, { csrf: foreignToken });
          expect(foreign.statusCode, url).toBe(403);
          expect(foreign.json().error.details.reason).toBe('invalid or expired token');

          const stale = await browser.postJson(url, body, { csrf: oldToken });
          expect(stale.statusCode, url).toBe(403);
          expect(stale.json().error.details.reason).toBe('invalid or expired token');
        }
        await expectNothingChanged(before);
      });

      it('should refuse a valid token sent from a foreign origin or a cross-site request', async () => {
        const before = await state();
        for (const [url, body] of posts()) {
          const token = await admin.csrf();
          const foreign = await send(admin, url, body, {
            host: 'warden.test',
            origin: 'https://evil.example',
            'x-csrf-token': token,
          });
          expect(foreign.statusCode, url).toBe(403);
          expect(foreign.json().error.details.reason).toBe('foreign origin');

          const cross = await send(admin, url, body, {
            'sec-fetch-site': 'cross-site',
            'x-csrf-token': token,
          });
          expect(cross.statusCode, url).toBe(403);
          expect(cross.json().error.details.reason).toBe('cross-site request');
        }
        await expectNothingChanged(before);
      });

      it('should refuse a valid token when the browser lost its CSRF cookie', async () => {
        const before = await state();
        const token = await admin.csrf();
        const secret = admin.cookies.get('warden_csrf')!;
        admin.cookies.delete('warden_csrf');
        try {
          const res = await send(
            admin,
            `/admin/sessions/revoke/${live.id}`,
            {},
            {
              'x-csrf-token': token,
            },
          );
          expect(res.statusCode).toBe(403);
          expect(res.json().error.details.reason).toBe('no CSRF cookie');
        } finally {
          admin.cookies.set('warden_csrf', secret);
        }
        await expectNothingChanged(before);
      });

      it('should audit each refusal with its reason and never the token', async () => {
        const rows = await auditRows(t, 'csrf.refused');
        const reasons = new Set(rows.map((r) => r.details.reason));
        expect(reasons).toEqual(
          new Set([
            'missing token',
            'invalid or expired token',
            'foreign origin',
            'cross-site request',
            'no CSRF cookie',
          ]),
        );
        for (const row of rows) expect(row.outcome).toBe('refused');
        const text = JSON.stringify(rows);
        expect(text).not.toContain('forged-token-1234567890');
      });

      it('should accept the same action with a valid token from its own origin', async () => {
        const token = await admin.csrf();
        const res = await send(
          admin,
          `/admin/sessions/revoke/${live.id}`,
          {},
          {
            host: 'warden.test',
            origin: 'http://warden.test',
            'sec-fetch-site': 'same-origin',
            'x-csrf-token': token,
          },
        );
        expect(res.statusCode).toBe(200);
        expect(res.json().counts.revoked).toBe(1);
        expect(await whoamiStatus(clientWith(t, live))).toBe(401);
      });
    });

    it('should have written no session token into any audit row', async () => {
      await expectNoSecretsInAudit(t, secrets);
    });
  });
}
