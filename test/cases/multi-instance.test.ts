/**
 * Two Warden instances on one Redis and one PostgreSQL, each listening on loopback: a sign-in
 * through instance A appears in the live console of instance B within two seconds, and a
 * revocation on B ends the session for a request to A at once (and tells A's console). When
 * Redis goes away and comes back, the consoles are told both, and changes flow again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedIn, whoamiStatus } from '../routes/helpers.js';
import { listen, SseStream } from '../routes/live-sse.js';
import { Client, makeApp, secondInstance, storeKindsToRun, type TestApp } from '../support/app.js';
import { redisServerAvailable, startOwnRedis } from '../support/redis-server.js';

type SessionFrame = {
  type: string;
  sessionId?: string;
  sessionIds?: string[];
  reason?: string;
  userId?: number;
};
const LIVE_WITHIN_MS = 2_000;

const fleet = (await storeKindsToRun()).find((k) => k.kind === 'redis+postgres');
const skip = !fleet || fleet.skip !== null;

describe.skipIf(skip)('two instances on one Redis and PostgreSQL', () => {
  let t: TestApp;
  let a: TestApp['app'];
  let b: TestApp['app'];
  let urlA: string;
  let urlB: string;
  const streams: SseStream[] = [];

  const stream = async (url: string, c: Client) => {
    const s = await SseStream.open(`${url}/admin/events`, c.cookieHeader());
    expect(s.status).toBe(200);
    streams.push(s);
    await s.next('count');
    return s;
  };

  beforeAll(async () => {
    t = await makeApp('redis+postgres');
    a = t.app;
    b = await secondInstance(t);
    urlA = await listen(a);
    urlB = await listen(b);
    await t.createUser('root@example.com', 'superuser');
    await t.createUser('watcher@example.com', 'superuser');
    await t.createUser('pat@example.com');
    await t.createUser('lee@example.com');
  });

  afterAll(async () => {
    for (const s of streams) s.close();
    await t?.close();
  });

  it('should show a sign-in through A in the console of B within two seconds', async () => {
    const root = new Client(b);
    await root.login('root@example.com');
    const consoleB = await stream(urlB, root);
    const countBefore = (await root.get('/admin/live', 'json')).json().active as number;

    const from = consoleB.frames.length;
    const started = performance.now();
    const pat = new Client(a);
    const login = await pat.login('pat@example.com');
    const frame = await consoleB.next<SessionFrame>(
      'session',
      (d) => d.type === 'signed_in' && d.sessionId === login.session.id,
      { from, timeoutMs: LIVE_WITHIN_MS },
    );
    expect(frame.userId).toBe(login.user.id);
    const count = await consoleB.next<{ active: number }>('count', () => true, {
      from,
      timeoutMs: LIVE_WITHIN_MS,
    });
    expect(count.active).toBe(countBefore + 1);
    expect(performance.now() - started).toBeLessThan(LIVE_WITHIN_MS);

    // B's sessions table lists it (what the console re-reads on that event).
    const page = await root.get('/admin/sessions?email=pat%40example.com', 'json');
    expect(page.json().items.map((i: { id: string }) => i.id)).toEqual([login.session.id]);
  });

  it("should end a session for requests to A at once when B revokes it, and tell A's console", async () => {
    const watcher = new Client(a);
    await watcher.login('watcher@example.com');
    const consoleA = await stream(urlA, watcher);
    const lee = new Client(a);
    const login = await lee.login('lee@example.com');
    expect(await whoamiStatus(lee)).toBe(200);

    const root = new Client(b);
    await root.login('root@example.com');
    const from = consoleA.frames.length;
    const started = performance.now();
    const res = await root.postJson(`/admin/sessions/revoke/${login.session.id}`);
    expect(res.json().counts.revoked).toBe(1);

    // The very next request to A is anonymous: A asks the shared store, never a cache.
    expect(await whoamiStatus(lee)).toBe(401);
    const frame = await consoleA.next<SessionFrame>('session', (d) => d.type === 'revoked', {
      from,
      timeoutMs: LIVE_WITHIN_MS,
    });
    expect(frame).toMatchObject({ sessionIds: [login.session.id], reason: 'revoked' });
    expect(performance.now() - started).toBeLessThan(LIVE_WITHIN_MS);
  });

  it("should cut off A's console of a superuser whose session B revoked", async () => {
    const deputy = await signedIn(t, 'watcher@example.com');
    const consoleA = await stream(urlA, new Client(a, deputy.client.cookies));

    const root = new Client(b);
    await root.login('root@example.com');
    await root.postJson(`/admin/sessions/revoke/${deputy.sessionId}`);
    expect(await consoleA.next('bye', () => true, { timeoutMs: LIVE_WITHIN_MS })).toEqual({
      reason: 'session_ended',
    });
    await consoleA.ended;
  });

  it("should tell A's console of every session B ended by disabling their user", async () => {
    const watcher = new Client(a);
    await watcher.login('watcher@example.com');
    const consoleA = await stream(urlA, watcher);
    const user = await t.createUser('dana@example.com');
    const phone = new Client(a);
    const laptop = new Client(b);
    const ids = [
      (await phone.login('dana@example.com')).session.id,
      (await laptop.login('dana@example.com')).session.id,
    ];

    const root = new Client(b);
    await root.login('root@example.com');
    const from = consoleA.frames.length;
    const res = await root.postJson(`/admin/users/${user.id}/disable`);
    expect(res.json().sessionsEnded).toBe(2);
    expect(await whoamiStatus(phone)).toBe(401);
    const frame = await consoleA.next<SessionFrame>(
      'session',
      (d) => d.type === 'revoked' && d.reason === 'user_disabled',
      { from, timeoutMs: LIVE_WITHIN_MS },
    );
    expect([...(frame.sessionIds ?? [])].sort()).toEqual([...ids].sort());
  });
});

describe.skipIf(skip || !redisServerAvailable())('two instances while Redis goes away', () => {
  it('should tell the consoles the store is down, then up again, and deliver changes after', async () => {
    // A Redis of the test's own, persisted so that the sessions survive its restart.
    const redis = await startOwnRedis({ persist: true });
    const t = await makeApp('redis+postgres', { redisUrl: redis.url });
    try {
      const b = await secondInstance(t);
      const urlA = await listen(t.app);
      await t.createUser('root@example.com', 'superuser');
      const sam = await t.createUser('sam@example.com');
      const root = new Client(t.app);
      await root.login('root@example.com');
      const consoleA = await SseStream.open(`${urlA}/admin/events`, root.cookieHeader());
      expect(await consoleA.next('store')).toEqual({ up: true });
      // appendfsync everysec: give the sign-in a second to reach the disk.
      await new Promise((r) => setTimeout(r, 1_100));

      await redis.kill();
      let from = consoleA.frames.length;
      expect(
        await consoleA.next('store', (d) => d.up === false, { from, timeoutMs: 4_000 }),
      ).toEqual({ up: false });

      await redis.start();
      expect(
        await consoleA.next('store', (d) => d.up === true, { from, timeoutMs: 5_000 }),
      ).toEqual({ up: true });
      await consoleA.next('resync', () => true, { from, timeoutMs: 2_000 });

      // The subscription is back: a sign-in through B reaches A's console again.
      await expect
        .poll(
          async () => {
            from = consoleA.frames.length;
            const session = await b.warden.sessions.signIn(sam, {
              ip: '127.0.0.1',
              userAgent: 'x',
            });
            return consoleA
              .next<SessionFrame>('session', (d) => d.sessionId === session.session.id, {
                from,
                timeoutMs: 500,
              })
              .then(
                () => true,
                () => false,
              );
          },
          { timeout: 5_000, interval: 100 },
        )
        .toBe(true);
      consoleA.close();
    } finally {
      await t.close();
      await redis.stop();
    }
  });
});
