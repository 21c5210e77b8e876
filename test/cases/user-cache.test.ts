/**
 * Validation keeps user rows in memory on Redis (users/user-versions.ts): a role change or a
 * disable made through one instance must still show on the very next request to another
 * instance that has the old row cached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, makeApp, secondInstance, storeKindsToRun, type TestApp } from '../support/app.js';

const fleet = (await storeKindsToRun()).find((k) => k.kind === 'redis+postgres');
const skip = !fleet || fleet.skip !== null;

describe.skipIf(skip)('user changes reach every instance on the next request', () => {
  let t: TestApp;
  let b: TestApp['app'];

  beforeAll(async () => {
    t = await makeApp('redis+postgres');
    b = await secondInstance(t);
    await t.createUser('root@example.com', 'superuser');
  });

  afterAll(async () => {
    await t?.close();
  });

  it('should refuse the console to a superuser demoted on another instance, at once', async () => {
    const who = await t.createUser('demoted@example.com', 'superuser');
    const onB = new Client(b);
    await onB.login('demoted@example.com');
    // Twice, so B has the row cached.
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);

    const root = new Client(t.app);
    await root.login('root@example.com');
    const res = await root.postJson(`/admin/users/${who.id}/role`, { role: 'user' });
    expect(res.statusCode).toBe(200);

    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(403);
    const me = await onB.get('/api/auth/session', 'json');
    expect(me.json().role).toBe('user');
  });

  it('should answer 401 on another instance right after a disable', async () => {
    const who = await t.createUser('gone@example.com');
    const onB = new Client(b);
    await onB.login('gone@example.com');
    expect((await onB.get('/api/auth/session', 'json')).statusCode).toBe(200);
    expect((await onB.get('/api/auth/session', 'json')).statusCode).toBe(200);

    const root = new Client(t.app);
    await root.login('root@example.com');
    expect((await root.postJson(`/admin/users/${who.id}/disable`)).statusCode).toBe(200);

    expect((await onB.get('/api/auth/session', 'json')).statusCode).toBe(401);
  });

  it('should see a change written straight through the repo of another process', async () => {
    // As `warden create-superuser` does from the CLI: the repo raises the shared counter.
    const who = await t.createUser('promoted@example.com', 'user');
    const onB = new Client(b);
    await onB.login('promoted@example.com');
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(403);

    await t.app.warden.users.repo.setRole(who.id, 'superuser', Date.now());
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);
  });
});
