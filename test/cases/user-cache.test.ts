/**
 * Validation keeps user rows in memory (users/user-versions.ts; on SQLite without Redis, the
 * connection's change counter in db/database.ts): a role change or a disable made through one
 * instance, or by another process on the same file, must still show on the very next request
 * to an instance that has the old row cached.
 */
import SQLite from 'better-sqlite3';
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

    await b.warden.trackedReads?.sync(); // as over HTTP: see the last test
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
    await b.warden.trackedReads?.sync(); // as over HTTP: see the last test

    expect((await onB.get('/api/auth/session', 'json')).statusCode).toBe(401);
  });

  it('should see a change written straight through the repo of another process', async () => {
    // As `warden create-superuser` does from the CLI: the repo raises the shared counter.
    const who = await t.createUser('promoted@example.com', 'user');
    const onB = new Client(b);
    await onB.login('promoted@example.com');
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(403);

    await t.app.warden.users.repo.setRole(who.id, 'superuser', Date.now());
    // Over HTTP, Redis's invalidation is in B's socket before any later request; inject() does
    // not go through a socket, so wait for it the way the network would have.
    await b.warden.trackedReads?.sync();
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);
  });
});

describe('user changes on SQLite without Redis show on the next request', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await makeApp('sqlite');
    await t.createUser('root@example.com', 'superuser');
  });

  afterAll(async () => {
    await t?.close();
  });

  it('should answer 401 right after another process disables the user in the file', async () => {
    const who = await t.createUser('other-process@example.com');
    const me = new Client(t.app);
    await me.login('other-process@example.com');
    // Twice, so the row is cached.
    expect((await me.get('/api/auth/session', 'json')).statusCode).toBe(200);
    expect((await me.get('/api/auth/session', 'json')).statusCode).toBe(200);

    // Another connection to the file, as the CLI or a second server process would write.
    const file = t.config.database.kind === 'sqlite' ? t.config.database.file : '';
    const other = new SQLite(file);
    try {
      other.prepare(`update users set status = 'disabled' where id = ?`).run(who.id);
    } finally {
      other.close();
    }
    // The server reads data_version once per event-loop turn; a request from outside arrives in
    // a later turn than the commit it follows, inject() in the same one unless it waits.
    await new Promise((resolve) => setImmediate(resolve));
    expect((await me.get('/api/auth/session', 'json')).statusCode).toBe(401);
  });

  it('should refuse the console to a superuser demoted through another instance, at once', async () => {
    // Two instances on one connection share its counter, as repos of one process do.
    const b = await secondInstance(t);
    const who = await t.createUser('demoted-sqlite@example.com', 'superuser');
    const onB = new Client(b);
    await onB.login('demoted-sqlite@example.com');
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(200);

    const root = new Client(t.app);
    await root.login('root@example.com');
    expect((await root.postJson(`/admin/users/${who.id}/role`, { role: 'user' })).statusCode).toBe(
      200,
    );
    expect((await onB.get('/admin/sessions', 'json')).statusCode).toBe(403);
  });
});
