/**
 * The Redis store answers a status-only page from its indexes (a ZCOUNT for the total, a walk
 * of the newest entries for the page) instead of walking the fleet. Its totals and pages must
 * be the ones the full walk gives, also for a page snapshot taken before later sign-ins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expiresAt, type SessionRecord } from '../../src/sessions/session-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const fleet = (await storeKindsToRun()).find((k) => k.kind === 'redis+postgres');
const skip = !fleet || fleet.skip !== null;
const MINUTE = 60_000;

describe.skipIf(skip)('status-only pages on Redis', () => {
  let t: TestApp;
  const now = Date.now();
  const all: SessionRecord[] = [];

  beforeAll(async () => {
    t = await makeApp('redis+postgres');
    const user = await t.createUser('pat@example.com');
    // 60 sessions a minute apart; every third one idle-expired.
    for (let i = 0; i < 60; i++) {
      const createdAt = now - (i + 1) * MINUTE;
      const expired = i % 3 === 0;
      const s: SessionRecord = {
        id: sessionIdOf(newToken()),
        userId: user.id,
        createdAt,
        lastSeenAt: createdAt,
        idleExpiresAt: expired ? now - MINUTE : now + 30 * MINUTE,
        absoluteExpiresAt: now + 12 * 60 * MINUTE,
        ip: '192.0.2.1',
        userAgent: 'test',
      };
      await t.store.create(s);
      all.push(s);
    }
  });

  afterAll(async () => {
    await t?.close();
  });

  const expected = (status: 'active' | 'expired', createdTo?: number) =>
    all
      .filter((s) => s.idleExpiresAt > now === (status === 'active'))
      .filter((s) => createdTo === undefined || s.createdAt < createdTo)
      // Active pages are newest sign-in first; expired ones most recently expired first, ties
      // by id descending (as every store orders them).
      .sort((a, b) =>
        status === 'active'
          ? b.createdAt - a.createdAt
          : expiresAt(b) - expiresAt(a) || (b.id < a.id ? -1 : 1),
      )
      .map((s) => s.id);

  for (const status of ['active', 'expired'] as const) {
    it(`should give the ${status} total and pages the full walk gives`, async () => {
      const want = expected(status);
      const first = await t.store.list({ status, now, offset: 0, limit: 7 });
      expect(first.total).toBe(want.length);
      expect(first.items.map((s) => s.id)).toEqual(want.slice(0, 7));
      const third = await t.store.list({ status, now, offset: 14, limit: 7 });
      expect(third.items.map((s) => s.id)).toEqual(want.slice(14, 21));
    });

    it(`should leave out ${status} sessions created after the page's snapshot`, async () => {
      const asOf = now - 20.5 * MINUTE;
      const want = expected(status, asOf);
      const page = await t.store.list({ status, now, createdTo: asOf, offset: 0, limit: 5 });
      expect(page.total).toBe(want.length);
      expect(page.items.map((s) => s.id)).toEqual(want.slice(0, 5));
    });
  }
});
