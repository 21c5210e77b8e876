/**
 * A user's page in the console on both stores: who they are and who decided their account,
 * their live sessions with a revoke button each (and one for all), and their session history
 * with what happened, why and by whom, paged; a revoke from the page comes back to it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { clientWith, plantSession, signedIn, toastAfter, whoamiStatus } from './helpers.js';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`a user's page (${kind})`, () => {
    let t: TestApp;
    let boss: Client;
    let bossId: number;
    let ownSession: string;

    beforeAll(async () => {
      t = await makeApp(kind, { env: { CLEANUP_INTERVAL: '0' } });
      bossId = (await t.createUser('boss@detail.test', 'superuser')).id;
      const signed = await signedIn(t, 'boss@detail.test');
      boss = signed.client;
      ownSession = signed.sessionId;
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should show the live sessions and the history of a user, and revoke from there', async () => {
      const user = await t.createUser('kim@detail.test', 'user', 'pending');
      await boss.postJson(`/admin/users/${user.id}/approve`);
      const phone = await plantSession(t, user.id, { ip: '192.0.2.10', userAgent: CHROME });
      const laptop = await plantSession(t, user.id, { ip: '192.0.2.11' });
      const old = await plantSession(t, user.id, { expired: true });
      const signedOut = await signedIn(t, 'kim@detail.test');
      await signedOut.client.postJson('/api/auth/logout');

      const json = (await boss.get(`/admin/users/${user.id}`, 'json')).json();
      expect(json.user).toMatchObject({ id: user.id, status: 'approved', approved_by: bossId });
      expect(json.user).not.toHaveProperty('password_hash');
      expect(json.sessions.map((s: { id: string }) => s.id).sort()).toEqual(
        [phone.id, laptop.id].sort(),
      );
      expect(json.sessions.find((s: { id: string }) => s.id === phone.id)).toMatchObject({
        ip: '192.0.2.10',
        browser: 'Chrome 130',
        os: 'Windows 10',
        current: false,
      });
      // Four sign-ins (three planted, one real) and one sign-out, newest first.
      expect(json.history.total).toBe(5);
      expect(json.history.items[0]).toMatchObject({
        kind: 'signed_out',
        sessionId: signedOut.sessionId,
      });

      const page = await boss.get(`/admin/users/${user.id}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain(
        '<h1 class="h3 mb-0 text-break" id="user-email">kim@detail.test</h1>',
      );
      expect(page.body).toMatch(
        /Approved<\/dt><dd[^>]*><time[^>]*>[^<]*<\/time> by boss@detail\.test/,
      );
      expect(page.body).toContain('id="live-count" data-total="2">2 active');
      expect(page.body).toContain('1 expired, not yet cleaned up');
      expect(page.body).not.toContain(`<tr data-session-id="${old.id}">`);
      expect(page.body).toContain(`action="/admin/sessions/revoke/${phone.id}"`);
      expect(page.body).toContain(`action="/admin/sessions/revoke-user/${user.id}"`);

      // Revoke the phone from the page: back to the page, which shows the change.
      const back = `/admin/users/${user.id}`;
      const res = await boss.postForm(`/admin/sessions/revoke/${phone.id}`, { return_to: back });
      expect(res.headers.location).toBe(back);
      expect(await toastAfter(boss, res)).toBe('1 revoked.');
      expect(await whoamiStatus(clientWith(t, phone))).toBe(401);
      expect(await whoamiStatus(clientWith(t, laptop))).toBe(200);

      const after = await boss.get(back);
      expect(after.body).toContain('id="live-count" data-total="1">1 active');
      const revokedRow = new RegExp(
        `<tr data-kind="revoked" data-session-id="${phone.id}">([\\s\\S]*?)</tr>`,
      ).exec(after.body);
      expect(revokedRow?.[1].replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')).toMatch(
        /Revoked revoked by an administrator boss@detail\.test 192\.0\.2\.10 Chrome 130 on Windows 10/,
      );
      const text = after.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      expect(text).toMatch(/(now|ago) Signed out signed out the user 127\.0\.0\.1 /);
    });

    it("should mark the superuser's own session on their own page, without a revoke button", async () => {
      const page = await boss.get(`/admin/users/${bossId}`);
      expect(page.body).toContain('your current session');
      expect(page.body).not.toContain(`action="/admin/sessions/revoke/${ownSession}"`);
      const json = (await boss.get(`/admin/users/${bossId}`, 'json')).json();
      expect(json.sessions.find((s: { id: string }) => s.id === ownSession).current).toBe(true);
    });

    it('should page the history, newest first', async () => {
      const user = await t.createUser('busy@detail.test');
      for (let i = 0; i < 55; i++) {
        await plantSession(t, user.id, { createdAt: Date.now() - (i + 1) * 60_000 });
      }
      const first = (await boss.get(`/admin/users/${user.id}`, 'json')).json().history;
      const second = (await boss.get(`/admin/users/${user.id}?history_page=2`, 'json')).json()
        .history;
      expect(first.total).toBe(55);
      expect(first.items).toHaveLength(50);
      expect(second.items).toHaveLength(5);
      const all = [...first.items, ...second.items].map((r: { at: number }) => r.at);
      expect(all).toEqual([...all].sort((a, b) => b - a));
      const page = await boss.get(`/admin/users/${user.id}?history_page=2`);
      expect(page.body).toContain('Page 2 of 2');
      const beyond = await boss.get(`/admin/users/${user.id}?history_page=99`);
      expect(beyond.body).toContain('Page 99 is past the last of these events');
      expect(beyond.body).not.toContain('No session history.');
    });

    it('should answer 404 for a user who does not exist and 400 for a malformed id', async () => {
      const missing = await boss.get('/admin/users/987654', 'json');
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('WARDEN_NOT_FOUND');
      const bad = await boss.get('/admin/users/abc', 'json');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.details.field).toBe('userId');
      const badPage = await boss.get(`/admin/users/${bossId}?history_page=0`, 'json');
      expect(badPage.statusCode).toBe(400);
      expect(badPage.json().error.details.field).toBe('history_page');
    });

    it('should link each user of the list to their page', async () => {
      const user = await t.createUser('linked@detail.test');
      const list = await boss.get('/admin/users?email=linked@');
      expect(list.body).toContain(`<a href="/admin/users/${user.id}">linked@detail.test</a>`);
    });
  });
}
