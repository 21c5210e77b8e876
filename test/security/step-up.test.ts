/**
 * Step-up: the actions that end many sessions at once (revoke-matching, revoke every session of
 * a user, a bulk revoke past STEP_UP_BULK_THRESHOLD), cleanup, repair and making someone a
 * superuser ask for the password again once the superuser's last password entry (sign-in,
 * step-up, password change) is older than STEP_UP_WINDOW. JSON clients get 403
 * WARDEN_STEP_UP_REQUIRED and step up through POST /api/auth/step-up; browsers get a page that
 * re-submits the very form with the password. Nothing changes until the password is right.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hiddenInput, plantSession, toastAfter, whoamiStatus } from '../routes/helpers.js';
import { type Client, makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import { auditCount, expectUnchanged, latestAudit, snapshot } from './support.js';

const MINUTE = 60_000;

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`step-up (${kind})`, () => {
    let t: TestApp;
    let now = Date.now();
    let su: Client;
    let victimId: number;
    let seq = 0;

    beforeAll(async () => {
      t = await makeApp(kind, {
        clock: () => now,
        env: { STEP_UP_BULK_THRESHOLD: '2', SIGN_IN_LIMIT_ACCOUNT: '4' },
      });
      await t.createUser('su@example.test', 'superuser');
      victimId = (await t.createUser('victim@example.test')).id;
    });
    afterAll(async () => {
      await t?.close();
    });

    /** A superuser who signed in six minutes ago: past the five-minute window. */
    beforeEach(async () => {
      // Planted sessions live 30 minutes of real time: each test starts from the real clock.
      now = Date.now();
      su = t.client();
      await su.login('su@example.test');
      now += 6 * MINUTE;
    });

    /** Each sensitive action, with what makes it valid and a check that it happened. */
    async function sensitive() {
      const fresh = await t.createUser(`target${++seq}@example.test`);
      const live = await plantSession(t, fresh.id);
      const ids = [
        (await plantSession(t, victimId)).id,
        (await plantSession(t, victimId)).id,
        (await plantSession(t, victimId)).id,
      ];
      return [
        { url: `/admin/sessions/revoke-user/${fresh.id}`, body: {} },
        {
          url: `/admin/sessions/revoke-matching?email=${fresh.email}`,
          body: { confirm: '1' },
        },
        { url: '/admin/sessions/bulk-revoke', body: { ids } },
        { url: '/admin/sessions/cleanup-expired', body: {} },
        { url: '/admin/sessions/stats/repair', body: {} },
        { url: `/admin/users/${fresh.id}/role`, body: { role: 'superuser' } },
      ].map((a) => ({ ...a, live }));
    }

    it('should refuse each sensitive JSON action with 403 WARDEN_STEP_UP_REQUIRED, change nothing and audit it', async () => {
      for (const action of await sensitive()) {
        const before = await snapshot(t);
        const refused = await auditCount(t, 'auth.step_up_required');
        const res = await su.postJson(action.url, action.body);

        expect(res.statusCode, action.url).toBe(403);
        expect(res.json().error).toMatchObject({
          code: 'WARDEN_STEP_UP_REQUIRED',
          details: { stepUp: '/api/auth/step-up' },
        });
        await expectUnchanged(t, before, action.url);
        expect(await auditCount(t, 'auth.step_up_required')).toBe(refused + 1);
        const [row] = await latestAudit(t, 'auth.step_up_required', 1);
        expect(row).toMatchObject({ actor_email: 'su@example.test', outcome: 'refused' });
      }
    });

    it('should carry out the action once the password is entered through POST /api/auth/step-up, and not before a right one', async () => {
      const [revokeUser] = await sensitive();
      const wrong = await su.postJson('/api/auth/step-up', { password: 'not the password' });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error.code).toBe('WARDEN_AUTH_INVALID_CREDENTIALS');
      // No email was sent: the answer names only what was wrong.
      expect(wrong.json().error.message).toBe('Wrong password');
      expect((await su.postJson(revokeUser.url, {})).statusCode).toBe(403);

      const right = await su.postJson('/api/auth/step-up', { password: PASSWORD });
      expect(right.statusCode).toBe(200);
      expect(right.json()).toEqual({ steppedUp: true, validUntil: now + 5 * MINUTE });
      const done = await su.postJson(revokeUser.url, {});
      expect(done.statusCode).toBe(200);
      expect(done.json().counts.revoked).toBe(1);

      const rows = await latestAudit(t, 'auth.step_up', 2);
      expect(rows.map((r) => r.outcome)).toEqual(['success', 'refused']);
      expect(JSON.stringify(rows)).not.toContain(PASSWORD);
    });

    it('should refuse a password that is no string with 400, not count it as a wrong one', async () => {
      const res = await su.postJson('/api/auth/step-up', { password: 123 });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details).toMatchObject({ field: 'password', where: 'body' });
      const [row] = await latestAudit(t, 'auth.step_up', 1);
      expect(row?.outcome ?? 'none').not.toBe('refused');
    });

    it('should not ask again within the window, and ask again after it', async () => {
      expect((await su.postJson('/api/auth/step-up', { password: PASSWORD })).statusCode).toBe(200);
      now += 4 * MINUTE;
      expect((await su.postJson('/admin/sessions/cleanup-expired', {})).statusCode).toBe(200);
      now += 1 * MINUTE + 1;
      expect((await su.postJson('/admin/sessions/cleanup-expired', {})).statusCode).toBe(403);
    });

    it('should count a sign-in as entering the password', async () => {
      const fresh = t.client();
      await fresh.login('su@example.test');
      expect((await fresh.postJson('/admin/sessions/cleanup-expired', {})).statusCode).toBe(200);
    });

    it('should ask only for bulk revokes past the threshold and for a promotion to superuser', async () => {
      const ids = [(await plantSession(t, victimId)).id, (await plantSession(t, victimId)).id];
      const two = await su.postJson('/admin/sessions/bulk-revoke', { ids });
      expect(two.statusCode).toBe(200);
      expect(two.json().counts.revoked).toBe(2);

      const target = await t.createUser(`role${++seq}@example.test`);
      const toAdmin = await su.postJson(`/admin/users/${target.id}/role`, { role: 'admin' });
      expect(toAdmin.statusCode).toBe(200);
      const toSuper = await su.postJson(`/admin/users/${target.id}/role`, { role: 'superuser' });
      expect(toSuper.statusCode).toBe(403);
      const single = await su.postJson(`/admin/sessions/revoke/${ids[0]}`, {});
      expect(single.statusCode).toBe(200);
    });

    it('should show a browser a password page that re-submits the same form, and carry it out once', async () => {
      const target = await t.createUser(`browser${++seq}@example.test`);
      const live = [await plantSession(t, target.id), await plantSession(t, target.id)];
      const url = `/admin/sessions/revoke-matching?email=${target.email}`;
      const before = await snapshot(t);

      const asked = await su.postForm(url, { confirm: '2', return_to: '/admin/users' });
      expect(asked.statusCode).toBe(403);
      expect(asked.body).toContain('Confirm your password');
      // The window as configured (the default), in words.
      expect(asked.body).toMatch(/not be asked\s+again for 5 minutes\./);
      // Ending a user's sessions names the user.
      const whose = await su.postForm(`/admin/sessions/revoke-user/${target.id}`, {});
      expect(whose.statusCode).toBe(403);
      expect(whose.body).toContain(
        `Ending every session of ${target.email} is a sensitive action.`,
      );
      const promote = await su.postForm(`/admin/users/${target.id}/role`, { role: 'superuser' });
      expect(promote.statusCode).toBe(403);
      expect(promote.body).toContain(
        `Making a superuser of ${target.email} is a sensitive action.`,
      );
      expect(asked.body).toContain(`action="${url}"`);
      expect(hiddenInput(asked.body, 'confirm')).toBe('2');
      expect(hiddenInput(asked.body, 'return_to')).toBe('/admin/users');
      expect(asked.body).toContain('name="step_up_password"');
      await expectUnchanged(t, before, 'asked');

      // The page's own form, sent back with a wrong password: asked again, nothing done.
      const form = {
        confirm: hiddenInput(asked.body, 'confirm'),
        return_to: hiddenInput(asked.body, 'return_to'),
      };
      const csrf = hiddenInput(asked.body, '_csrf');
      const wrong = await su.postForm(url, { ...form, step_up_password: 'nope' }, { csrf });
      expect(wrong.statusCode).toBe(403);
      expect(wrong.body).toContain('That password is not right');
      await expectUnchanged(t, before, 'wrong password');

      const right = await su.postForm(url, { ...form, step_up_password: PASSWORD }, { csrf });
      expect(await toastAfter(su, right)).toBe('2 revoked.');
      for (const s of live) {
        const c = t.client();
        c.cookies.set('warden_session', s.token);
        expect(await whoamiStatus(c)).toBe(401);
      }
    });

    it('should count wrong step-up passwords against the account, then answer 429', async () => {
      const other = await t.createUser(`limited${++seq}@example.test`, 'superuser');
      const c = t.client();
      await c.login(other.email);
      for (let i = 0; i < 4; i++) {
        const res = await c.postJson('/api/auth/step-up', { password: `wrong ${i}` });
        expect(res.statusCode).toBe(401);
      }
      const limited = await c.postJson('/api/auth/step-up', { password: PASSWORD });
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe('WARDEN_RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    });
  });
}
