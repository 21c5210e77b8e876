/**
 * Case C17 of shared/CASES.md under the hardest fault: Redis killed (SIGKILL) in the middle of
 * a bulk revoke of 1,000 sessions, then started again with its data. The first answer claims
 * only what Redis confirmed; a second run revokes the rest; each id is reported revoked exactly
 * once over both runs, even one whose delete ran but whose answer died with the server; and
 * nothing is left. (test/cases/bulk-faults.test.ts covers the same case with a pause.)
 */
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import type { Client } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { slowStore } from '../support/slow-store.js';
import { sleep, startWarden, type Warden, waitFor } from './harness.js';

const SESSIONS = 1_000;

interface Report {
  counts: Record<string, number>;
  results: { id: string; status: string }[];
}

describe.skipIf(!redisServerAvailable() && !servicesRequired())(
  'C17 bulk revoke with Redis killed',
  () => {
    let own: OwnRedis;
    let w: Warden;
    let admin: Client;
    let user: UserRow;
    const ids: string[] = [];
    /** When set, the next takeMany (or takeOfUser) runs and then fails, as when the answer dies on the wire. */
    const lose = { next: false, nextOfUser: false };

    beforeAll(async () => {
      own = await startOwnRedis({ persist: true });
      w = await startWarden({
        env: { REDIS_URL: own.url, STORE_TIMEOUT: '1s' },
        // Paced deletes leave room to kill Redis between the first and the last chunk.
        wrapStore: (s) => losing(slowStore(s, { delays: { takeMany: 40 } }), lose),
      });
      await w.createUser('root@example.test', 'superuser');
      const userId = await w.createUser('many@example.test');
      user = (await w.runtime.userRepo.findById(userId))!;
      admin = w.client();
      await admin.login('root@example.test');
      for (let i = 0; i < SESSIONS; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: 25 }, () =>
            w.app.warden.sessions.signIn(user, { ip: '192.0.2.1', userAgent: 'load' }),
          ),
        );
        ids.push(...batch.map((b) => b.session.id));
      }
    }, 60_000);

    afterAll(async () => {
      await w?.close();
      await own?.stop();
    });

    it('C17: the first report claims only confirmed deletes, a second run revokes the rest, no id twice', async () => {
      const watcher = createClient({ url: own.url });
      watcher.on('error', () => {});
      await watcher.connect();
      const userIndex = `warden:{u${user.id}}:sessions`;
      expect(await watcher.zCard(userIndex)).toBe(SESSIONS);

      const csrf = await admin.csrf();
      const pending = admin.postJson('/admin/sessions/bulk-revoke', { ids }, { csrf });
      await waitFor(async () => (await watcher.zCard(userIndex)) <= 600, 10_000, 'half the revoke');
      watcher.destroy();
      await own.kill();
      const first = await pending;

      expect(first.statusCode).toBe(200);
      const one = first.json() as Report;
      // At least 400 were gone from the index when Redis died; the chunks in flight (up to 4
      // of 50) may have been deleted without their answers arriving, and are then (rightly) not
      // claimed.
      expect(one.counts.revoked).toBeGreaterThanOrEqual(200);
      expect(one.counts.failed).toBeGreaterThan(0);
      expect(one.counts.revoked + one.counts.failed).toBe(SESSIONS);
      const revokedFirst = new Set(
        one.results.filter((r) => r.status === 'revoked').map((r) => r.id),
      );

      await own.start();
      // Both connections back: validation may already answer over the tracking connection
      // while the main one (listings, writes) is still reconnecting.
      await waitFor(
        async () =>
          (await admin.get('/api/auth/session')).statusCode === 200 &&
          (await w.runtime.store.ping().then(
            () => true,
            () => false,
          )),
        5_000,
        'Redis back',
      );
      // Every id the first run called revoked is really gone; at most the chunks that were on
      // the wire when Redis died are gone beyond them.
      const left = new Set((await w.runtime.store.listByUser(user.id)).map((s) => s.id));
      for (const id of revokedFirst) expect(left.has(id)).toBe(false);
      const gone = SESSIONS - left.size;
      expect(gone).toBeGreaterThanOrEqual(revokedFirst.size);
      expect(gone - revokedFirst.size).toBeLessThanOrEqual(200);

      let two: Report | undefined;
      for (let attempt = 0; attempt < 20 && !two; attempt++) {
        const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids });
        if (res.statusCode === 200 && res.json().counts.failed === 0) two = res.json();
        else await sleep(250);
      }
      expect(two).toBeDefined();
      const revokedSecond = two!.results.filter((r) => r.status === 'revoked').map((r) => r.id);
      for (const id of revokedSecond) expect(revokedFirst.has(id)).toBe(false);
      expect(revokedFirst.size + revokedSecond.length).toBe(SESSIONS);
      expect(two!.counts.already_ended).toBe(revokedFirst.size);
      expect(await w.runtime.store.listByUser(user.id)).toEqual([]);

      // History agrees: one revocation per session, whichever run reported it.
      const events = await w.runtime.events.ofSessions(ids);
      expect(events.filter((e) => e.kind === 'revoked')).toHaveLength(SESSIONS);
    }, 60_000);

    it('C17: a chunk deleted but never confirmed is reported failed, then revoked once by the retry', async () => {
      const some = await Promise.all(
        Array.from({ length: 100 }, () =>
          w.app.warden.sessions.signIn(user, { ip: '192.0.2.2', userAgent: 'load' }),
        ),
      );
      const batch = some.map((s) => s.session.id);
      const csrf = await admin.csrf();
      const revoke = async () =>
        (
          await admin.postJson('/admin/sessions/bulk-revoke', { ids: batch }, { csrf })
        ).json() as Report;

      lose.next = true;
      const one = await revoke();
      // The first chunk of 50 was deleted but its answer lost; the run stopped there.
      expect(one.counts).toMatchObject({ revoked: 0, failed: 100 });
      expect(await w.runtime.store.listByUser(user.id)).toHaveLength(50);

      const two = await revoke();
      expect(two.counts).toMatchObject({ revoked: 100, failed: 0, already_ended: 0 });
      const three = await revoke();
      expect(three.counts).toMatchObject({ revoked: 0, already_ended: 100 });
      const events = await w.runtime.events.ofSessions(batch);
      expect(events.filter((e) => e.kind === 'revoked')).toHaveLength(100);
    });

    it('C17: a revoke-all whose first chunk was deleted unconfirmed gives those sessions their end on the retry', async () => {
      const ownerId = await w.createUser(`lost-answer-${Date.now()}@example.test`);
      const owner = (await w.runtime.userRepo.findById(ownerId))!;
      const some = await Promise.all(
        Array.from({ length: 100 }, () =>
          w.app.warden.sessions.signIn(owner, { ip: '192.0.2.3', userAgent: 'load' }),
        ),
      );
      const batch = some.map((s) => s.session.id);
      const csrf = await admin.csrf();
      const revokeAll = async () =>
        (
          await admin.postJson(`/admin/sessions/revoke-user/${ownerId}`, {}, { csrf })
        ).json() as Report;

      lose.nextOfUser = true;
      const one = await revokeAll();
      // The first chunk was deleted, with its index entries, but its answer lost: the run
      // stopped and claimed nothing.
      expect(one.counts).toMatchObject({ revoked: 0, failed: 100 });
      expect(await w.runtime.store.listByUser(ownerId)).toHaveLength(50);

      // The retry lists the user's index, which no longer names those 50, and still reports
      // every session revoked once, with one history row each.
      const two = await revokeAll();
      expect(two.counts).toMatchObject({ revoked: 100, failed: 0 });
      expect(new Set(two.results.map((r) => r.id))).toEqual(new Set(batch));
      expect(await w.runtime.store.listByUser(ownerId)).toEqual([]);
      await w.app.warden.events.settled();
      const events = await w.runtime.events.ofSessions(batch);
      expect(events.filter((e) => e.kind === 'revoked')).toHaveLength(100);
      const three = await revokeAll();
      expect(three.counts).toMatchObject({ revoked: 0, failed: 0 });
    });
  },
);

/**
 * A store whose takeMany (the revocations' delete), once `lose.next` is set, deletes and then
 * throws; takeOfUser (revoke-user's) likewise with `lose.nextOfUser`.
 */
function losing(inner: SessionStore, lose: { next: boolean; nextOfUser: boolean }): SessionStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'takeMany') {
        return async (ids: readonly string[]) => {
          const outcomes = await target.takeMany(ids);
          if (!lose.next) return outcomes;
          lose.next = false;
          throw new Error('connection lost before the answer');
        };
      }
      if (prop === 'takeOfUser') {
        return async (userId: number, ids: readonly string[]) => {
          const outcomes = await target.takeOfUser(userId, ids);
          if (!lose.nextOfUser) return outcomes;
          lose.nextOfUser = false;
          throw new Error('connection lost before the answer');
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
