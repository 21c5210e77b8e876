/**
 * Changes to a person take effect on their next request, on every instance: disabling them
 * (case C20's kind), changing their role either way, changing their password. And the console
 * never shows or logs a token: every console page a superuser can open (from the route table)
 * and every log line of the run are searched for every session and CSRF token handed out, and
 * every session id in a link or a form is a 64-hex digest.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantSession, whoamiStatus } from '../routes/helpers.js';
import { Client, makeApp, secondInstance, storeKindsToRun, type TestApp } from '../support/app.js';
import { makeWorld, routesOf, urlFor, type World } from './support.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`changes take effect on the next request (${kind})`, () => {
    let t: TestApp;
    let su: Client;
    let second: FastifyInstance;
    let seq = 0;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('su@example.test', 'superuser');
      su = t.client();
      await su.login('su@example.test');
      // Another instance on the same stores: what one changes, the other applies.
      second = await secondInstance(t);
    });
    afterAll(async () => {
      await t?.close();
    });

    async function signedInTwice(role: 'user' | 'superuser' = 'user') {
      const user = await t.createUser(`p${++seq}@example.test`, role);
      const here = t.client();
      await here.login(user.email);
      const there = new Client(second);
      await there.login(user.email);
      return { user, here, there };
    }

    it('C20: disabling a user signs out both of their sessions on their next request', async () => {
      const { user, here, there } = await signedInTwice();
      const res = await su.postJson(`/admin/users/${user.id}/disable`, {});
      expect(res.json().sessionsEnded).toBe(2);
      expect(await whoamiStatus(here)).toBe(401);
      expect(await whoamiStatus(there)).toBe(401);
    });

    it('should let a user promoted to superuser into the console on their next request, on either instance', async () => {
      const { user, here, there } = await signedInTwice();
      expect((await here.get('/admin/sessions', 'json')).statusCode).toBe(403);
      expect(
        (await su.postJson(`/admin/users/${user.id}/role`, { role: 'superuser' })).statusCode,
      ).toBe(200);
      expect((await here.get('/admin/sessions', 'json')).statusCode).toBe(200);
      expect((await there.get('/admin/sessions', 'json')).statusCode).toBe(200);
    });

    it('should shut a demoted superuser out of the console on their next request, on either instance', async () => {
      const { user, here, there } = await signedInTwice('superuser');
      expect((await there.get('/admin/sessions', 'json')).statusCode).toBe(200);
      expect(
        (await su.postJson(`/admin/users/${user.id}/role`, { role: 'admin' })).statusCode,
      ).toBe(200);
      expect((await here.get('/admin/sessions', 'json')).statusCode).toBe(403);
      expect((await there.get('/admin/sessions', 'json')).statusCode).toBe(403);
      expect(await whoamiStatus(there)).toBe(200);
    });

    it('should sign out the other sessions of a password changed on one instance, on the other', async () => {
      const { here, there } = await signedInTwice();
      const res = await here.postJson('/api/auth/password', {
        current_password: 'correct horse battery',
        new_password: 'another quite long passphrase',
      });
      expect(res.statusCode).toBe(200);
      expect(await whoamiStatus(there)).toBe(401);
      expect(await whoamiStatus(here)).toBe(200);
    });
  });

  describe.skipIf(skip !== null)(`no token on a page or in a log (${kind})`, () => {
    let t: TestApp;
    let w: World;
    const lines: string[] = [];

    beforeAll(async () => {
      const logStream = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      t = await makeApp(kind, { logStream });
      w = await makeWorld(t);
      for (let i = 0; i < 3; i++) await plantSession(t, w.victimId);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should show no token on any console or personal page, and name sessions by digest in every link and form', async () => {
      const tokens = [
        ...[w.su, w.admin, w.user].flatMap((c) => [
          c.cookies.get('warden_session')!,
          c.cookies.get('warden_csrf')!,
        ]),
        w.victimSession.token,
      ];
      const pages = routesOf(t).filter(
        (r) => r.method === 'GET' && !r.url.startsWith('/static/') && !r.schema.produces,
      );
      expect(pages.length).toBeGreaterThan(15);
      let digests = 0;
      for (const r of pages) {
        for (const accept of ['html', 'json'] as const) {
          const url = urlFor(w, r);
          const res = await w.su.get(url, accept);
          for (const token of tokens) expect(res.body, `${url} (${accept})`).not.toContain(token);
          // Any long path segment of a link or a form is a session id: a digest, never a token.
          for (const m of res.body.matchAll(/(?:href|action)="([^"?]*)/g)) {
            for (const segment of m[1].split('/').filter((p) => p.length >= 20)) {
              expect(segment, `${url}: ${m[0]}`).toMatch(/^[0-9a-f]{64}$/);
              digests += 1;
            }
          }
        }
      }
      // The sessions table and the users' pages do link sessions: the check looked at some.
      expect(digests).toBeGreaterThan(3);
    });

    it('should have logged no token, CSRF token or password', async () => {
      await w.su.postJson(`/admin/sessions/revoke/${w.victimSession.id}`, {});
      await w.user.postJson('/api/auth/password', {
        current_password: 'wrong password here',
        new_password: 'whatever long enough',
      });
      const text = lines.join('');
      expect(text).toContain('sign in');
      const secrets = [
        w.victimSession.token,
        ...[w.su, w.admin, w.user].map((c) => c.cookies.get('warden_session')!),
        ...[w.su, w.admin, w.user].map((c) => c.cookies.get('warden_csrf')!),
        'correct horse battery',
        'wrong password here',
        'whatever long enough',
      ];
      for (const secret of secrets) expect(text).not.toContain(secret);
    });
  });
}
