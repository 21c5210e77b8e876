/**
 * Case C23 of shared/CASES.md: no raw session token or CSRF token in the logs, the
 * audit log or any console page, after sign-in, revocations, cleanup, a refused CSRF
 * check and a store error. Sessions are named by their digest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';

const kinds = await storeKindsToRun();

describe.each(kinds)('C23 tokens on the record on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C23: no raw token or CSRF token reaches a log line, an audit row or a page',
    async () => {
      const { stream, lines } = logCapture();
      let failNext = false;
      t = await makeApp(kind, {
        logStream: stream,
        wrapStore: (s) =>
          new Proxy(s, {
            get(target, prop, receiver) {
              const value = Reflect.get(target, prop, receiver);
              if (typeof value !== 'function') return value;
              // Bound to the store itself: its methods use private fields.
              if (prop !== 'userSessionIds') return value.bind(target);
              return async (...args: unknown[]) => {
                if (failNext) throw new Error('injected store failure');
                return value.apply(target, args);
              };
            },
          }),
      });
      await t.createUser('root@example.test', 'superuser');
      const victim = await t.createUser('c23@example.test');
      const admin = t.client();
      await admin.login('root@example.test');
      const secrets: string[] = [admin.cookies.get('warden_session')!];

      const sessions = [];
      for (let i = 0; i < 3; i++) {
        const c = t.client();
        sessions.push((await c.login('c23@example.test')).session.id);
        secrets.push(c.cookies.get('warden_session')!);
      }
      const csrf = await admin.csrf();
      secrets.push(csrf);

      await admin.postJson(`/admin/sessions/revoke/${sessions[0]}`, {}, { csrf });
      await admin.postJson('/admin/sessions/bulk-revoke', { ids: [sessions[1]] }, { csrf });
      await admin.postJson('/admin/sessions/cleanup-expired', {}, { csrf });
      expect(
        (await admin.postJson('/admin/sessions/cleanup-expired', {}, { csrf: 'bad' })).statusCode,
      ).toBe(403);
      failNext = true;
      const broken = await admin.postJson(`/admin/sessions/revoke-user/${victim.id}`, {}, { csrf });
      expect(broken.statusCode).toBe(503);
      failNext = false;

      const pages = await Promise.all(
        ['/admin/sessions', '/admin/users', '/admin/sessions/revoke-matching', '/'].map(
          async (url) => (await admin.get(url, 'html')).body,
        ),
      );
      const audit = await t.database.db.selectFrom('audit_log').selectAll().execute();
      const record = [lines.join('\n'), JSON.stringify(audit), pages.join('\n')].join('\n');

      expect(lines.length).toBeGreaterThan(5);
      expect(audit.length).toBeGreaterThanOrEqual(4);
      for (const secret of secrets) expect(record).not.toContain(secret);
      // The digest is how sessions are named, in the record and on the page.
      expect(JSON.stringify(audit)).toContain(sessions[0]);
      expect(lines.some((l) => l.includes('"action":"sessions.revoke"'))).toBe(true);
    },
  );
});
