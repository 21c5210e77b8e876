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
  DAY,
  HOUR,
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
        expect(res.json()).toEqual({ total: 6, page: 2, perPage: 50, items: [] });
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
        // The page offers it as what it is, an approval, and asks first.
        const page = await admin.get(
          `/admin/users?email=${encodeURIComponent(user.email)}`,
          'html',
        );
        expect(page.body).toMatch(
          new RegExp(
            `action="/admin/users/${user.id}/enable"[\\s\\S]*?data-confirm="Approve [^"]*who was rejected\\?[^"]*">Approve</button>`,
          ),
        );

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
        await t.settled();
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

      it('should end the sessions left of a user disabled already, as a retry after a store outage needs', async () => {
        // A disable changes the status first; a session store away then fails it (503) with the
        // sessions still stored, and sending it again must end them.
        const user = await newUser('disabled');
        const left = await plantSession(t, user.id);

        const res = await admin.postForm(`/admin/users/${user.id}/disable`, {
          return_to: '/admin/users',
        });
        expect(await toastAfter(admin, res)).toBe(
          `${user.email} was already disabled; 1 session ended.`,
        );
        expect((await listJson(admin, `?email=${user.email}`)).total).toBe(0);
        expect(await whoamiStatus(clientWith(t, left))).toBe(401);
        const audit = await lastAudit(t, 'users.disable');
        expect(audit).toMatchObject({ outcome: 'success', target: `user:${user.id}` });
        expect(audit.details).toMatchObject({
          from: 'disabled',
          to: 'disabled',
          counts: { sessionsEnded: 1 },
        });
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
      ] as const)(
        'should refuse to %s a user who is %s, changing nothing',
        async (action, from) => {
          const user = await newUser(from);
          const res = await admin.postJson(`/admin/users/${user.id}/${action}`);
          expect(res.statusCode).toBe(400);
          expect(res.json().error.code).toBe('WARDEN_VALIDATION');
          expect(res.json().error.message).toContain(`cannot ${action} a user who is ${from}`);
          // As every refusal names what it refuses: here the user the address names.
          expect(res.json().error.details).toEqual({ field: 'userId', where: 'params' });
          const after = await admin.get(`/admin/users?email=${user.email}`, 'json');
          expect(after.json().items[0].status).toBe(from);
          // The refused attempt is on record.
          const audit = await lastAudit(t, `users.${action}`);
          expect(audit).toMatchObject({ outcome: 'refused', target: `user:${user.id}` });
          expect(audit.details).toMatchObject({ reason: `cannot ${action} a user who is ${from}` });
        },
      );

      it('should refuse a superuser changing their own status', async () => {
        const res = await admin.postJson(`/admin/users/${bossId}/disable`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.message).toContain('your own status');
        expect(await whoamiStatus(admin)).toBe(200);
        expect(await lastAudit(t, 'users.disable')).toMatchObject({
          outcome: 'refused',
          target: `user:${bossId}`,
        });
      });

      it('should answer 404 for a user who does not exist and 400 for a malformed id', async () => {
        for (const action of ['approve', 'reject', 'disable', 'enable']) {
          const missing = await admin.postJson(`/admin/users/987654/${action}`);
          expect(missing.statusCode, action).toBe(404);
          expect(missing.json().error.code).toBe('WARDEN_NOT_FOUND');
          // On record as a change tried on someone who is not there, as revoke-user's is.
          expect(await lastAudit(t, `users.${action}`), action).toMatchObject({
            outcome: 'failure',
            target: 'user:987654',
            details: { code: 'WARDEN_NOT_FOUND' },
          });

          const bad = await admin.postJson(`/admin/users/abc/${action}`);
          expect(bad.statusCode, action).toBe(400);
          expect(bad.json().error.details.field).toBe('userId');
          expect(await lastAudit(t, `users.${action}`), action).toMatchObject({
            outcome: 'refused',
            target: 'user:abc',
          });
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

      it('should change nothing, and say so, when the user has that role already', async () => {
        const user = await newUser();
        const before = await t.database.db
          .selectFrom('users')
          .select('updated_at')
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow();
        const same = await admin.postForm(`/admin/users/${user.id}/role`, {
          role: 'user',
          return_to: '/admin/users',
        });
        expect(await toastAfter(admin, same)).toBe(
          `${user.email} already has the role user: nothing changed.`,
        );
        const json = await admin.postJson(`/admin/users/${user.id}/role`, { role: 'user' });
        expect(json.json()).toMatchObject({ user: { role: 'user' }, unchanged: true });
        const after = await t.database.db
          .selectFrom('users')
          .select('updated_at')
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow();
        expect(after.updated_at).toBe(before.updated_at);
        expect(await lastAudit(t, 'users.set_role')).toMatchObject({
          outcome: 'success',
          details: { from: 'user', to: 'user', unchanged: true },
        });
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
        expect(await lastAudit(t, 'users.set_role')).toMatchObject({ outcome: 'refused' });

        const missing = await admin.postJson('/admin/users/987654/role', { role: 'admin' });
        expect(missing.statusCode).toBe(404);
        expect(await lastAudit(t, 'users.set_role')).toMatchObject({
          outcome: 'failure',
          target: 'user:987654',
        });
      });
    });

    describe('registered between dates, pages', () => {
      it('should filter by registration days (UTC, both ends included) with the other filters', async () => {
        const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
        const seeded: Record<string, number> = {};
        for (const [name, at, role] of [
          ['early', day('2025-01-31') + DAY - 1, 'user'],
          ['first', day('2025-02-01'), 'user'],
          ['middle', day('2025-02-14') + 12 * HOUR, 'admin'],
          ['last', day('2025-02-28') + DAY - 1, 'user'],
          ['late', day('2025-03-01'), 'user'],
        ] as const) {
          const u = await t.createUser(`${name}@dates.test`, role);
          await t.database.db
            .updateTable('users')
            .set({ created_at: at })
            .where('id', '=', u.id)
            .execute();
          seeded[name] = u.id;
        }
        const idsOf = async (search: string) => {
          const res = await admin.get(`/admin/users?email=@dates.test${search}`, 'json');
          expect(res.statusCode, search).toBe(200);
          return (res.json().items as PublicUserJson[]).map((u) => u.id).sort();
        };
        const want = (...names: string[]) => names.map((n) => seeded[n]).sort();

        expect(await idsOf('&from=2025-02-01&to=2025-02-28')).toEqual(
          want('first', 'middle', 'last'),
        );
        expect(await idsOf('&from=2025-02-01')).toEqual(want('first', 'middle', 'last', 'late'));
        expect(await idsOf('&to=2025-01-31')).toEqual(want('early'));
        expect(await idsOf('&from=2025-02-14&to=2025-02-14')).toEqual(want('middle'));
        expect(await idsOf('&from=2025-02-01&to=2025-02-28&role=user')).toEqual(
          want('first', 'last'),
        );

        const page = await admin.get(
          '/admin/users?email=@dates.test&from=2025-02-01&to=2025-02-28',
        );
        expect(page.body).toContain('<span class="fs-5" id="user-count">3 matching');
        expect(page.body).toContain('value="2025-02-01"');
        expect(page.body).toContain('value="2025-02-28"');
      });

      it('should page through users with per_page, newest first, each once', async () => {
        const first = await admin.get('/admin/users?per_page=4', 'json');
        const total = first.json().total as number;
        const seen: number[] = [];
        for (let p = 1; p <= Math.ceil(total / 4); p++) {
          const res = await admin.get(`/admin/users?per_page=4&page=${p}`, 'json');
          expect(res.json()).toMatchObject({ total, page: p, perPage: 4 });
          seen.push(...(res.json().items as PublicUserJson[]).map((u) => u.id));
        }
        expect(seen).toHaveLength(total);
        expect(new Set(seen).size).toBe(total);

        const html = await admin.get('/admin/users?per_page=4&page=2');
        expect(html.body).toContain(`Page 2 of ${Math.ceil(total / 4)}`);
        expect(html.body).toContain('href="/admin/users?page=3&amp;per_page=4"');
      });

      it.each([
        ['from', '2025-02-30'],
        ['to', '2025-13-01'],
        ['to', 'tomorrow'],
        ['per_page', '201'],
        ['per_page', '0'],
      ])('should refuse %s=%s with 400 naming the field', async (field, value) => {
        const res = await admin.get(`/admin/users?${field}=${value}`, 'json');
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
      });

      it('should refuse a range that ends before it starts', async () => {
        const res = await admin.get('/admin/users?from=2025-03-02&to=2025-03-01', 'json');
        expect(res.statusCode).toBe(400);
        expect(res.json().error.details.field).toBe('from');
      });
    });

    describe('POST /admin/users/bulk-approve and bulk-reject', () => {
      it('should approve exactly the pending ones and say what became of every id', async () => {
        const pending = [
          await newUser('pending'),
          await newUser('pending'),
          await newUser('pending'),
        ];
        const approved = await newUser('approved');
        const ids = [...pending.map((u) => u.id), approved.id, 987_654, bossId, pending[0].id];

        const res = await admin.postJson('/admin/users/bulk-approve', { ids });
        expect(res.statusCode).toBe(200);
        expect(res.json().counts).toEqual({
          approved: 3,
          not_pending: 1,
          not_found: 1,
          kept_own: 1,
        });
        expect(res.json().results).toEqual([
          ...pending.map((u) => ({ id: u.id, status: 'approved' })),
          { id: approved.id, status: 'not_pending' },
          { id: 987_654, status: 'not_found' },
          { id: bossId, status: 'kept_own' },
        ]);
        for (const u of pending) {
          const row = await t.database.db
            .selectFrom('users')
            .selectAll()
            .where('id', '=', u.id)
            .executeTakeFirstOrThrow();
          expect(row).toMatchObject({ status: 'approved', approved_by: bossId });
          expect(row.approved_at).toBeGreaterThan(u.created_at - 1);
          expect(row.decided_at).toBe(row.approved_at);
          expect((await loginStatus(u.email)).status).toBe(200);
        }

        const audit = await lastAudit(t, 'users.bulk_approve');
        expect(audit).toMatchObject({ actor_id: bossId, outcome: 'success' });
        expect(audit.details).toMatchObject({
          counts: { approved: 3, not_pending: 1, not_found: 1, kept_own: 1 },
          asked: 6,
        });
        expect((audit.details.approved as number[]).sort()).toEqual(
          pending.map((u) => u.id).sort(),
        );

        // Again: nothing is pending any more, and nothing is approved twice.
        const again = await admin.postJson('/admin/users/bulk-approve', { ids });
        expect(again.json().counts).toEqual({
          approved: 0,
          not_pending: 4,
          not_found: 1,
          kept_own: 1,
        });
      });

      it('should reject the checked users of a form and come back with a toast', async () => {
        const a = await newUser('pending');
        const b = await newUser('pending');
        const c = await newUser('approved');
        const back = '/admin/users?status=pending';
        const res = await admin.postForm('/admin/users/bulk-reject', {
          ids: [String(a.id), String(b.id), String(c.id)],
          return_to: back,
        });
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe('2 rejected, 1 not pending (left as they were).');
        const rows = await t.database.db
          .selectFrom('users')
          .select(['id', 'status', 'rejected_at', 'rejected_by', 'decided_at'])
          .where('id', 'in', [a.id, b.id, c.id])
          .orderBy('id')
          .execute();
        expect(rows.map((r) => r.status)).toEqual(['rejected', 'rejected', 'approved']);
        for (const r of rows.slice(0, 2)) {
          expect(r.rejected_by).toBe(bossId);
          expect(r.rejected_at).toBe(r.decided_at);
        }
        expect((await loginStatus(a.email)).status).toBe(403);
        expect((await lastAudit(t, 'users.bulk_reject')).details).toMatchObject({
          counts: { rejected: 2, not_pending: 1 },
        });

        // One box checked sends one value, not a list.
        const d = await newUser('pending');
        const one = await admin.postForm('/admin/users/bulk-reject', { ids: String(d.id) });
        expect(await toastAfter(admin, one)).toBe('1 rejected.');
      });

      it('should refuse no ids, too many ids, a malformed id and a missing CSRF token', async () => {
        const user = await newUser('pending');
        const none = await admin.postJson('/admin/users/bulk-approve', { ids: [] });
        expect(none.statusCode).toBe(400);
        expect(none.json().error.details.field).toBe('ids');
        // The form sent without the page's script: back to the page, filters kept, saying so.
        const noneForm = await admin.postForm('/admin/users/bulk-approve', {
          return_to: '/admin/users?status=pending&role=admin',
        });
        expect(noneForm.statusCode).toBe(303);
        expect(noneForm.headers.location).toBe('/admin/users?status=pending&role=admin');
        const page = await admin.get(noneForm.headers.location as string, 'html');
        expect(page.body).toContain('Select at least one user first.');

        const many = Array.from({ length: t.config.bulkRevokeMax + 1 }, (_, i) => i + 1);
        const tooMany = await admin.postJson('/admin/users/bulk-approve', { ids: many });
        expect(tooMany.statusCode).toBe(400);
        expect(tooMany.json().error.code).toBe('WARDEN_BULK_TOO_MANY');
        // Refused in the handler, after the schema: on record as every refused change is.
        expect(await lastAudit(t, 'users.bulk_approve')).toMatchObject({ outcome: 'refused' });

        const bad = await admin.postJson('/admin/users/bulk-approve', { ids: [user.id, 'abc'] });
        expect(bad.statusCode).toBe(400);
        expect(bad.json().error.details.field).toBe('ids.1');

        const forged = await admin.postJson(
          '/admin/users/bulk-approve',
          { ids: [user.id] },
          { csrf: null },
        );
        expect(forged.statusCode).toBe(403);
        expect(forged.json().error.code).toBe('WARDEN_CSRF_INVALID');
        const after = await admin.get(`/admin/users?email=${user.email}`, 'json');
        expect(after.json().items[0].status).toBe('pending');
      });

      it('should refuse bulk decisions and user pages to anyone but a superuser', async () => {
        const user = await newUser('pending');
        const adminUser = await newUser('approved', 'admin');
        const member = (await signedIn(t, adminUser.email)).client;
        for (const decision of ['approve', 'reject']) {
          const res = await member.postJson(`/admin/users/bulk-${decision}`, { ids: [user.id] });
          expect(res.statusCode, decision).toBe(403);
          expect(res.json().error.code).toBe('WARDEN_FORBIDDEN');
          const anon = await t.client().postJson(`/admin/users/bulk-${decision}`, {
            ids: [user.id],
          });
          expect(anon.statusCode, decision).toBe(401);
        }
        expect((await member.get(`/admin/users/${user.id}`, 'json')).statusCode).toBe(403);
        const after = await admin.get(`/admin/users/${user.id}`, 'json');
        expect(after.json().user.status).toBe('pending');
      });

      it('should offer a checkbox for pending users only, tied to the bulk form', async () => {
        const p = await newUser('pending');
        const a = await newUser('approved');
        const page = await admin.get('/admin/users');
        expect(page.body).toContain(`name="ids" value="${p.id}" form="users-bulk"`);
        expect(page.body).not.toContain(`name="ids" value="${a.id}"`);
        expect(page.body).toContain(
          '<form method="post" action="/admin/users/bulk-approve" id="users-bulk"',
        );
        expect(page.body).toContain('formaction="/admin/users/bulk-reject"');
      });
    });

    describe('decision times', () => {
      it('should keep the first approval when a disabled user is enabled again', async () => {
        const user = await newUser('pending');
        const approved = (await admin.postJson(`/admin/users/${user.id}/approve`)).json().user;
        await admin.postJson(`/admin/users/${user.id}/disable`);
        const enabled = (await admin.postJson(`/admin/users/${user.id}/enable`)).json().user;
        expect(enabled.status).toBe('approved');
        expect(enabled.approved_at).toBe(approved.approved_at);
        expect(enabled.decided_at).toBe(approved.approved_at);
      });

      it('should record when and by whom a user was rejected', async () => {
        const user = await newUser('pending');
        const rejected = (await admin.postJson(`/admin/users/${user.id}/reject`)).json().user;
        expect(rejected).toMatchObject({
          status: 'rejected',
          rejected_by: bossId,
          approved_at: null,
        });
        expect(rejected.rejected_at).toBe(rejected.decided_at);
        const enabled = (await admin.postJson(`/admin/users/${user.id}/enable`)).json().user;
        // Enabling a rejected account approves it now; it left pending when it was rejected.
        expect(enabled.approved_at).toBeGreaterThanOrEqual(rejected.rejected_at);
        expect(enabled.decided_at).toBe(rejected.rejected_at);
      });
    });
  });
}
