/**
 * A console change the session store cannot serve answers 503 before its route writes the
 * audit row it writes of every other outcome: the audit log lists the attempt all the same
 * (README: "every console action, and every refused attempt").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/cookies.js';
import { StoreUnavailableError } from '../../src/resilience/guarded-store.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { type Client, makeApp, type TestApp } from '../support/app.js';
import { auditRows, plantSession, signedIn, toastAfter } from './helpers.js';

/**
 * The store, with every read a console change starts with failing while `down.now` is set, and
 * the read of a session a sign-in check makes while `down.reads` is (a session known in memory
 * is still answered from there); with `down.takesLeft` set, a revocation of a user's sessions
 * fails after that many chunks, as a store going away part-way does.
 */
function failing(inner: SessionStore, down: Down): SessionStore {
  const ops = new Set([
    'list',
    'listIds',
    'userSessionIds',
    'takeExpired',
    'takeMany',
    'takeOfUser',
    'repairIndexes',
  ]);
  const takeFails = () => {
    if (down.takesLeft === null) return false;
    if (down.takesLeft === 0) return true;
    down.takesLeft -= 1;
    return false;
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fails = () =>
        prop === 'get'
          ? down.reads
          : (down.now && ops.has(String(prop))) || (prop === 'takeOfUser' && takeFails());
      if (prop !== 'get' && !ops.has(String(prop))) return value.bind(target);
      return (...args: unknown[]) =>
        fails()
          ? Promise.reject(new StoreUnavailableError(String(prop), new Error('no answer')))
          : value.apply(target, args);
    },
  });
}

interface Down {
  now: boolean;
  reads: boolean;
  takesLeft: number | null;
}

describe('audit rows of console changes the store could not serve', () => {
  let t: TestApp;
  let admin: Client;
  let userId: number;
  const down: Down = { now: false, reads: false, takesLeft: null };

  beforeAll(async () => {
    t = await makeApp('sqlite', { wrapStore: (s) => failing(s, down) });
    await t.createUser('root@example.test', 'superuser');
    userId = (await t.createUser('ada@example.test')).id;
    ({ client: admin } = await signedIn(t, 'root@example.test'));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should answer 503 and still audit a failed revoke-matching, revoke-user and cleanup', async () => {
    down.now = true;
    try {
      const matching = await admin.postJson('/admin/sessions/revoke-matching?role=user', {
        confirm: 1,
      });
      const user = await admin.postJson(`/admin/sessions/revoke-user/${userId}`, {});
      const cleanup = await admin.postJson('/admin/sessions/cleanup-expired', {});
      for (const res of [matching, user, cleanup]) expect(res.statusCode).toBe(503);
    } finally {
      down.now = false;
    }
    const [m] = await auditRows(t, 'sessions.revoke_matching');
    expect(m).toMatchObject({ outcome: 'failure', target: 'role=user' });
    expect(m!.details).toMatchObject({ code: 'WARDEN_STORE_UNAVAILABLE' });
    const [u] = await auditRows(t, 'sessions.revoke_user');
    expect(u).toMatchObject({ outcome: 'failure', target: `user:${userId}` });
    const [c] = await auditRows(t, 'sessions.cleanup_expired');
    expect(c).toMatchObject({ outcome: 'failure', target: null });

    // Served again, the same change writes its one row of its own, not a second failure.
    const again = await admin.postJson(`/admin/sessions/revoke-user/${userId}`, {});
    expect(again.statusCode).toBe(200);
    const rows = await auditRows(t, 'sessions.revoke_user');
    expect(rows.map((r) => r.outcome)).toEqual(['failure', 'success']);
  });

  it('should say which sessions a disable the store stopped part-way did not end, and end them when sent again', async () => {
    const victim = await t.createUser('many-sessions@example.test');
    for (let i = 0; i < 300; i++) await plantSession(t, victim.id);
    // The first chunk (250 on SQLite) is taken, then the store goes away.
    down.takesLeft = 1;
    let first: Awaited<ReturnType<typeof admin.postJson>>;
    try {
      first = await admin.postJson(`/admin/users/${victim.id}/disable`, {});
    } finally {
      down.takesLeft = null;
    }
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      user: { status: 'disabled' },
      sessionsEnded: 250,
      sessionsNotEnded: 50,
      alreadyDisabled: false,
    });
    const [row] = await auditRows(t, 'users.disable');
    expect(row).toMatchObject({ outcome: 'partial' });
    expect(row!.details.counts).toEqual({ sessionsEnded: 250, sessionsNotEnded: 50 });

    const form = await admin.postForm(`/admin/users/${victim.id}/disable`, {
      return_to: '/admin/users',
    });
    expect(await toastAfter(admin, form)).toBe(
      `${victim.email} was already disabled; 50 sessions ended.`,
    );
    const rows = await auditRows(t, 'users.disable');
    expect(rows.map((r) => r.outcome)).toEqual(['partial', 'success']);
  });

  it('should write one failure row for an index repair the store could not serve', async () => {
    // The repair audits its own failures; the console's 503 row must not be a second one.
    down.now = true;
    try {
      const res = await admin.postJson('/admin/sessions/stats/repair', {});
      expect(res.statusCode).toBe(503);
    } finally {
      down.now = false;
    }
    const rows = await auditRows(t, 'sessions.repair_indexes');
    expect(rows.map((r) => r.outcome)).toEqual(['failure']);
    expect(rows[0]!.details).toMatchObject({ code: 'WARDEN_STORE_UNAVAILABLE' });
  });

  it('should know the audit action of every console change, so a new one cannot go unlisted', () => {
    const changes = t.app.routeTable.filter(
      (r) => r.url.startsWith('/admin/') && !['GET', 'HEAD'].includes(r.method),
    );
    expect(changes.length).toBeGreaterThan(10);
    expect(changes.filter((r) => r.auditAction === undefined)).toEqual([]);
  });

  it('should write no row when the sign-in check itself could not be made: nobody is known', async () => {
    const before = (await t.database.db.selectFrom('audit_log').selectAll().execute()).length;
    down.reads = true;
    try {
      // A made-up token of the right shape: only the store could say it is no session.
      const forged = t.client();
      forged.cookies.set(SESSION_COOKIE, 'A'.repeat(43));
      const res = await forged.postJson('/admin/sessions/revoke-matching?email=FORGED', {});
      expect(res.statusCode).toBe(503);
    } finally {
      down.reads = false;
    }
    const after = (await t.database.db.selectFrom('audit_log').selectAll().execute()).length;
    expect(after).toBe(before);
  });

  it('should write no row for a page the store could not serve', async () => {
    const before = (await t.database.db.selectFrom('audit_log').selectAll().execute()).length;
    down.now = true;
    try {
      expect((await admin.get('/admin/sessions')).statusCode).toBe(503);
    } finally {
      down.now = false;
    }
    const after = (await t.database.db.selectFrom('audit_log').selectAll().execute()).length;
    expect(after).toBe(before);
  });
});
