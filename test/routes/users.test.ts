/**
 * The console's users page and the approval workflow on both stores: filters, approve,
 * reject, disable (which ends every session of the user at once), enable and role changes
 * (which take effect on the user's next request), each audited and answered as JSON or as a
 * redirect with a toast.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role, UserStatus } from '../../src/db/schema.js';
import { type Client, makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  clientWith,
  lastAudit,
  listJson,
  pageErrorCode,
  plantSession,
  signedIn,
  toastAfter,
  whoamiStatus,
} from './helpers.js';

interface PublicUserJson {
  id: number;
  email: string;
  role: Role;
  status: UserStatus;
  approved_by: number | null;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`console users (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    let bossId: number;
    const ids: Record<string, number> = {};
    let n = 0;

    const newUser = async (status: UserStatus = 'approved', role: Role = 'user') =>
      t.createUser(`member${++n}@example.test`, role, status);

    /** Tries to sign in with the API and answers the status (200, 401, 403…). */
    async function loginStatus(email: string) {
      const c = t.client();
      const res = await c.postJson('/api/auth/login', { email, password: PASSWORD });
      return { status: res.statusCode, body: res.json(), client: c };
    }

    beforeAll(async () => {
      t = await makeApp(kind);
      bossId = (await t.createUser('boss@example.com', 'superuser')).id;
      ids.ann = (await t.createUser('Ann.Pending@Example.com', 'user', 'pending')).id;
      ids.ben = (await t.createUser('ben@example.org', 'user')).id;
      ids.cat = (await t.createUser('cat@example.com', 'admin')).id;
      ids.dan = (await t.createUser('dan@example.net', 'user', 'disabled')).id;
      ids.eve = (await t.createUser('eve@example.com', 'user', 'rejected')).id;
      admin = (await signedIn(t, 'boss@example.com')).client;
    });

    afterAll(async () => {
      await t?.close();
    });

    describe('GET /admin/users', () => {
      async function expectUsers(search: string, names: string[]) {
        const res = await admin.get(`/admin/users${search}`, 'json');
        expect(res.statusCode).toBe(200);
        const body = res.json() as { total: number; items: PublicUserJson[] };
        expect(body.total).toBe(names.length);
        const want = names.map((name) => (name === 'boss' ? bossId : ids[name])).sort();
        expect(body.items.map((u) => u.id).sort()).toEqual(want);

        const page = await admin.get(`/admin/users${search}`);
        expect(page.statusCode).toBe(200);
        expect(page.body).toContain(`<span class="fs-5" id="user-count">${names.length} matching`);
        const rows = [...page.body.matchAll(/<tr data-user-id="(\d+)"/g)].map((m) => Number(m[1]));
        expect(rows.sort()).toEqual(want);
      }

      it('should list every user without their password hash', async () => {
        await expectUsers('', ['boss', 'ann', 'ben', 'cat', 'dan', 'eve']);
        const body = (await admin.get('/admin/users', 'json')).body;
        expect(body).not.toContain('password_hash');
        expect(body).not.toContain('scrypt$');
      });

      it('should filter by a part of the email, ignoring case', async () => {
        await expectUsers('?email=ANN.pending', ['ann']);
        await expectUsers('?email=example.com', ['boss', 'ann', 'cat', 'eve']);
        await expectUsers('?email=nobody', []);
      });

      it('should filter by role and by status, alone and combined', async () => {
        await expectUsers('?role=admin', ['cat']);
        await expectUsers('?role=superuser', ['boss']);
        await expectUsers('?status=pending', ['ann']);
        await expectUsers('?status=disabled', ['dan']);
        await expectUsers('?email=example&role=user&status=approved', ['ben']);
        await expectUsers('?email=.com&role=user', ['ann', 'eve']);
        await expectUsers('?email=&role=&status=', ['boss', 'ann', 'ben', 'cat', 'dan', 'eve']);
      });

      it('should answer an empty page beyond the last with the same total', async () => {
        const res = await admin.get('/admin/users?page=2', 'json');
        expect(res.json()).toEqual({ total: 6, items: [] });
      });

      it.each([
        ['role', 'root'],
        ['status', 'gone'],
        ['page', '0'],
        ['page', 'two'],
        ['email', 'x'.repeat(255)],
      ])('should refuse %s=%s with 400 naming the field', async (field, value) => {
        const res = await admin.get(`/admin/users?${field}=${value}`, 'json');
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
        const page = await admin.get(`/admin/users?${field}=${value}`);
        expect(page.statusCode).toBe(400);
        expect(pageErrorCode(page.body)).toBe('WARDEN_VALIDATION');
      });
    });

    describe('POST /admin/users/:id/approve|reject|disable|enable', () => {
      it('should let an approved user sign in who could not while pending', async () => {
        const user = await newUser('pending');
        const before = await loginStatus(user.email);
        expect(before.status).toBe(403);
        expect(before.body.error.code).toBe('WARDEN_AUTH_NOT_APPROVED');

        const res = await admin.postJson(`/admin/users/${user.id}/approve`);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({
          user: { id: user.id, status: 'approved', approved_by: bossId },
          sessionsEnded: 0,
        });
        expect(res.body).not.toContain('password_hash');
        expect((await loginStatus(user.email)).status).toBe(200);

        const audit = await lastAudit(t, 'users.approve');
        expect(audit).toMatchObject({
          actor_id: bossId,
          target: `user:${user.id}`,
          outcome: 'success',
        });
        expect(audit.details).toMatchObject({
          email: user.email,
          from: 'pending',
          to: 'approved',
        });
      });

      it('should reject a pending user, who then cannot sign in, and enable them later', async () => {
        const user = await newUser('pending');
        const rejected = await admin.postJson(`/admin/users/${user.id}/reject`);
        expect(rejected.json().user.status).toBe('rejected');
        expect((await loginStatus(user.email)).status).toBe(403);
        expect((await lastAudit(t, 'users.reject')).details).toMatchObject({ to: 'rejected' });

        const enabled = await admin.postJson(`/admin/users/${user.id}/enable`);
        expect(enabled.json().user.status).toBe('approved');
        expect((await loginStatus(user.email)).status).toBe(200);
      });

      it('should end every live session of a disabled user at once', async () => {
        const user = await newUser();
        const signed = await signedIn(t, user.email);
        const planted = await plantSession(t, user.id);
        await plantSession(t, user.id, { expired: true });
        const bystander = await plantSession(t, (await newUser()).id);

        const res = await admin.postJson(`/admin/users/${user.id}/disable`);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ user: { status: 'disabled' }, sessionsEnded: 2 });
        expect(await whoamiStatus(signed.client)).toBe(401);
        expect(await whoamiStatus(clientWith(t, planted))).toBe(401);
        expect(await whoamiStatus(clientWith(t, bystander))).toBe(200);
        expect((await listJson(admin, `?email=${user.email}`)).total).toBe(0);

        const login = await loginStatus(user.email);
        expect(login.status).toBe(403);
        expect(login.body.error.code).toBe('WARDEN_AUTH_NOT_APPROVED');

        const audit = await lastAudit(t, 'users.disable');
        expect(audit.details).toMatchObject({
          from: 'approved',
          to: 'disabled',
          counts: { sessionsEnded: 2 },
        });
        const history = await t.database.db
          .selectFrom('session_events')
          .select(['session_id', 'reason', 'actor_id'])
          .where('user_id', '=', user.id)
          .where('kind', '=', 'revoked')
          .execute();
        expect(history.map((h) => h.session_id).sort()).toEqual(
          [signed.sessionId, planted.id].sort(),
        );
        for (const h of history)
          expect(h).toMatchObject({ reason: 'user_disabled', actor_id: bossId });

        const enabled = await admin.postJson(`/admin/users/${user.id}/enable`);
        expect(enabled.json().user.status).toBe('approved');
        expect((await loginStatus(user.email)).status).toBe(200);
      });

      it('should redirect a form back to the filtered users page with a toast', async () => {
        const user = await newUser();
        await plantSession(t, user.id);
        const back = '/admin/users?status=approved&role=user';
        const res = await admin.postForm(`/admin/users/${user.id}/disable`, { return_to: back });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe(
          `${user.email} is now disabled; 1 session ended.`,
        );

        const enable = await admin.postForm(`/admin/users/${user.id}/enable`, {
          return_to: 'https://evil.example/admin/users',
        });
        expect(enable.headers.location).toBe('/admin/users');
        expect(await toastAfter(admin, enable)).toBe(`${user.email} is now approved.`);
      });

      it.each([
        ['approve', 'approved'],
        ['reject', 'approved'],
        ['enable', 'approved'],
        ['approve', 'disabled'],
        ['disable', 'rejected'],
        ['disable', 'disabled'],
      ] as const)(
        'should refuse to %s a user who is %s, changing nothing',
        async (action, from) => {
          const user = await newUser(from);
          const res = await admin.postJson(`/admin/users/${user.id}/${action}`);
          expect(res.statusCode).toBe(400);
          expect(res.json().error.code).toBe('WARDEN_VALIDATION');
          expect(res.json().error.message).toContain(`cannot ${action} a user who is ${from}`);
          const after = await admin.get(`/admin/users?email=${user.email}`, 'json');
          expect(after.json().items[0].status).toBe(from);
        },
      );

      it('should refuse a superuser changing their own status', async () => {
        const res = await admin.postJson(`/admin/users/${bossId}/disable`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.message).toContain('your own status');
        expect(await whoamiStatus(admin)).toBe(200);
      });

      it('should answer 404 for a user who does not exist and 400 for a malformed id', async () => {
        for (const action of ['approve', 'reject', 'disable', 'enable']) {
          const missing = await admin.postJson(`/admin/users/987654/${action}`);
          expect(missing.statusCode, action).toBe(404);
          expect(missing.json().error.code).toBe('WARDEN_NOT_FOUND');

          const bad = await admin.postJson(`/admin/users/abc/${action}`);
          expect(bad.statusCode, action).toBe(400);
          expect(bad.json().error.details.field).toBe('userId');
        }
      });
    });

    describe('POST /admin/users/:id/role', () => {
      it('should change the role from the next request on, console access included', async () => {
        const user = await newUser();
        const member = await signedIn(t, user.email);
        expect((await member.client.get('/admin/sessions', 'json')).statusCode).toBe(403);

        const promoted = await admin.postJson(`/admin/users/${user.id}/role`, {
          role: 'superuser',
        });
        expect(promoted.statusCode).toBe(200);
        expect(promoted.json().user.role).toBe('superuser');
        expect((await member.client.get('/api/auth/session')).json().role).toBe('superuser');
        expect((await member.client.get('/admin/sessions', 'json')).statusCode).toBe(200);

        const audit = await lastAudit(t, 'users.set_role');
        expect(audit).toMatchObject({ target: `user:${user.id}`, outcome: 'success' });
        expect(audit.details).toMatchObject({ from: 'user', to: 'superuser' });

        const demoted = await admin.postForm(`/admin/users/${user.id}/role`, {
          role: 'admin',
          return_to: '/admin/users?role=admin',
        });
        expect(demoted.headers.location).toBe('/admin/users?role=admin');
        expect(await toastAfter(admin, demoted)).toBe(`${user.email} is now admin.`);
        const refused = await member.client.get('/admin/sessions', 'json');
        expect(refused.statusCode).toBe(403);
        expect(refused.json().error.code).toBe('WARDEN_FORBIDDEN');
      });

      it('should refuse an unknown role, a missing role and a change of the own role', async () => {
        const user = await newUser();
        for (const body of [{ role: 'root' }, {}, { role: '' }]) {
          const res = await admin.postJson(`/admin/users/${user.id}/role`, body);
          expect(res.statusCode, JSON.stringify(body)).toBe(400);
          expect(res.json().error.details.field).toBe('role');
        }
        const own = await admin.postJson(`/admin/users/${bossId}/role`, { role: 'user' });
        expect(own.statusCode).toBe(400);
        expect(own.json().error.message).toContain('your own role');
        expect((await admin.get('/api/auth/session')).json().role).toBe('superuser');

        const missing = await admin.postJson('/admin/users/987654/role', { role: 'admin' });
        expect(missing.statusCode).toBe(404);
      });
    });
  });
}
