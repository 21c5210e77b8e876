/**
 * The guard matrix and case C14 of shared/CASES.md, built from the app's own route table: a
 * route added later is covered (or fails here until someone says who it is for and how it
 * succeeds). Every console route, for nobody, a user, an admin and a superuser, answers the
 * redirect, 401, 403 or success it should; a refused console request by a signed-in person is
 * an audit row; every state-changing route refuses a missing, wrong or other session's CSRF
 * token and a cross-site request, as a form and as JSON, with a method override too, and
 * changes nothing; tried as GET (or PUT, PATCH, DELETE) a state-changing path does nothing.
 */
import http from 'node:http';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageErrorCode } from '../routes/helpers.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { serve } from '../support/browser.js';
import {
  accessOf,
  asForm,
  auditCount,
  expectUnchanged,
  isStream,
  latestAudit,
  makeWorld,
  type Prepared,
  prepare,
  type Route,
  routesOf,
  STATE_CHANGING,
  snapshot,
  urlFor,
  type World,
} from './support.js';

/** Sends a prepared request as JSON or as a form, with these headers and this CSRF token. */
function send(
  p: Prepared,
  as: 'json' | 'form',
  token: string | null,
  headers: Record<string, string> = {},
  client: Client = p.client,
): Promise<LightMyRequestResponse> {
  const h = { ...headers, ...(token && as === 'json' ? { 'x-csrf-token': token } : {}) };
  if (as === 'json')
    return client.request({ method: 'POST', url: p.url, json: p.body, headers: h });
  const form = asForm(token ? { _csrf: token, ...p.body } : p.body);
  return client.request({ method: 'POST', url: p.url, form, headers: h, accept: 'html' });
}

/**
 * The status of a stream that inject() would wait on forever, over a socket of its own that is
 * destroyed once the headers are in (a fetch aborted mid-stream can keep its socket open and
 * hold the app's close until the keep-alive timeout).
 */
function streamStatus(url: string, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { cookie } }, (res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
  });
}

function expectRefusedCsrf(res: LightMyRequestResponse, what: string) {
  expect(res.statusCode, what).toBe(403);
  expect(res.headers['set-cookie'] ?? '', what).not.toMatch(/warden_session=[^;]/);
  if (String(res.headers['content-type'] ?? '').startsWith('application/json')) {
    expect(res.json().error.code, what).toBe('WARDEN_CSRF_INVALID');
  }
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`guard matrix and C14 (${kind})`, () => {
    let t: TestApp;
    let w: World;
    let routes: Route[];

    beforeAll(async () => {
      t = await makeApp(kind);
      w = await makeWorld(t);
      routes = routesOf(t);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should know who every route is for', () => {
      expect(routes.length).toBeGreaterThan(40);
      for (const r of routes) expect(() => accessOf(r.url), `${r.method} ${r.url}`).not.toThrow();
    });

    it('should send nobody signed in to sign in from every console and personal page, or answer 401 JSON', async () => {
      for (const r of routes.filter((r) => ['superuser', 'signed-in'].includes(accessOf(r.url)))) {
        const url = STATE_CHANGING.has(r.method) ? (await prepare(w, r)).url : urlFor(w, r);
        const before = await snapshot(t);
        const c = t.client();
        const json = await c.request({
          method: r.method as 'GET',
          url,
          accept: 'json',
          ...(r.method === 'GET' ? {} : { json: {}, headers: { 'x-csrf-token': await c.csrf() } }),
        });
        expect(json.statusCode, `${r.method} ${url}`).toBe(401);
        expect(json.json().error.code).toBe('WARDEN_AUTH_REQUIRED');

        // The JSON API answers JSON whatever the Accept header says.
        const page = await c.request({ method: r.method as 'GET', url, accept: 'html' });
        if (url.startsWith('/api/')) {
          expect(page.statusCode, `${r.method} ${url}`).toBe(401);
        } else {
          expect(page.statusCode, `${r.method} ${url}`).toBe(303);
          // A page comes back after signing in; a form, with no page it was sent from, does not
          // come back to its own address (which answers POST only).
          expect(page.headers.location).toBe(
            r.method === 'GET' ? `/login?next=${encodeURIComponent(url)}` : '/login',
          );
        }
        await expectUnchanged(t, before, `${r.method} ${url}`);
      }
      const home = await t.client().get('/', 'html');
      expect([home.statusCode, home.headers.location]).toEqual([303, '/login']);
    });

    it.each([
      ['a user', 'user', 'joe@example.test'],
      ['an admin', 'admin', 'amy@example.test'],
    ] as const)(
      'should answer %s 403 on every console route, audit each refusal and change nothing',
      async (_who, role, email) => {
        const member = role === 'user' ? w.user : w.admin;
        const consoleRoutes = routes.filter((r) => accessOf(r.url) === 'superuser');
        for (const r of consoleRoutes) {
          const p = STATE_CHANGING.has(r.method)
            ? await prepare(w, r)
            : { client: member, url: urlFor(w, r), body: {} };
          const before = await snapshot(t);
          const audited = await auditCount(t, 'admin.access');
          const what = `${role} ${r.method} ${p.url}`;

          const json =
            r.method === 'GET'
              ? await member.get(p.url, 'json')
              : await send(p, 'json', await member.csrf(), {}, member);
          expect(json.statusCode, what).toBe(403);
          expect(json.json().error.code, what).toBe('WARDEN_FORBIDDEN');
          const page =
            r.method === 'GET'
              ? await member.get(p.url, 'html')
              : await send(p, 'form', await member.csrf(), {}, member);
          expect(page.statusCode, what).toBe(403);
          expect(pageErrorCode(page.body), what).toBe('WARDEN_FORBIDDEN');

          await expectUnchanged(t, before, what);
          expect(await auditCount(t, 'admin.access'), what).toBe(audited + 2);
          const [row] = await latestAudit(t, 'admin.access', 1);
          expect(row).toMatchObject({ actor_email: email, outcome: 'refused' });
          expect(row.details).toMatchObject({ reason: 'not a superuser', role });
          expect(row.target, what).toMatch(new RegExp(`^${r.method} ${r.url}/?$`));
        }
        // Still signed in: a refusal ends nothing.
        expect((await member.get('/api/auth/session')).statusCode).toBe(200);
      },
    );

    it('should let a superuser read every console page and every personal page', async () => {
      const base = await serve(t);
      for (const r of routes.filter((r) => r.method === 'GET' && accessOf(r.url) !== 'public')) {
        const url = urlFor(w, r);
        if (isStream(r)) {
          expect(await streamStatus(`${base}${url}`, w.su.cookieHeader()), url).toBe(200);
          continue;
        }
        const res = await w.su.get(url, 'html');
        const want = url === '/admin' ? 303 : 200;
        expect(res.statusCode, `GET ${url}: ${res.body.slice(0, 200)}`).toBe(want);
      }
    });

    it('should serve /metrics to loopback only, whoever is signed in, unless it has a token', async () => {
      for (const c of [t.client(), w.user, w.su]) {
        const far = await t.app.inject({
          url: '/metrics',
          remoteAddress: '203.0.113.9',
          headers: {
            accept: 'application/json',
            ...(c.cookies.size > 0 ? { cookie: c.cookieHeader() } : {}),
          },
        });
        expect(far.statusCode).toBe(403);
        expect(far.json().error.code).toBe('WARDEN_METRICS_FORBIDDEN');
        expect((await c.get('/metrics')).statusCode).toBe(200);
      }
    });

    it('should carry out every state-changing route for the person it is for, and audit every console action', async () => {
      for (const r of routes.filter((r) => STATE_CHANGING.has(r.method))) {
        const p = await prepare(w, r);
        const rows = await t.database.db
          .selectFrom('audit_log')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        const res = await send(p, p.formOnly ? 'form' : 'json', await p.client.csrf());
        const what = `${r.method} ${p.url}: ${res.statusCode} ${res.body.slice(0, 300)}`;
        expect(res.statusCode, what).toBeLessThan(400);
        if (accessOf(r.url) === 'superuser') {
          const after = await t.database.db
            .selectFrom('audit_log')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow();
          expect(Number(after.n), `audit row for ${what}`).toBeGreaterThan(Number(rows.n));
        }
      }
    });

    describe('C14: every state-changing route refuses a request without a valid CSRF token of its own session', () => {
      it('C14: no token, a wrong token, another session’s token, a foreign Origin or a cross-site request: 403, audited with the reason, nothing changed', async () => {
        for (const r of routes.filter((r) => STATE_CHANGING.has(r.method))) {
          const p = await prepare(w, r);
          const token = await p.client.csrf();
          // Another session's token, minted with this browser's own CSRF secret, so only the
          // session it is bound to differs.
          const other = t.client();
          other.cookies.set('warden_csrf', p.client.cookies.get('warden_csrf')!);
          await other.login('victim@example.test');
          const othersToken = await other.csrf();
          const before = await snapshot(t);
          const refusals = await auditCount(t, 'csrf.refused');

          const tries: [string, Promise<LightMyRequestResponse>, string][] = [];
          const attempt = (
            what: string,
            res: () => Promise<LightMyRequestResponse>,
            reason: string,
          ) => tries.push([what, res(), reason]);
          for (const as of ['json', 'form'] as const) {
            // The JSON API reads JSON: a form's _csrf field goes with the other unknown fields.
            const invalid =
              as === 'form' && p.url.startsWith('/api/')
                ? 'missing token'
                : 'invalid or expired token';
            attempt(`${as} without a token`, () => send(p, as, null), 'missing token');
            attempt(
              `${as} with a wrong token`,
              () => send(p, as, 'forged-token-1234567890'),
              invalid,
            );
            attempt(`${as} with another session's token`, () => send(p, as, othersToken), invalid);
            attempt(
              `${as} from another site`,
              () => send(p, as, token, { host: 'warden.test', origin: 'https://evil.example' }),
              'foreign origin',
            );
            attempt(
              `${as} cross-site`,
              () => send(p, as, token, { 'sec-fetch-site': 'cross-site' }),
              'cross-site request',
            );
          }
          attempt(
            'a method override to GET',
            () => send(p, 'json', null, { 'x-http-method-override': 'GET' }),
            'missing token',
          );
          attempt(
            'a form _method=GET',
            () => send({ ...p, body: { ...p.body, _method: 'GET' } }, 'form', null),
            'missing token',
          );
          // What a route does not take is refused (400) only once the token is good: a forged
          // request is a forged one, on record, whatever it carries.
          const param = `${p.url}${p.url.includes('?') ? '&' : '?'}not_a_parameter=1`;
          for (const as of ['json', 'form'] as const) {
            attempt(
              `${as} without a token, with a parameter it does not take`,
              () => send({ ...p, url: param }, as, null),
              'missing token',
            );
            attempt(
              `${as} without a token, with a field it does not take`,
              () => send({ ...p, body: { ...p.body, not_a_field: '1' } }, as, null),
              'missing token',
            );
            // (The sign-in, registration and sign-out forms check their token in their
            // handlers, to answer with a fresh form; what they were sent is read first.)
            if (!['/login', '/register', '/logout'].includes(r.url)) {
              attempt(
                `${as} without a token, with text no store keeps`,
                () => send({ ...p, body: { ...p.body, return_to: 'a\u0000b' } }, as, null),
                'missing token',
              );
            }
          }
          if (!['/login', '/register', '/logout'].includes(r.url)) {
            attempt(
              'JSON without a token, with a body that is not JSON',
              () =>
                p.client.request({
                  method: 'POST',
                  url: p.url,
                  raw: '{x',
                  headers: { 'content-type': 'application/json' },
                }),
              'missing token',
            );
          }

          const reasons: string[] = [];
          for (const [what, res, reason] of tries) {
            expectRefusedCsrf(await res, `${r.method} ${p.url} ${what}`);
            reasons.push(reason);
          }
          await expectUnchanged(t, before, `${r.method} ${p.url}`);

          const rows = await latestAudit(t, 'csrf.refused', reasons.length);
          expect(await auditCount(t, 'csrf.refused'), `${p.url} audited`).toBe(
            refusals + reasons.length,
          );
          expect(rows.map((row) => row.details.reason).sort(), p.url).toEqual(reasons.sort());
          for (const row of rows) {
            expect(row.outcome).toBe('refused');
            expect(row.target).toBe(`POST ${r.url}`);
            expect(JSON.stringify(row)).not.toContain(token);
          }
        }
      });

      it('C14: a state-changing path tried as GET, PUT, PATCH or DELETE changes nothing', async () => {
        const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
        for (const r of routes.filter((r) => STATE_CHANGING.has(r.method))) {
          const p = await prepare(w, r);
          const before = await snapshot(t);
          for (const method of ['GET', 'PUT', 'PATCH', 'DELETE'] as const) {
            const res = await p.client.request({
              method: method as 'GET',
              url: p.url,
              accept: 'json',
              headers: { 'x-http-method-override': 'POST', 'x-csrf-token': await p.client.csrf() },
            });
            // A GET page at the same path (a confirmation, a form) only reads (400 when it wants a
            // query); nothing else answers.
            // A console path such as /admin/users/bulk-approve also reads as /admin/users/:userId
            // with a userId that is not a number: 400.
            const expected =
              method === 'GET' && gets.has(r.url) ? [200, 303, 400] : [400, 404, 405];
            expect(expected, `${method} ${p.url}: ${res.statusCode}`).toContain(res.statusCode);
          }
          await expectUnchanged(t, before, `${p.url} as GET/PUT/PATCH/DELETE`);
        }
      });

      it('C14: a cross-site sign-in POST is refused and starts no session', async () => {
        const before = await snapshot(t);
        for (const url of ['/login', '/api/auth/login']) {
          const c = t.client();
          const token = await c.csrf();
          const body = { email: 'joe@example.test', password: 'correct horse battery' };
          const foreign = await send(
            { client: c, url, body },
            url === '/login' ? 'form' : 'json',
            token,
            {
              host: 'warden.test',
              origin: 'https://evil.example',
            },
          );
          expectRefusedCsrf(foreign, `${url} from another origin`);
          const cross = await send({ client: c, url, body }, 'form', token, {
            'sec-fetch-site': 'cross-site',
          });
          expectRefusedCsrf(cross, `${url} cross-site`);
          expect(c.cookies.has('warden_session')).toBe(false);
        }
        await expectUnchanged(t, before, 'cross-site sign-in');
      });
    });
  });
}
