/**
 * Case C04 of shared/CASES.md: the cookie's lifetime follows the session's, no Redis key
 * is ever left without a TTL, and status comes from the stored deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sessionIdOf } from '../../src/sessions/tokens.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sessionCookie(setCookie: string | string[] | undefined): string | undefined {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  return all.find((c) => c.startsWith('warden_session='));
}

function maxAge(cookie: string | undefined): number {
  const m = cookie ? /Max-Age=(\d+)/i.exec(cookie) : null;
  if (!m) throw new Error(`no Max-Age in ${cookie}`);
  return Number(m[1]);
}

describe.each(kinds)('C04 lifetimes on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C04: the cookie Max-Age matches the remaining lifetime and moves when it slides',
    async () => {
      t = await makeApp(kind, {
        env: { IDLE_TIMEOUT: '10s', ABSOLUTE_LIFETIME: '30s', TOUCH_INTERVAL: '1s' },
      });
      await t.createUser('c04@example.test');
      const c = t.client();
      const csrf = await c.csrf();
      const login = await c.request({
        method: 'POST',
        url: '/api/auth/login',
        json: { email: 'c04@example.test', password: 'correct horse battery' },
        headers: { 'x-csrf-token': csrf },
      });
      const cookie = sessionCookie(login.headers['set-cookie']);
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      expect(cookie).toMatch(/Path=\//);
      const first = login.json().session.expiresAt as number;
      expect(Math.abs(maxAge(cookie) - (first - Date.now()) / 1000)).toBeLessThanOrEqual(2);

      await sleep(1_200);
      const slid = await c.get('/api/auth/session');
      const moved = slid.json().session.expiresAt as number;
      expect(moved).toBeGreaterThan(first);
      const cookie2 = sessionCookie(slid.headers['set-cookie']);
      expect(Math.abs(maxAge(cookie2) - (moved - Date.now()) / 1000)).toBeLessThanOrEqual(2);
    },
  );

  it.skipIf(skip)('C04: after every kind of answer, every Redis key has a TTL', async () => {
    t = await makeApp(kind, { env: { TOUCH_INTERVAL: '1ms' } });
    await t.createUser('root@example.test', 'superuser');
    await t.createUser('c04@example.test');
    const c = t.client();
    await c.login('c04@example.test');
    const admin = t.client();
    await admin.login('root@example.test');

    const css = await c.get('/static/warden.css');
    const answers = [
      (await c.get('/api/auth/session')).statusCode,
      (
        await c.request({
          method: 'GET',
          url: '/static/warden.css',
          headers: { 'if-none-match': css.headers.etag as string },
        })
      ).statusCode,
      (await c.get('/no/such/page', 'html')).statusCode,
      (await c.get('/login', 'html')).statusCode,
      (await c.postJson('/api/auth/logout', {}, { csrf: 'forged' })).statusCode,
      (await admin.postJson('/admin/sessions/cleanup-expired')).statusCode,
      (await c.get('/admin/sessions', 'html')).statusCode,
    ];
    expect(answers).toEqual([200, 304, 404, 303, 403, 200, 403]);

    if (t.redis && t.prefix) {
      let keys = 0;
      for await (const batch of t.redis.scanIterator({ MATCH: `${t.prefix}*`, COUNT: 1000 })) {
        for (const key of batch) {
          keys++;
          expect(await t.redis.pTTL(key), key).toBeGreaterThan(0);
        }
      }
      expect(keys).toBeGreaterThan(0);
    }
  });

  it.skipIf(skip)(
    'C04: a session past its deadline is listed expired while it is still stored',
    async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.test', 'superuser');
      const user = await t.createUser('c04@example.test');
      const admin = t.client();
      await admin.login('root@example.test');
      const now = Date.now();
      const idle = sessionIdOf('idle one');
      const absolute = sessionIdOf('absolute one');
      const base = { userId: user.id, ip: '192.0.2.4', userAgent: 'curl/8' };
      await t.store.create({
        ...base,
        id: idle,
        createdAt: now - 3_600_000,
        lastSeenAt: now - 3_600_000,
        idleExpiresAt: now - 1_000,
        absoluteExpiresAt: now + 3_600_000,
      });
      await t.store.create({
        ...base,
        id: absolute,
        createdAt: now - 50_000_000,
        lastSeenAt: now - 5_000,
        idleExpiresAt: now + 600_000,
        absoluteExpiresAt: now - 1_000,
      });

      const expired = await admin.get('/admin/sessions?email=c04&status=expired', 'json');
      expect(
        expired
          .json()
          .items.map((i: { id: string }) => i.id)
          .sort(),
      ).toEqual([idle, absolute].sort());
      const active = await admin.get('/admin/sessions?email=c04&status=active', 'json');
      expect(active.json().total).toBe(0);
      expect(await t.store.get(idle)).not.toBeNull();
    },
  );
});
