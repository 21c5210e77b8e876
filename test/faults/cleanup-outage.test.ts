/**
 * A cleanup keeps several Redis scripts in flight. When Redis pauses mid-run, the cleanup gives
 * up after its bound and answers 503; the scripts still in Redis's socket run once it resumes.
 * Each must then take nothing: a session it removed would have no history row, since nobody is
 * left to write one.
 */

import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';
import type { Client } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { sleep, startWarden, type Warden } from './harness.js';

const DUE = 30_000;

describe.skipIf(!redisServerAvailable() && !servicesRequired())(
  'a cleanup cut off by a Redis pause',
  () => {
    let own: OwnRedis;
    let w: Warden;
    let admin: Client;
    let owner: number;

    beforeAll(async () => {
      own = await startOwnRedis();
      w = await startWarden({ env: { REDIS_URL: own.url } });
      await w.createUser('root@example.test', 'superuser');
      owner = await w.createUser('owner@example.test');
      admin = w.client();
      await admin.login('root@example.test');
      const now = w.runtime.clock();
      const due: SessionRecord[] = Array.from({ length: DUE }, (_, i) => ({
        id: sessionIdOf(newToken()),
        userId: owner,
        createdAt: now - 7_200_000 - i,
        lastSeenAt: now - 3_600_000,
        idleExpiresAt: now - 1_800_000 - i,
        absoluteExpiresAt: now + 86_400_000,
        ip: '192.0.2.1',
        userAgent: 'curl/8.5',
      }));
      await w.runtime.store.createMany!(due);
    }, 60_000);

    afterAll(async () => {
      own?.resume();
      await w?.close();
      await own?.stop();
    });

    it('should leave no session removed without its history row', async () => {
      const answer = admin.postJson('/admin/sessions/cleanup-expired', {});
      await sleep(300);
      own.pause();
      let res: Awaited<typeof answer>;
      try {
        // The bound on a bulk step: 20 × STORE_TIMEOUT (300 ms in the fault harness).
        res = await answer;
      } finally {
        own.resume();
      }
      expect(res.statusCode).toBe(503);
      // It says what it removed before Redis went away, as its audit row does.
      const removed = res.json().error.details?.counts?.removed;
      expect(removed).toBeGreaterThan(0);
      const { rows: audited } = await sql<{ details: string }>`select details from audit_log
        where action = 'sessions.cleanup_expired' order by id desc limit 1`.execute(
        w.runtime.database.db,
      );
      expect(JSON.parse(audited[0]?.details ?? '{}')).toMatchObject({
        code: 'WARDEN_STORE_UNAVAILABLE',
        counts: { removed },
      });
      // The steps that sat in the socket run now.
      await sleep(1_500);

      const left = (await w.runtime.store.listByUser(owner)).length;
      const { rows } = await sql<{ n: number }>`select count(*) as n from session_events
        where user_id = ${owner} and kind = 'cleaned_up'`.execute(w.runtime.database.db);
      const recorded = Number(rows[0]?.n);
      expect(left).toBeLessThan(DUE);
      expect(left + recorded).toBe(DUE);
      // Only a step answered after the cleanup gave up is recorded beyond what it reported.
      expect(recorded - removed).toBeLessThanOrEqual(200);
    }, 30_000);
  },
);
