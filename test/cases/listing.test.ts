/**
 * Case C05 of shared/CASES.md: the console lists Redis sessions through its indexes,
 * never by walking the keyspace, and pages stay consistent while sessions come and go.
 * Runs on a redis-server of its own so that its command statistics are its alone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { sessionIdOf } from '../../src/sessions/tokens.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';

const kinds = await storeKindsToRun();
const redisKind = kinds.find((k) => k.kind === 'redis+postgres');
const skip =
  !redisKind || redisKind.skip !== null || (!redisServerAvailable() && !servicesRequired());

function record(userId: number, createdAt: number): SessionRecord {
  return {
    id: sessionIdOf(randomBytes(16).toString('hex')),
    userId,
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: createdAt + 3_600_000,
    absoluteExpiresAt: createdAt + 7_200_000,
    ip: '198.51.100.7',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
  };
}

describe.skipIf(skip)('C05 listing on redis', () => {
  let own: OwnRedis;
  let t: TestApp;
  let admin: Client;
  let target: number;
  let others: number[];

  beforeAll(async () => {
    own = await startOwnRedis();
    t = await makeApp('redis+postgres', { redisUrl: own.url });
    await t.createUser('root@example.test', 'superuser');
    admin = t.client();
    await admin.login('root@example.test');
    target = (await t.createUser('three@example.test')).id;
    others = [];
    for (let i = 0; i < 40; i++) others.push((await t.createUser(`user${i}@example.test`)).id);

    const redis = t.redis!;
    for (let batch = 0; batch < 20; batch++) {
      const multi = redis.multi();
      for (let i = 0; i < 10_000; i++) multi.set(`unrelated:${batch}:${i}`, 'x');
      await multi.exec();
    }
    const now = Date.now();
    const records = Array.from({ length: 4_997 }, (_, i) =>
      record(others[i % others.length], now - 60_000 - i * 1_000),
    );
    for (let i = 0; i < 3; i++) records.push(record(target, now - 30_000 - i * 7_000));
    for (let i = 0; i < records.length; i += 500) {
      await Promise.all(records.slice(i, i + 500).map((r) => t.store.create(r)));
    }
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await own?.stop();
  });

  it('C05: pages through 5,000 sessions among 200,000 other keys without KEYS or SCAN', async () => {
    const redis = t.redis!;
    await redis.configResetStat();

    const seen = new Map<string, number>();
    const first = await admin.get('/admin/sessions?per_page=200', 'html');
    const asOf = /as_of=(\d+)/.exec(first.body)?.[1];
    expect(asOf).toBeDefined();

    // Sign-ins while the pages are read, all after the snapshot: `as_of` is the store's clock,
    // which may run a millisecond ahead of this process's, so their times are kept past it.
    let churn = true;
    const created: string[] = [];
    const churning = (async () => {
      let n = 0;
      while (churn) {
        const r = record(others[n % others.length], Math.max(Date.now(), Number(asOf) + 1));
        await t.store.create(r);
        created.push(r.id);
        if (n % 2 === 1) await t.store.delete(created.shift()!);
        n++;
        await new Promise((res) => setTimeout(res, 5));
      }
    })();

    let total = 0;
    for (let page = 1; ; page++) {
      const res = await admin.get(
        `/admin/sessions?per_page=200&page=${page}&as_of=${asOf}`,
        'json',
      );
      expect(res.statusCode).toBe(200);
      const body = res.json();
      total = body.total;
      for (const item of body.items) seen.set(item.id, (seen.get(item.id) ?? 0) + 1);
      if (page * 200 >= body.total) break;
    }
    churn = false;
    await churning;

    const stats = await redis.info('commandstats');
    expect(stats).not.toMatch(/cmdstat_keys:/);
    expect(stats).not.toMatch(/cmdstat_scan:/);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(total);

    const mine = await admin.get('/admin/sessions?email=three@example.test', 'json');
    expect(mine.json().total).toBe(3);

    const counts = await t.store.counts(Date.now());
    const everything = await admin.get('/admin/sessions?per_page=1', 'json');
    expect(everything.json().total).toBe(counts.active + counts.expired);
    // 5,000 seeded plus the superuser's own, plus what the churn left alive.
    expect(everything.json().total).toBe(5_001 + created.length);
  });
});
