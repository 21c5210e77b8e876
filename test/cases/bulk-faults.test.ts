/**
 * Case C17 of shared/CASES.md, the fault half: Redis pauses part-way through a bulk
 * revoke. The answer names what failed, a retry finishes the job, and with Redis
 * stopped a revoke-all never claims success. Runs on a redis-server of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantSession } from '../routes/helpers.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { slowStore } from '../support/slow-store.js';

const kinds = await storeKindsToRun();
const redisKind = kinds.find((k) => k.kind === 'redis+postgres');
const skip =
  !redisKind || redisKind.skip !== null || (!redisServerAvailable() && !servicesRequired());

interface Result {
  id: string;
  status: string;
}

describe.skipIf(skip)('C17 bulk revoke under a Redis pause', () => {
  let own: OwnRedis;
  let t: TestApp;
  let admin: Client;
  let userId: number;
  const ids: string[] = [];

  beforeAll(async () => {
    own = await startOwnRedis();
    t = await makeApp('redis+postgres', {
      redisUrl: own.url,
      env: { STORE_TIMEOUT: '200ms' },
      // Slow deletes give the test time to pause Redis between two chunks.
      wrapStore: (s) => slowStore(s, { delays: { takeMany: 150 } }),
    });
    await t.createUser('root@example.test', 'superuser');
    userId = (await t.createUser('c17@example.test')).id;
    admin = t.client();
    await admin.login('root@example.test');
    // Planted as sign-in stores them (record and history row), not signed in 200 times: twenty
    // password checks at once on a slow 2-core machine outlasted the 200 ms store timeout.
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => plantSession(t, userId)));
      ids.push(...batch.map((p) => p.id));
    }
  }, 60_000);

  afterAll(async () => {
    own?.resume();
    await t?.close();
    await own?.stop();
  });

  it('C17: a pause after about fifty of two hundred reports the failures, and a retry finishes', async () => {
    const watcher = t.redis!.duplicate();
    watcher.on('error', () => {});
    await watcher.connect();
    const userIndex = `${t.prefix}{u${userId}}:sessions`;
    expect(await watcher.zCard(userIndex)).toBe(200);

    const csrf = await admin.csrf();
    const pending = admin.postJson('/admin/sessions/bulk-revoke', { ids }, { csrf });
    for (;;) {
      const left = await watcher.zCard(userIndex);
      if (left <= 150) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    own.pause();
    const first = await pending;
    watcher.destroy();

    expect(first.statusCode).toBe(200);
    const body = first.json() as { counts: Record<string, number>; results: Result[] };
    expect(body.counts.revoked, JSON.stringify(body.counts)).toBeGreaterThanOrEqual(50);
    expect(body.counts.failed).toBeGreaterThan(0);
    expect(body.counts.revoked + body.counts.failed).toBe(200);
    const failed = body.results.filter((r) => r.status === 'failed').map((r) => r.id);
    const revoked = new Set(body.results.filter((r) => r.status === 'revoked').map((r) => r.id));

    own.resume();
    // The breaker needs its pause before it lets a trial call through again.
    let retry: Awaited<typeof pending> | undefined;
    for (let attempt = 0; attempt < 40; attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      retry = await admin.postJson('/admin/sessions/bulk-revoke', { ids: failed });
      if (retry.statusCode === 200 && retry.json().counts.failed === 0) break;
    }
    expect(retry?.statusCode).toBe(200);
    const second = retry!.json() as { counts: Record<string, number>; results: Result[] };
    expect(second.counts.failed).toBe(0);
    for (const r of second.results) {
      expect(revoked.has(r.id)).toBe(false);
      expect(['revoked', 'already_ended']).toContain(r.status);
    }
    const left = await admin.get('/admin/sessions?email=c17@example.test', 'json');
    expect(left.json().total, left.body).toBe(0);
  });

  it('C17: with Redis stopped, revoke-all of a user answers 503 and never success', async () => {
    const c = t.client();
    await c.login('c17@example.test');
    const csrf = await admin.csrf();
    await own.kill();
    const res = await admin.postJson(`/admin/sessions/revoke-user/${userId}`, {}, { csrf });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('WARDEN_STORE_UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
  });
});
