/**
 * Live updates within one instance, on both stores: GET /admin/live fills the header, and the
 * Server-Sent Events stream of GET /admin/events tells an open console of every sign-in,
 * sign-out, revocation and cleanup within two seconds, with the new active count, and never
 * a token. Only superusers get either. A console whose own session ends is told so and cut
 * off; closing the app ends every open stream instead of hanging on it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sseMessage } from '../../src/admin/live-stream.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { type Latency, slowStore } from '../support/slow-store.js';
import { plantSession, signedIn } from './helpers.js';
import { listen, SseStream } from './live-sse.js';

type SessionFrame = { type: string; sessionId?: string; sessionIds?: string[]; count?: number };
const LIVE_WITHIN_MS = 2_000;

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`live updates within one instance (${kind})`, () => {
    let t: TestApp;
    let base: string;
    let admin: Client;
    let adminSessionId: string;
    const streams: SseStream[] = [];

    const open = async (c: Client) => {
      const s = await SseStream.open(`${base}/admin/events`, c.cookieHeader());
      streams.push(s);
      return s;
    };
    const activeNow = async () => (await admin.get('/admin/live', 'json')).json().active as number;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.com', 'superuser');
      await t.createUser('sam@example.com');
      await t.createUser('second-root@example.com', 'superuser');
      const signed = await signedIn(t, 'root@example.com');
      admin = signed.client;
      adminSessionId = signed.sessionId;
      base = await listen(t.app);
    });

    afterAll(async () => {
      for (const s of streams) s.close();
      await t?.close();
    });

    it('should give the header the active count and the store state as JSON', async () => {
      const user = await t.createUser('counted@example.com');
      const before = await activeNow();
      await plantSession(t, user.id);
      await plantSession(t, user.id, { expired: true });

      const res = await admin.get('/admin/live', 'json');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ active: before + 1, storeUp: true });
    });

    it('should refuse the figures and the stream to anyone but a superuser', async () => {
      const anon = t.client();
      expect((await anon.get('/admin/live', 'json')).statusCode).toBe(401);
      const anonymous = await SseStream.open(`${base}/admin/events`, '');
      expect(anonymous.status).toBe(303);
      expect(anonymous.headers.get('location')).toMatch(/^\/login\?next=/);

      const sam = (await signedIn(t, 'sam@example.com')).client;
      expect((await sam.get('/admin/live', 'json')).statusCode).toBe(403);
      const refused = await SseStream.open(`${base}/admin/events`, sam.cookieHeader());
      expect(refused.status).toBe(403);
      expect(refused.headers.get('content-type')).not.toContain('text/event-stream');
    });

    it('should announce a sign-in, its sign-out, a revocation and a cleanup within two seconds', async () => {
      const stream = await open(admin);
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(stream.headers.get('cache-control')).toContain('no-cache');
      expect(await stream.next('store')).toEqual({ up: true });
      const first = await stream.next<{ active: number }>('count');
      expect(first.active).toBe(await activeNow());

      // A sign-in through the API: the event names the session by its digest.
      const sam = t.client();
      let from = stream.frames.length;
      let started = performance.now();
      const login = await sam.login('sam@example.com');
      const samToken = sam.cookies.get('warden_session')!;
      const signedInFrame = await stream.next<SessionFrame>(
        'session',
        (d) => d.type === 'signed_in' && d.sessionId === login.session.id,
        { from, timeoutMs: LIVE_WITHIN_MS },
      );
      expect(signedInFrame).toMatchObject({ userId: login.user.id });
      const afterSignIn = await stream.next<{ active: number }>('count', () => true, { from });
      expect(afterSignIn.active).toBe(first.active + 1);
      expect(performance.now() - started).toBeLessThan(LIVE_WITHIN_MS);

      // Its sign-out.
      from = stream.frames.length;
      await sam.postJson('/api/auth/logout');
      await stream.next<SessionFrame>(
        'session',
        (d) => d.type === 'signed_out' && d.sessionId === login.session.id,
        { from, timeoutMs: LIVE_WITHIN_MS },
      );
      expect((await stream.next<{ active: number }>('count', () => true, { from })).active).toBe(
        first.active,
      );

      // A revocation from the console, with the ids it ended.
      const again = await t.client().login('sam@example.com');
      from = stream.frames.length;
      started = performance.now();
      const res = await admin.postJson(`/admin/sessions/revoke/${again.session.id}`);
      expect(res.statusCode).toBe(200);
      const revoked = await stream.next<SessionFrame>('session', (d) => d.type === 'revoked', {
        from,
        timeoutMs: LIVE_WITHIN_MS,
      });
      expect(revoked).toMatchObject({ sessionIds: [again.session.id], reason: 'revoked' });
      expect(performance.now() - started).toBeLessThan(LIVE_WITHIN_MS);

      // A cleanup of expired sessions, by count.
      const user = await t.createUser('expired@example.com');
      await plantSession(t, user.id, { expired: true });
      await plantSession(t, user.id, { expired: true });
      from = stream.frames.length;
      const cleaned = await admin.postJson('/admin/sessions/cleanup-expired');
      const removed = cleaned.json().removed as number;
      expect(removed).toBeGreaterThanOrEqual(2);
      const frame = await stream.next<SessionFrame>('session', (d) => d.type === 'cleaned_up', {
        from,
        timeoutMs: LIVE_WITHIN_MS,
      });
      expect(frame.count).toBe(removed);

      // Digests only: the raw cookie token never travels on the stream.
      expect(stream.raw).not.toContain(samToken);
      expect(stream.raw).not.toContain(admin.cookies.get('warden_session')!);
    });

    it("should tell a console its own session ended and close it, leaving the others' open", async () => {
      const other = await signedIn(t, 'second-root@example.com');
      const mine = await open(other.client);
      const watching = await open(admin);
      await mine.next('count');
      await watching.next('count');

      const res = await admin.postJson(`/admin/sessions/revoke/${other.sessionId}`);
      expect(res.json().counts.revoked).toBe(1);
      expect(await mine.next('bye', () => true, { timeoutMs: LIVE_WITHIN_MS })).toEqual({
        reason: 'session_ended',
      });
      await mine.ended;
      expect(watching.done).toBe(false);
      await watching.next<SessionFrame>('session', (d) => d.sessionIds?.[0] === other.sessionId);

      // The browser's reconnect is refused: the session is gone.
      const reconnect = await SseStream.open(`${base}/admin/events`, other.client.cookieHeader());
      expect(reconnect.status).toBe(303);
      expect(reconnect.headers.get('location')).toMatch(/^\/login/);
      expect(adminSessionId).not.toBe(other.sessionId);
    });

    it('should end open streams when the app closes, instead of holding the shutdown', async () => {
      const own = await makeApp(kind);
      try {
        await own.createUser('closing@example.com', 'superuser');
        const c = (await signedIn(own, 'closing@example.com')).client;
        const url = await listen(own.app);
        const stream = await SseStream.open(`${url}/admin/events`, c.cookieHeader());
        await stream.next('count');

        const started = performance.now();
        await own.app.close();
        await stream.ended;
        expect(performance.now() - started).toBeLessThan(2_000);
      } finally {
        await own.close();
      }
    });
  });
}

const redisRun = (await storeKindsToRun()).find((k) => k.kind === 'redis+postgres');
describe.skipIf(!redisRun || redisRun.skip !== null)(
  'live updates after a late collection (redis)',
  () => {
    it("should have open consoles re-read their table and count once the sweep removes a revocation's ended sessions", async () => {
      // The revocation's own collection fails (Redis away for that one call): the ended sessions
      // stay counted until the store's sweep takes them, and no revocation event comes then.
      let failures = 1;
      const t = await makeApp('redis+postgres', {
        setAsideSweepMs: 100,
        wrapStore: (store) =>
          new Proxy(store, {
            get(target, prop) {
              const value = Reflect.get(target, prop, target);
              if (prop === 'collectSetAside' && failures > 0) {
                return async () => {
                  failures--;
                  throw new Error('connection lost');
                };
              }
              return typeof value === 'function' ? value.bind(target) : value;
            },
          }),
      });
      const streams: SseStream[] = [];
      try {
        await t.createUser('root@example.com', 'superuser');
        const sam = await t.createUser('sam@example.com');
        const admin = (await signedIn(t, 'root@example.com')).client;
        const base = await listen(t.app);
        const activeNow = async () =>
          (await admin.get('/admin/live', 'json')).json().active as number;
        const before = await activeNow();
        for (let i = 0; i < 3; i++) await t.client().login('sam@example.com');
        const stream = await SseStream.open(`${base}/admin/events`, admin.cookieHeader());
        streams.push(stream);
        expect((await stream.next<{ active: number }>('count')).active).toBe(before + 3);

        const res = await admin.postJson(`/admin/sessions/revoke-user/${sam.id}`);
        expect(res.statusCode).toBe(200);
        expect(res.json().counts.revoked).toBe(3);
        expect(failures).toBe(0);

        // Within the readers' wait and the sweep: a resync, then the count without them.
        const from = stream.frames.length;
        await stream.next('resync', () => true, { from, timeoutMs: 5_000 });
        const resynced = stream.frames.findLastIndex((f) => f.event === 'resync');
        const countAfter = await stream.next<{ active: number }>('count', () => true, {
          from: resynced + 1,
          // Soon: the count before it waited up to 2 s for the failed collection, and that wait
          // is no cost of counting to keep the next one back by.
          timeoutMs: 2_000,
        });
        expect(countAfter.active).toBe(before);
        expect(await activeNow()).toBe(before);
      } finally {
        for (const s of streams) s.close();
        await t.close();
      }
    });
  },
);

describe('live count after one slow count', () => {
  it('should count the next change soon, not 20 times the one count that waited on the store', async () => {
    const latency: Latency = { delays: {} };
    const t = await makeApp('sqlite', { wrapStore: (s) => slowStore(s, latency) });
    const streams: SseStream[] = [];
    try {
      await t.createUser('root@example.com', 'superuser');
      await t.createUser('sam@example.com');
      const admin = (await signedIn(t, 'root@example.com')).client;
      const base = await listen(t.app);
      const stream = await SseStream.open(`${base}/admin/events`, admin.cookieHeader());
      streams.push(stream);
      const first = await stream.next<{ active: number }>('count');

      // The store pauses for a moment during one count…
      latency.delays.counts = 1_500;
      let from = stream.frames.length;
      await t.client().login('sam@example.com');
      expect((await stream.next<{ active: number }>('count', () => true, { from })).active).toBe(
        first.active + 1,
      );
      latency.delays.counts = 0;

      // …and the next change is counted within the usual delay, not 30 s later.
      from = stream.frames.length;
      const started = performance.now();
      await t.client().login('sam@example.com');
      const next = await stream.next<{ active: number }>('count', () => true, {
        from,
        timeoutMs: 3_000,
      });
      expect(next.active).toBe(first.active + 2);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      for (const s of streams) s.close();
      await t.close();
    }
  });
});

describe('sseMessage', () => {
  it('should write one event with its data as one JSON line', () => {
    expect(sseMessage('count', { active: 3, note: 'two\nlines' })).toBe(
      'event: count\ndata: {"active":3,"note":"two\\nlines"}\n\n',
    );
  });
});
