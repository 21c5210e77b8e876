/**
 * Cases C01, C02 and C10 of shared/CASES.md: writes that race a sign-out, a revocation
 * or a redirect, on every store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { type Latency, slowStore } from '../support/slow-store.js';

const kinds = await storeKindsToRun();

/** Every key in the test's Redis prefix that mentions a session id (Redis only). */
async function keysMentioning(t: TestApp, id: string): Promise<string[]> {
  if (!t.redis || !t.prefix) return [];
  const found: string[] = [];
  for await (const keys of t.redis.scanIterator({ MATCH: `${t.prefix}*`, COUNT: 1000 })) {
    for (const key of keys) {
      if (key.includes(id)) found.push(key);
      const type = await t.redis.type(key);
      if (type === 'zset' && (await t.redis.zScore(key, id)) !== null) found.push(`${key} (index)`);
    }
  }
  return found;
}

async function assertGone(t: TestApp, client: Client, id: string, store: SessionStore) {
  expect((await client.get('/api/auth/session')).statusCode).toBe(401);
  expect(await store.get(id)).toBeNull();
  expect(await keysMentioning(t, id)).toEqual([]);
}

describe.each(kinds)('races on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C01: a slow request never brings back a session signed out meanwhile, 50 of 50',
    async () => {
      const delayedOnce = new Set<string>();
      const slowIds = new Set<string>();
      const latency: Latency = {
        delays: {},
        when: (op, args) => {
          const id = args[0] as string;
          if (op !== 'touch' || !slowIds.has(id) || delayedOnce.has(id)) return false;
          delayedOnce.add(id);
          return true;
        },
      };
      t = await makeApp(kind, {
        env: { TOUCH_INTERVAL: '1ms', STORE_TIMEOUT: '10s' },
        wrapStore: (s) => slowStore(s, latency),
      });
      await t.createUser('c01@example.test');

      const clients = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const c = t!.client();
          const { session } = await c.login('c01@example.test');
          return { c, id: session.id, csrf: await c.csrf() };
        }),
      );
      for (const { id } of clients) slowIds.add(id);
      latency.delays.touch = 2_000;

      await Promise.all(
        clients.map(async ({ c, csrf }) => {
          const slow = c.get('/api/auth/session');
          await new Promise((r) => setTimeout(r, 500));
          const out = await c.postJson('/api/auth/logout', {}, { csrf });
          expect(out.statusCode).toBe(200);
          expect(out.json()).toEqual({ signedOut: true });
          expect((await slow).statusCode).toBe(401);
        }),
      );

      latency.delays.touch = 0;
      for (const { c, id } of clients) await assertGone(t, c, id, t.store);
    },
  );

  it.skipIf(skip)('C02: touches in flight never undo a revocation or a revoke-all', async () => {
    const userIds = new Set<string>();
    const latency: Latency = {
      delays: { touch: 300, get: 300 },
      when: (_op, args) => userIds.has(args[0] as string),
    };
    t = await makeApp(kind, {
      env: { TOUCH_INTERVAL: '1ms', STORE_TIMEOUT: '10s' },
      wrapStore: (s) => slowStore(s, latency),
    });
    const user = await t.createUser('c02@example.test');
    await t.createUser('root@example.test', 'superuser');
    const admin = t.client();
    await admin.login('root@example.test');

    for (const mode of ['revoke', 'revoke-all'] as const) {
      const c = t.client();
      const { session } = await c.login('c02@example.test');
      userIds.add(session.id);

      const inFlight = Array.from({ length: 20 }, () => c.get('/api/auth/session'));
      await new Promise((r) => setTimeout(r, 100));
      const url =
        mode === 'revoke'
          ? `/admin/sessions/revoke/${session.id}`
          : `/admin/sessions/revoke-user/${user.id}`;
      const res = await admin.postJson(url, {});
      expect(res.statusCode).toBe(200);
      expect(res.json().counts.revoked).toBe(1);
      await Promise.all(inFlight);

      await assertGone(t, c, session.id, t.store);
      const listed = await admin.get(
        `/admin/sessions?email=c02@example.test&status=active`,
        'json',
      );
      expect(listed.json().total).toBe(0);
    }
  });

  it.skipIf(skip)(
    'C10: the redirect after sign-in and after a revoke never outruns the write',
    async () => {
      const latency: Latency = {
        delays: { create: 200, touch: 200, delete: 200, deleteMany: 200, takeMany: 200 },
      };
      t = await makeApp(kind, {
        env: { STORE_TIMEOUT: '5s' },
        wrapStore: (s) => slowStore(s, latency),
      });
      await t.createUser('c10@example.test');
      await t.createUser('root@example.test', 'superuser');

      for (let round = 0; round < 10; round++) {
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            const c = t!.client();
            const res = await c.postForm('/login', {
              email: 'c10@example.test',
              password: 'correct horse battery',
            });
            expect(res.statusCode).toBe(303);
            const home = await c.get(res.headers.location as string, 'html');
            expect(home.statusCode).toBe(200);
            expect(home.body).toContain('c10@example.test');
          }),
        );
      }

      const admin = t.client();
      await admin.login('root@example.test');
      const victim = t.client();
      const { session } = await victim.login('c10@example.test');
      const revoke = await admin.postForm(`/admin/sessions/revoke/${session.id}`, {
        return_to: '/admin/sessions?email=c10',
      });
      expect(revoke.statusCode).toBe(303);
      expect(revoke.headers.location).toBe('/admin/sessions?email=c10');
      const list = await admin.get(revoke.headers.location as string, 'html');
      expect(list.body).not.toContain(session.id);
    },
  );

  it.skipIf(skip)('C10: a sign-in whose write fails answers an error, not a redirect', async () => {
    t = await makeApp(kind, {
      wrapStore: (s) =>
        new Proxy(s, {
          get(target, prop, receiver) {
            if (prop === 'create') return async () => Promise.reject(new Error('write refused'));
            const value = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
    });
    await t.createUser('c10@example.test');
    const c = t.client();
    const res = await c.postForm('/login', {
      email: 'c10@example.test',
      password: 'correct horse battery',
    });
    expect(res.statusCode).toBe(503);
    expect(res.headers.location).toBeUndefined();
    expect(c.cookies.has('warden_session')).toBe(false);
    expect(res.body).toContain('WARDEN_STORE_UNAVAILABLE');
  });
});
