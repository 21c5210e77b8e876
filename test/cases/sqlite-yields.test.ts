/**
 * On SQLite the database runs in Warden's own thread and answers synchronously, so a loop of
 * store calls could run chunk after chunk without ever letting a request in: the bench saw a
 * sign-in wait 27 s behind a revoke-matching and validation go silent during a cleanup. Bulk
 * work must leave room between its chunks for the requests that arrive meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantSession } from '../routes/helpers.js';
import { Client, makeApp, type TestApp } from '../support/app.js';

const SESSIONS = 3_000;

describe('bulk work on SQLite leaves room for requests', () => {
  let t: TestApp;
  let ids: string[];
  let user: Client;

  beforeAll(async () => {
    t = await makeApp('sqlite');
    const owner = await t.createUser('many@example.com');
    ids = [];
    for (let i = 0; i < SESSIONS; i++) ids.push((await plantSession(t, owner.id)).id);
    for (let i = 0; i < SESSIONS; i++) await plantSession(t, owner.id, { expired: true });
    await t.createUser('bystander@example.com');
    user = new Client(t.app);
    await user.login('bystander@example.com');
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  /** Runs `bulk` and, once it has started, a validation; says which finished first. */
  async function race(bulk: () => Promise<unknown>): Promise<string[]> {
    const order: string[] = [];
    const work = bulk().then(() => order.push('bulk'));
    // The bulk work has run its first chunk by the time this timer fires.
    await new Promise((resolve) => setImmediate(resolve));
    const check = user.get('/api/auth/session', 'json').then((res) => {
      expect(res.statusCode).toBe(200);
      order.push('validation');
    });
    await Promise.all([work, check]);
    return order;
  }

  // First, while the table holds every planted row: the walk reads them all.
  it('should answer a validation while the check for unreadable rows reads thousands', async () => {
    const order = await race(() => t.app.warden.sessions.cleanupUnreadable());
    expect(order).toEqual(['validation', 'bulk']);
  });

  it('should answer a validation while a revocation of thousands runs', async () => {
    const order = await race(() => t.app.warden.sessions.revokeIds(ids, { actorId: null }));
    expect(order).toEqual(['validation', 'bulk']);
  });

  it('should answer a validation while a cleanup of thousands runs', async () => {
    const order = await race(() => t.app.warden.sessions.cleanupExpired(Date.now(), null));
    expect(order).toEqual(['validation', 'bulk']);
  });
});
