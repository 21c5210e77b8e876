/**
 * The statistics page when part of the store fails: the other cards keep their figures, the
 * failing ones say why and show no made-up numbers, and the answer is still a page (200),
 * never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { plantSession, signedIn } from './helpers.js';

const FAILING = new Set(['healthReport', 'info']);

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`statistics with a failing store call (${kind})`, () => {
    let t: TestApp;
    let admin: Client;

    beforeAll(async () => {
      t = await makeApp(kind, {
        wrapStore: (inner): SessionStore =>
          new Proxy(inner, {
            get(target, prop, receiver) {
              const member = Reflect.get(target, prop, receiver);
              if (typeof member !== 'function') return member;
              if (!FAILING.has(String(prop))) return member.bind(target);
              return () => Promise.reject(new Error(`${String(prop)} failed (test)`));
            },
          }),
      });
      await t.createUser('root@example.com', 'superuser');
      const una = await t.createUser('una@example.com');
      await plantSession(t, una.id);
      admin = (await signedIn(t, 'root@example.com')).client;
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should keep the other figures and say which could not be taken', async () => {
      const res = await admin.get('/admin/sessions/stats', 'json');
      expect(res.statusCode).toBe(200);
      const report = res.json();

      expect(report.sessions.error).toBeNull();
      expect(report.sessions.data.active).toBe(2);
      expect(report.health.data).toBeNull();
      expect(report.health.error).toMatch(/healthReport failed \(test\)/);
      expect(report.store.data).toBeNull();
      expect(report.store.error).toMatch(/info failed \(test\)/);
      expect(report.database.error).toBeNull();

      const page = await admin.get('/admin/sessions/stats', 'html');
      expect(page.statusCode).toBe(200);
      const health = page.body.slice(page.body.indexOf('data-section="health"'));
      expect(health).toMatch(
        /<div class="alert[^"]*" role="status" data-error >\s*Could not refresh these figures: <span data-error-text>session store unavailable during healthReport: healthReport failed \(test\)/,
      );
      expect(health).toMatch(
        /id="stat-health-expired"><span data-stat="expired" data-format="int">—</,
      );
      expect(page.body).toMatch(/id="stat-active"><span data-stat="active" data-format="int">2</);
    });
  });
}
