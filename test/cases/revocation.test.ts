/**
 * Cases C17 (first part), C20 and C22 of shared/CASES.md: revocations report exactly
 * what they did, reach every session of a disabled user, and never the wrong scope.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sessionIdOf } from '../../src/sessions/tokens.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();

async function auditRows(t: TestApp, action: string) {
  const rows = await t.database.db
    .selectFrom('audit_log')
    .selectAll()
    .where('action', '=', action)
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details) }));
}

describe.each(kinds)('revocation on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C17: a bulk revoke of 3 live, 1 revoked and 1 unknown id says exactly that',
    async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.test', 'superuser');
      await t.createUser('c17@example.test');
      const admin = t.client();
      await admin.login('root@example.test');
      const live = [];
      for (let i = 0; i < 4; i++)
        live.push((await t.client().login('c17@example.test')).session.id);
      const [alreadyRevoked, ...three] = live;
      expect((await admin.postJson(`/admin/sessions/revoke/${alreadyRevoked}`)).statusCode).toBe(
        200,
      );
      const unknown = sessionIdOf('never issued');

      const res = await admin.postForm('/admin/sessions/bulk-revoke', {
        ids: [...three, alreadyRevoked, unknown],
        return_to: '/admin/sessions?email=c17',
      });
      expect(res.statusCode).toBe(303);
      const page = await admin.get(res.headers.location as string, 'html');
      expect(page.body).toContain('3 revoked, 1 already ended, 1 not found.');

      const [row] = await auditRows(t, 'sessions.bulk_revoke');
      expect(row.outcome).toBe('success');
      expect(row.details.counts).toMatchObject({ revoked: 3, already_ended: 1, not_found: 1 });
      expect([...row.details.revoked].sort()).toEqual([...three].sort());
    },
  );

  it.skipIf(skip)('C20: disabling a user signs out both of their browsers at once', async () => {
    t = await makeApp(kind);
    await t.createUser('root@example.test', 'superuser');
    const user = await t.createUser('c20@example.test');
    const admin = t.client();
    await admin.login('root@example.test');
    const jar1 = t.client();
    const jar2 = t.client();
    await jar1.login('c20@example.test');
    await jar2.login('c20@example.test');

    const res = await admin.postJson(`/admin/users/${user.id}/disable`);
    expect(res.statusCode).toBe(200);
    expect(res.json().sessionsEnded).toBe(2);

    expect((await jar1.get('/api/auth/session')).statusCode).toBe(401);
    expect((await jar2.get('/api/auth/session')).statusCode).toBe(401);
    const listed = await admin.get('/admin/sessions?email=c20@example.test&status=active', 'json');
    expect(listed.json().total).toBe(0);
    const [row] = await auditRows(t, 'users.disable');
    expect(row.details.counts).toEqual({ sessionsEnded: 2 });
    // A disabled account cannot sign back in either.
    const again = await t.client().postJson('/api/auth/login', {
      email: 'c20@example.test',
      password: 'correct horse battery',
    });
    expect(again.statusCode).toBe(403);
    expect(again.json().error.code).toBe('WARDEN_AUTH_NOT_APPROVED');
  });

  it.skipIf(skip)(
    'C22: each revocation ends exactly its scope and spares the acting superuser',
    async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.test', 'superuser');
      const user = await t.createUser('c22@example.test');
      const admin = t.client();
      const own = (await admin.login('root@example.test')).session.id;
      const f1 = t.client();
      const f2 = t.client();
      const id1 = (await f1.login('c22@example.test')).session.id;
      await f2.login('c22@example.test');

      await admin.postJson(`/admin/sessions/revoke/${id1}`);
      expect((await f1.get('/api/auth/session')).statusCode).toBe(401);
      expect((await f2.get('/api/auth/session')).statusCode).toBe(200);

      const f3 = t.client();
      await f3.login('c22@example.test');
      const all = await admin.postJson(`/admin/sessions/revoke-user/${user.id}`);
      expect(all.json().counts.revoked).toBe(2);
      expect((await f2.get('/api/auth/session')).statusCode).toBe(401);
      expect((await f3.get('/api/auth/session')).statusCode).toBe(401);
      expect((await admin.get('/api/auth/session')).statusCode).toBe(200);

      // Every session matches an empty filter, the superuser's own included.
      const f4 = t.client();
      await f4.login('c22@example.test');
      const count = (await admin.get('/admin/sessions/revoke-matching', 'json')).json().total;
      expect(count).toBe(2);
      const matching = await admin.postJson('/admin/sessions/revoke-matching', { confirm: count });
      expect(matching.json().counts).toMatchObject({ revoked: 1, kept_own: 1 });
      expect(matching.json().results).toContainEqual(
        expect.objectContaining({ id: own, status: 'kept_own' }),
      );
      expect((await admin.get('/api/auth/session')).statusCode).toBe(200);
      expect((await f4.get('/api/auth/session')).statusCode).toBe(401);

      const confirmed = await admin.postJson('/admin/sessions/revoke-matching', {
        confirm: 1,
        include_own: true,
      });
      expect(confirmed.json().counts.revoked).toBe(1);
      expect((await admin.get('/api/auth/session')).statusCode).toBe(401);
    },
  );
});
