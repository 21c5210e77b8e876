/**
 * The JSON API (csrf, register, login, logout, session) and the pages everyone sees (/,
 * /login, /register, /logout) on both stores, through the same cookies a browser keeps.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import { hiddenInput, pageErrorCode, signedIn, toastAfter, whoamiStatus } from './helpers.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The attributes of one Set-Cookie header of a response, by cookie name. */
function setCookie(headers: Record<string, unknown>, name: string): string | undefined {
  return [headers['set-cookie'] ?? []]
    .flat()
    .map(String)
    .find((h) => h.startsWith(`${name}=`));
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`sign-in API and pages (${kind})`, () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('ada@example.com', 'user');
      await t.createUser('pat@example.com', 'user', 'pending');
    });

    afterAll(async () => {
      await t?.close();
    });

    describe('GET /api/auth/csrf', () => {
      it('should hand out a token and keep its secret in an HttpOnly cookie', async () => {
        const c = t.client();
        const res = await c.get('/api/auth/csrf');
        expect(res.statusCode).toBe(200);
        expect(res.json().token).toMatch(/^\S{20,}$/);
        const cookie = setCookie(res.headers, 'warden_csrf');
        expect(cookie).toMatch(/; HttpOnly/);
        expect(cookie).toMatch(/; SameSite=Lax/);
      });
    });

    describe('POST /api/auth/register', () => {
      it('should create a pending account that cannot sign in yet', async () => {
        const c = t.client();
        const res = await c.postJson('/api/auth/register', {
          email: 'New.Person@Example.com',
          password: 'a long enough password',
        });
        expect(res.statusCode).toBe(201);
        expect(res.json()).toEqual({
          user: {
            id: expect.any(Number),
            email: 'New.Person@Example.com',
            role: 'user',
            status: 'pending',
          },
        });
        const login = await c.postJson('/api/auth/login', {
          email: 'new.person@example.com',
          password: 'a long enough password',
        });
        expect(login.statusCode).toBe(403);
        expect(login.json().error.code).toBe('WARDEN_AUTH_NOT_APPROVED');

        const again = await c.postJson('/api/auth/register', {
          email: 'NEW.PERSON@example.com',
          password: 'another long password',
        });
        expect(again.statusCode).toBe(409);
        expect(again.json().error.code).toBe('WARDEN_USER_EMAIL_TAKEN');
      });

      it.each([
        [{ email: 'not-an-email', password: 'a long enough password' }, 'email'],
        [{ email: 'x@example.com', password: 'short' }, 'password'],
        [{ email: 'x@example.com' }, 'password'],
        [{ password: 'a long enough password' }, 'email'],
        [{ email: '', password: 'a long enough password' }, 'email'],
      ])('should refuse %j with 400 naming %s', async (body, field) => {
        const res = await t.client().postJson('/api/auth/register', body);
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
      });

      it('should never let a registration choose its own role or status', async () => {
        const res = await t.client().postJson('/api/auth/register', {
          email: 'y@example.com',
          password: 'a long enough password',
          role: 'superuser',
          status: 'approved',
        });
        // Unknown fields are dropped (Fastify's removeAdditional), not honoured.
        expect(res.statusCode).toBe(201);
        expect(res.json().user).toMatchObject({ role: 'user', status: 'pending' });
      });

      it('should refuse a registration without a CSRF token and create nobody', async () => {
        const noToken = await t
          .client()
          .postJson(
            '/api/auth/register',
            { email: 'z@example.com', password: 'a long enough password' },
            { csrf: null },
          );
        expect(noToken.statusCode).toBe(403);
        expect(noToken.json().error.code).toBe('WARDEN_CSRF_INVALID');
        const users = await t.database.db
          .selectFrom('users')
          .select('email')
          .where('email', '=', 'z@example.com')
          .execute();
        expect(users).toEqual([]);
      });
    });

    describe('POST /api/auth/login and GET /api/auth/session', () => {
      it('should start a session whose id is the hash of an HttpOnly cookie', async () => {
        const c = t.client();
        const res = await c.postJson('/api/auth/login', {
          email: 'ADA@example.com',
          password: PASSWORD,
        });
        expect(res.statusCode).toBe(200);
        const body = res.json();
        expect(body.user).toEqual({
          id: expect.any(Number),
          email: 'ada@example.com',
          role: 'user',
        });
        const token = c.cookies.get('warden_session')!;
        expect(body.session.id).toBe(sha256(token));
        expect(res.body).not.toContain(token);
        const cookie = setCookie(res.headers, 'warden_session')!;
        expect(cookie).toMatch(/; HttpOnly/);
        expect(cookie).toMatch(/; SameSite=Lax/);
        expect(cookie).toMatch(/; Path=\//);
        const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
        expect(maxAge).toBeGreaterThan(t.config.idleTimeoutMs / 1000 - 5);
        expect(maxAge).toBeLessThanOrEqual(t.config.idleTimeoutMs / 1000 + 1);

        const who = await c.get('/api/auth/session');
        expect(who.statusCode).toBe(200);
        expect(who.json()).toMatchObject({
          id: body.user.id,
          email: 'ada@example.com',
          role: 'user',
          session: { id: body.session.id, createdAt: body.session.createdAt },
        });
      });

      it('should give a new token on sign-in, never keep the one the browser brought', async () => {
        const c = t.client();
        await c.login('ada@example.com');
        const first = c.cookies.get('warden_session');
        await c.login('ada@example.com');
        expect(c.cookies.get('warden_session')).not.toBe(first);

        const planted = t.client();
        planted.cookies.set('warden_session', 'A'.repeat(43));
        await planted.login('ada@example.com');
        expect(planted.cookies.get('warden_session')).not.toBe('A'.repeat(43));
      });

      it('should answer a wrong password and an unknown email alike, with 401', async () => {
        const wrong = await t
          .client()
          .postJson('/api/auth/login', { email: 'ada@example.com', password: 'not the password' });
        const unknown = await t
          .client()
          .postJson('/api/auth/login', { email: 'nobody@example.com', password: PASSWORD });
        for (const res of [wrong, unknown]) {
          expect(res.statusCode).toBe(401);
          expect(res.json().error.code).toBe('WARDEN_AUTH_INVALID_CREDENTIALS');
          expect(setCookie(res.headers, 'warden_session')).toBeUndefined();
        }
        expect(wrong.json().error.message).toBe(unknown.json().error.message);
      });

      it('should refuse a pending account with 403 and say why', async () => {
        const res = await t
          .client()
          .postJson('/api/auth/login', { email: 'pat@example.com', password: PASSWORD });
        expect(res.statusCode).toBe(403);
        expect(res.json().error).toMatchObject({
          code: 'WARDEN_AUTH_NOT_APPROVED',
          details: { status: 'pending' },
        });
      });

      it('should refuse a login body without both fields with 400 naming the field', async () => {
        const res = await t.client().postJson('/api/auth/login', { email: 'ada@example.com' });
        expect(res.statusCode).toBe(400);
        expect(res.json().error.details.field).toBe('password');
      });

      it('should refuse JSON fields of the wrong type with 400 naming the field, never as a wrong password', async () => {
        await t.createUser('typed@example.com');
        for (const [body, field] of [
          [{ email: 'typed@example.com', password: 123 }, 'password'],
          [{ email: ['typed@example.com'], password: PASSWORD }, 'email'],
          [{ email: 'typed@example.com', password: { a: 1 } }, 'password'],
        ] as const) {
          const res = await t.client().postJson('/api/auth/login', body);
          expect(res.statusCode, JSON.stringify(body)).toBe(400);
          expect(res.json().error).toMatchObject({
            code: 'WARDEN_VALIDATION',
            details: { field, where: 'body' },
          });
          expect(res.json().error.message).toContain(`${field} must be string`);
        }
        // The same fields as strings sign in.
        const ok = await t.client().postJson('/api/auth/login', {
          email: 'typed@example.com',
          password: PASSWORD,
        });
        expect(ok.statusCode).toBe(200);
      });

      it('should answer 401 to nobody and to a cookie that is not a session', async () => {
        const anonymous = await t.client().get('/api/auth/session');
        expect(anonymous.statusCode).toBe(401);
        expect(anonymous.json().error.code).toBe('WARDEN_AUTH_REQUIRED');

        for (const value of ['garbage', 'B'.repeat(43)]) {
          const c = t.client();
          c.cookies.set('warden_session', value);
          const res = await c.get('/api/auth/session');
          expect(res.statusCode, value).toBe(401);
        }
        // A well-formed token the store does not know is cleared from the browser.
        const stale = t.client();
        stale.cookies.set('warden_session', 'C'.repeat(43));
        await stale.get('/api/auth/session');
        expect(stale.cookies.has('warden_session')).toBe(false);
      });
    });

    describe('POST /api/auth/logout', () => {
      it('should end the session and clear the cookie, and say so only once', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const token = client.cookies.get('warden_session')!;
        const res = await client.postJson('/api/auth/logout');
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ signedOut: true });
        expect(setCookie(res.headers, 'warden_session')).toMatch(
          /Max-Age=0|Expires=Thu, 01 Jan 1970/,
        );
        expect(client.cookies.has('warden_session')).toBe(false);

        // The old token is dead, not merely forgotten by the browser.
        const replay = t.client();
        replay.cookies.set('warden_session', token);
        expect(await whoamiStatus(replay)).toBe(401);

        const again = await client.postJson('/api/auth/logout');
        expect(again.json()).toEqual({ signedOut: false });
      });

      it('should take a logout with no body and no content type, as `curl -X POST` sends it', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.request({
          method: 'POST',
          url: '/api/auth/logout',
          accept: 'json',
          headers: { 'x-csrf-token': await client.csrf() },
        });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({ signedOut: true });
        expect(await whoamiStatus(client)).toBe(401);
      });

      it('should refuse a logout without a CSRF token and stay signed in', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.postJson('/api/auth/logout', {}, { csrf: null });
        expect(res.statusCode).toBe(403);
        expect(res.json().error.code).toBe('WARDEN_CSRF_INVALID');
        expect(await whoamiStatus(client)).toBe(200);
      });
    });

    describe('pages', () => {
      /** A page's form token, as the browser would submit it. */
      async function formToken(c: Client, path: string) {
        const page = await c.get(path);
        expect(page.statusCode).toBe(200);
        return hiddenInput(page.body, '_csrf');
      }

      it('should send nobody from the start page to the sign-in page', async () => {
        const res = await t.client().get('/');
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/login');
      });

      it('should show the start page to a signed-in user, without console links for a user', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.get('/');
        expect(res.statusCode).toBe(200);
        expect(res.body).toContain('ada@example.com');
        expect(res.body).not.toContain('href="/admin/sessions"');
      });

      it('should read every field of a long form, past the thousand keys a parser stops at by default', async () => {
        // A console action refuses fields it does not take; a public form ignores them, so the
        // padding can stand before the fields the sign-in reads.
        const c = t.client();
        const pad = Array.from({ length: 1_500 }, (_, i) => String(i));
        const res = await c.postForm(
          '/login',
          { pad, email: 'ada@example.com', password: PASSWORD },
          { csrf: await formToken(c, '/login') },
        );
        expect(res.statusCode, res.body).toBe(303);
        expect(await whoamiStatus(c)).toBe(200);
      });

      it('should sign in with the form and go to a local next page only', async () => {
        const c = t.client();
        const token = await formToken(c, '/login?next=/admin/sessions');
        const res = await c.postForm(
          '/login',
          { email: 'ada@example.com', password: PASSWORD, next: '/somewhere?x=1' },
          { csrf: token },
        );
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/somewhere?x=1');
        expect(await whoamiStatus(c)).toBe(200);

        // Signed in already: /login sends on at once.
        const again = await c.get('/login?next=/');
        expect(again.statusCode).toBe(303);
        expect(again.headers.location).toBe('/');

        // A next past Latin-1 goes out percent-encoded: a raw one cannot be a header (it was a
        // 500, after the password had been accepted).
        const wide = t.client();
        const res3 = await wide.postForm(
          '/login',
          { email: 'ada@example.com', password: PASSWORD, next: '/admin/users?email=名' },
          { csrf: await formToken(wide, '/login') },
        );
        expect(res3.statusCode).toBe(303);
        expect(res3.headers.location).toBe('/admin/users?email=%E5%90%8D');
        const on = await wide.get(`/login?next=${encodeURIComponent('/／x')}`);
        expect(on.statusCode).toBe(303);
        expect(on.headers.location).toBe('/%EF%BC%8Fx');

        // A browser drops tabs and newlines from a URL: `/<TAB>/evil.example` is
        // `//evil.example` to it, another site.
        const offsite = [
          'https://evil.example/',
          '//evil.example/',
          '/\\evil.example',
          '/\t/evil.example',
          '/\n/evil.example',
          '/\r\n/evil.example',
          '/\t\\evil.example',
        ];
        for (const next of offsite) {
          const other = t.client();
          const res2 = await other.postForm(
            '/login',
            { email: 'ada@example.com', password: PASSWORD, next },
            { csrf: await formToken(other, '/login') },
          );
          expect(res2.headers.location, JSON.stringify(next)).toBe('/');
          // Signed in, the same `next` on the sign-in page's address sends home too.
          const on = await other.get(`/login?next=${encodeURIComponent(next)}`);
          expect(on.headers.location, JSON.stringify(next)).toBe('/');
        }
      });

      it('should show the sign-in form again with the error for a wrong password', async () => {
        const c = t.client();
        const res = await c.postForm(
          '/login',
          { email: 'ada@example.com', password: 'not the password' },
          { csrf: await formToken(c, '/login') },
        );
        expect(res.statusCode).toBe(401);
        expect(res.body).toContain('Wrong email or password');
        expect(res.body).toContain('value="ada@example.com"');
        expect(res.body).not.toContain('not the password');
        expect(await whoamiStatus(c)).toBe(401);
      });

      it('should show a fresh sign-in form, not sign in, when the form token is missing or wrong', async () => {
        for (const csrf of [null, 'forged-token']) {
          const c = t.client();
          await c.get('/login');
          const res = await c.postForm(
            '/login',
            { email: 'ada@example.com', password: PASSWORD },
            { csrf },
          );
          expect(res.statusCode).toBe(403);
          expect(res.body).toContain('This form expired. Please sign in again.');
          expect(await whoamiStatus(c)).toBe(401);
        }
      });

      it('should register with the form and say the account waits for approval', async () => {
        const c = t.client();
        const res = await c.postForm(
          '/register',
          { email: 'form.person@example.com', password: 'a long enough password' },
          { csrf: await formToken(c, '/register') },
        );
        expect(res.statusCode).toBe(200);
        expect(res.body).toContain('form.person@example.com');
        const row = await t.database.db
          .selectFrom('users')
          .select('status')
          .where('email', '=', 'form.person@example.com')
          .executeTakeFirst();
        expect(row?.status).toBe('pending');

        const bad = await c.postForm(
          '/register',
          { email: 'nope', password: 'a long enough password' },
          { csrf: await formToken(c, '/register') },
        );
        expect(bad.statusCode).toBe(400);
        expect(bad.body).toContain('email is not an email address');

        const forged = await c.postForm(
          '/register',
          { email: 'forged@example.com', password: 'a long enough password' },
          { csrf: 'forged-token' },
        );
        expect(forged.statusCode).toBe(403);
      });

      it('should send a signed-in user from /register to the start page', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.get('/register');
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/');
      });

      it('should sign out with the form and toast it on the sign-in page', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.postForm('/logout', {}, { csrf: await formToken(client, '/') });
        expect(res.headers.location).toBe('/login');
        expect(await toastAfter(client, res)).toBe('You are signed out.');
        expect(await whoamiStatus(client)).toBe(401);
      });

      it('should say the session had already ended when signing out without one', async () => {
        const c = t.client();
        const res = await c.postForm('/logout', {}, { csrf: null });
        expect(res.headers.location).toBe('/login');
        expect(await toastAfter(c, res)).toBe(
          'Your session had already ended. Please sign in again.',
        );
      });

      it('should refuse a sign-out without the form token and stay signed in', async () => {
        const { client } = await signedIn(t, 'ada@example.com');
        const res = await client.postForm('/logout', {}, { csrf: null });
        expect(res.statusCode).toBe(403);
        expect(pageErrorCode(res.body)).toBe('WARDEN_CSRF_INVALID');
        expect(await whoamiStatus(client)).toBe(200);
      });

      it('should answer an unknown page with a 404 page, and an unknown API path with JSON', async () => {
        const page = await t.client().get('/no-such-page');
        expect(page.statusCode).toBe(404);
        expect(pageErrorCode(page.body)).toBe('WARDEN_NOT_FOUND');
        const api = await t.client().get('/api/auth/no-such-thing');
        expect(api.statusCode).toBe(404);
        expect(api.json().error.code).toBe('WARDEN_NOT_FOUND');
      });

      it('should open the sign-in page with parameters it does not take, as links add them', async () => {
        const page = await t
          .client()
          .get('/login?utm_source=newsletter&next=%2Fadmin&fbclid=abc', 'html');
        expect(page.statusCode).toBe(200);
        expect(page.body).toContain('name="next" value="/admin"');
      });

      it('should tell how to create the first superuser only while there is none', async () => {
        const hint = (await t.client().get('/login')).body;
        expect(hint).toContain('id="first-run"');
        // Run elsewhere than the server's database, the command would make a superuser nobody sees.
        expect(hint).toContain("with the server's own <code>DATABASE_URL</code>");
        await t.createUser('first.superuser@example.com', 'superuser');
        expect((await t.client().get('/login')).body).not.toContain('id="first-run"');
      });
    });
  });
}
