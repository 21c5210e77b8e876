/**
 * Case C13 of shared/CASES.md: CSRF protection that never breaks ordinary use: two
 * tabs, a token used twice, a sign-in form left open, a sign-out after expiry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function csrfFromPage(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF field in the page');
  return m[1];
}

describe.each(kinds)('C13 CSRF on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C13: two tabs revoke one row, another row, then in bulk, all without reloading',
    async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.test', 'superuser');
      await t.createUser('c13@example.test');
      const admin = t.client();
      await admin.login('root@example.test');
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await t.client().login('c13@example.test')).session.id);

      const tab1 = csrfFromPage((await admin.get('/admin/sessions', 'html')).body);
      const tab2 = csrfFromPage((await admin.get('/admin/sessions?email=c13', 'html')).body);

      const first = await admin.postForm(`/admin/sessions/revoke/${ids[0]}`, {}, { csrf: tab1 });
      const second = await admin.postForm(`/admin/sessions/revoke/${ids[1]}`, {}, { csrf: tab1 });
      const bulk = await admin.postForm(
        '/admin/sessions/bulk-revoke',
        { ids: [ids[2], ids[3]] },
        { csrf: tab2 },
      );
      for (const res of [first, second, bulk]) expect(res.statusCode).toBe(303);
      const list = await admin.get('/admin/sessions?email=c13', 'json');
      expect(list.json().total).toBe(0);
    },
  );

  it.skipIf(skip)(
    'C13: a stale sign-in form answers "this form expired" with a fresh form',
    async () => {
      t = await makeApp(kind, { csrfValidityMs: 1_000 });
      await t.createUser('c13@example.test');
      const c = t.client();
      const stale = csrfFromPage((await c.get('/login', 'html')).body);
      await sleep(1_200);

      const res = await c.postForm(
        '/login',
        { email: 'c13@example.test', password: 'correct horse battery' },
        { csrf: stale },
      );
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('This form expired');
      const fresh = csrfFromPage(res.body);
      expect(fresh).not.toBe(stale);
      expect(c.cookies.has('warden_session')).toBe(false);

      const retry = await c.postForm(
        '/login',
        { email: 'c13@example.test', password: 'correct horse battery' },
        { csrf: fresh },
      );
      expect(retry.statusCode).toBe(303);
    },
  );

  it.skipIf(skip)(
    'C13: signing out after the session expired lands on sign-in with a message',
    async () => {
      t = await makeApp(kind, { env: { IDLE_TIMEOUT: '1s', TOUCH_INTERVAL: '100ms' } });
      await t.createUser('c13@example.test');
      const c = t.client();
      await c.login('c13@example.test');
      const token = csrfFromPage((await c.get('/', 'html')).body);
      await sleep(1_300);

      const res = await c.postForm('/logout', {}, { csrf: token });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/login');
      const page = await c.get('/login', 'html');
      expect(page.body).toContain('Your session had already ended');
    },
  );
});
