/**
 * The scheduled cleanup on both setups: every CLEANUP_INTERVAL, sessions expired longer than
 * the retention are removed, and the ones still within it (and the live ones) stay. With two
 * instances on one Redis and PostgreSQL, each expired session is removed once (one history row
 * each) and every run writes exactly one audit row and one log line; a turn that finds the lock
 * taken writes nothing. The locks themselves: Redis (released only by its holder), PostgreSQL
 * advisory, and in-process.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CLEANUP_INTERVAL_MS, loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { createLogger } from '../../src/logger.js';
import { StoreUnavailableError } from '../../src/resilience/guarded-store.js';
import { CLEANUP_ACTION, CleanupJob } from '../../src/sessions/cleanup-job.js';
import { type JobLock, postgresLock, processLock, redisLock } from '../../src/sessions/locks.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { makeApp, secondInstance, storeKindsToRun, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';
import { checkRedis, gate, TEST_REDIS_URL } from '../support/services.js';
import { auditRows, unknownId } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const INTERVAL = '300ms';
const RETENTION_MS = 10_000;

/**
 * A session whose idle deadline passed `agoMs` ago while its absolute deadline is an hour
 * away: Redis keeps its key (the TTL follows the absolute deadline), so only cleanup removes it.
 */
async function plantIdle(t: TestApp, userId: number, agoMs: number): Promise<SessionRecord> {
  const now = Date.now();
  const record: SessionRecord = {
    id: unknownId(),
    userId,
    createdAt: now - agoMs - 60_000,
    lastSeenAt: now - agoMs - 60_000,
    idleExpiresAt: now - agoMs,
    absoluteExpiresAt: now + 3_600_000,
    ip: '198.51.100.4',
    userAgent: 'cleanup test',
  };
  await t.store.create(record);
  return record;
}

async function cleanedUpRows(t: TestApp) {
  return t.database.db
    .selectFrom('session_events')
    .select(['session_id', 'actor_id', 'reason'])
    .where('kind', '=', 'cleaned_up')
    .execute();
}

describe('CLEANUP_INTERVAL', () => {
  it('should default to five minutes, take a duration, and turn the job off with 0', () => {
    expect(loadConfig({}).cleanupIntervalMs).toBe(DEFAULT_CLEANUP_INTERVAL_MS);
    expect(loadConfig({ CLEANUP_INTERVAL: '300ms' }).cleanupIntervalMs).toBe(300);
    expect(loadConfig({ CLEANUP_INTERVAL: '0' }).cleanupIntervalMs).toBe(0);
    expect(loadConfig({ CLEANUP_INTERVAL: '0s' }).cleanupIntervalMs).toBe(0);
    expect(() => loadConfig({ CLEANUP_INTERVAL: 'hourly' })).toThrow(ConfigError);
    expect(() => loadConfig({ CLEANUP_INTERVAL: 'hourly' })).toThrow(/^CLEANUP_INTERVAL: /);
  });
});

describe('processLock', () => {
  it('should let one run at a time and free itself after a failed run', async () => {
    const lock = processLock();
    let release!: () => void;
    const first = lock.tryRun(() => new Promise<string>((r) => (release = () => r('first'))));
    expect(await lock.tryRun(async () => 'second')).toEqual({ ran: false });
    release();
    expect(await first).toEqual({ ran: true, value: 'first' });

    await expect(lock.tryRun(async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(await lock.tryRun(async () => 'again')).toEqual({ ran: true, value: 'again' });
  });
});

const redisGate = await gate('Redis lock tests', () => checkRedis());
if (redisGate.action === 'fail') throw new Error(`required service missing: ${redisGate.reason}`);

describe.skipIf(redisGate.action !== 'run')('redisLock', () => {
  const client = createClient({ url: TEST_REDIS_URL });
  const key = `warden-test:${randomBytes(6).toString('hex')}:lock:cleanup`;

  beforeAll(async () => {
    client.on('error', () => {});
    await client.connect();
  });
  afterAll(async () => {
    await client.del(key);
    client.destroy();
  });

  it('should let one of two instances in, and release only its own lock', async () => {
    const a = redisLock(client, key, 150);
    const b = redisLock(client, key, 10_000);

    // A holds the lock longer than its TTL; B takes the expired lock meanwhile.
    const slowA = a.tryRun(async () => {
      expect(await b.tryRun(async () => 'b too early')).toEqual({ ran: false });
      await sleep(250);
      return 'a';
    });
    await sleep(200);
    let bHolds!: () => void;
    const bRun = b.tryRun(() => new Promise<string>((r) => (bHolds = () => r('b'))));
    await sleep(20);
    expect(await slowA).toEqual({ ran: true, value: 'a' });

    // A's release must not have deleted B's lock: a third taker is still refused.
    expect(await client.exists(key)).toBe(1);
    expect(await a.tryRun(async () => 'a again')).toEqual({ ran: false });
    bHolds();
    expect(await bRun).toEqual({ ran: true, value: 'b' });
    expect(await client.exists(key)).toBe(0);
  });
});

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`scheduled cleanup (${kind})`, () => {
    it('should remove each session expired past retention once, with one audit row and log line per run', async () => {
      const logA = logCapture();
      const logB = logCapture();
      const appsStarted = Date.now();
      const t = await makeApp(kind, {
        env: { CLEANUP_INTERVAL: INTERVAL, SESSION_RETENTION: `${RETENTION_MS}ms` },
        logStream: logA.stream,
      });
      try {
        // On Redis + PostgreSQL, a fleet: a second instance on the same stores and lock.
        if (kind === 'redis+postgres') await secondInstance(t, { logStream: logB.stream });
        const user = await t.createUser('fleet@example.com');
        const old = await Promise.all(
          Array.from({ length: 12 }, (_, i) => plantIdle(t, user.id, RETENTION_MS + 60_000 + i)),
        );
        const recent = await plantIdle(t, user.id, 1_000);
        const live = await t.app.warden.sessions.signIn(user, { ip: '127.0.0.1', userAgent: 'x' });

        await expect
          .poll(async () => (await cleanedUpRows(t)).length, { timeout: 5_000, interval: 100 })
          .toBe(old.length);
        // More turns, to show that later runs find nothing more to remove.
        await sleep(1_200);

        for (const s of old) expect(await t.store.get(s.id)).toBeNull();
        expect(await t.store.get(recent.id)).not.toBeNull();
        expect(await t.store.get(live.session.id)).not.toBeNull();

        // History: exactly one row per removed session, by nobody (the scheduler).
        const history = await cleanedUpRows(t);
        expect(history.map((h) => h.session_id).sort()).toEqual(old.map((s) => s.id).sort());
        expect(history.every((h) => h.actor_id === null && h.reason === 'idle')).toBe(true);

        // Audit: one row per run, each with its count; together they count every removal. The
        // scheduler goes on meanwhile, and a run writes its audit row before its log line: read
        // both until they agree, so that no run is caught between the two.
        const logged = () =>
          [...logA.records(), ...logB.records()].filter(
            (l) => l.event === 'admin_action' && l.action === CLEANUP_ACTION,
          );
        let runs = await auditRows(t, CLEANUP_ACTION);
        await expect
          .poll(
            async () => {
              runs = await auditRows(t, CLEANUP_ACTION);
              return logged().length - runs.length;
            },
            { timeout: 5_000, interval: 50 },
          )
          .toBe(0);
        const elapsed = Date.now() - appsStarted;
        expect(runs.length).toBeGreaterThanOrEqual(2);
        for (const run of runs) {
          expect(run).toMatchObject({ actor_id: null, actor_email: null, outcome: 'success' });
          expect(run.details).toMatchObject({ trigger: 'scheduler' });
        }
        const removed = runs.map((r) => (r.details.counts as { removed: number }).removed);
        expect(removed.reduce((a, b) => a + b, 0)).toBe(old.length);

        // One log line per run, across the instances; none for the turns that skipped.
        const lines = logged();
        expect(lines.every((l) => typeof l.durationMs === 'number')).toBe(true);
        // The fleet runs about once per interval (runs are at least 0.8 of one apart), not
        // once per instance per interval.
        expect(runs.length).toBeLessThanOrEqual(Math.floor(elapsed / 240) + 1);
      } finally {
        await t.close();
      }
    });

    describe('one turn, run by hand', () => {
      let t: TestApp;

      beforeAll(async () => {
        // No scheduled job of the app's own gets in the way here.
        t = await makeApp(kind, {
          env: { CLEANUP_INTERVAL: '0', SESSION_RETENTION: `${RETENTION_MS}ms` },
        });
      });
      afterAll(async () => {
        await t?.close();
      });

      const job = (o: Partial<ConstructorParameters<typeof CleanupJob>[0]> = {}) =>
        new CleanupJob({
          sessions: t.app.warden.sessions,
          audit: t.app.warden.audit,
          lock: processLock(),
          db: t.database.db,
          clock: Date.now,
          log: t.app.log,
          intervalMs: 60_000,
          retentionMs: RETENTION_MS,
          ...o,
        });
      const forgetLastRun = () =>
        t.database.db.deleteFrom('settings').where('key', '=', 'cleanup_last_run').execute();

      it('should let only one of two simultaneous turns run, and audit only that one', async () => {
        const user = await t.createUser('race@example.com');
        const planted = await Promise.all(
          Array.from({ length: 30 }, () => plantIdle(t, user.id, RETENTION_MS + 120_000)),
        );
        // The lock each instance would take: the same Redis key, or one process's lock.
        const shared = processLock();
        const lock = (): JobLock =>
          kind === 'sqlite' ? shared : redisLock(t.redis!, `${t.prefix}lock:cleanup`, 60_000);
        await forgetLastRun();
        const before = (await auditRows(t, CLEANUP_ACTION)).length;

        const outcomes = await Promise.all([
          job({ lock: lock() }).runOnce(),
          job({ lock: lock() }).runOnce(),
        ]);
        expect(outcomes.filter((o) => o.status === 'ran')).toHaveLength(1);
        expect(outcomes.find((o) => o.status !== 'ran')).toMatchObject({ status: 'skipped' });
        expect((await auditRows(t, CLEANUP_ACTION)).length).toBe(before + 1);
        for (const s of planted) expect(await t.store.get(s.id)).toBeNull();
        expect(
          (await cleanedUpRows(t)).filter((h) => planted.some((p) => p.id === h.session_id)),
        ).toHaveLength(planted.length);
      });

      it('should audit a run that failed, and run again on its next turn', async () => {
        const log = logCapture();
        let fail = true;
        const failing = job({
          sessions: {
            cleanupExpired: async (before, actor) => {
              // Cut short after removing some: the row says how many.
              if (fail) {
                const cut = new StoreUnavailableError('takeExpired', new Error('timed out'));
                cut.counts = { removed: 7 };
                throw cut;
              }
              return t.app.warden.sessions.cleanupExpired(before, actor);
            },
          },
          log: createLogger({ logLevel: 'info' }, log.stream),
          intervalMs: 100,
        });
        await forgetLastRun();
        const before = (await auditRows(t, CLEANUP_ACTION)).length;

        expect(await failing.runOnce()).toMatchObject({ status: 'failed' });
        const failed = (await auditRows(t, CLEANUP_ACTION)).at(-1)!;
        expect(failed).toMatchObject({ outcome: 'failure', actor_id: null });
        expect(failed.details.error).toMatch(/unavailable/);
        expect(failed.details.counts).toEqual({ removed: 7 });
        expect(log.records().filter((l) => l.action === CLEANUP_ACTION)).toHaveLength(1);

        fail = false;
        failing.start();
        await expect
          .poll(async () => (await auditRows(t, CLEANUP_ACTION)).length, { timeout: 3_000 })
          .toBeGreaterThanOrEqual(before + 2);
        await failing.stop();
        expect((await auditRows(t, CLEANUP_ACTION)).at(-1)).toMatchObject({ outcome: 'success' });
      });

      it('should never run with an interval of 0', async () => {
        let calls = 0;
        const never = job({
          sessions: {
            cleanupExpired: async () => {
              calls++;
              return 0;
            },
          },
          intervalMs: 0,
        });
        never.start();
        await sleep(300);
        await never.stop();
        expect(calls).toBe(0);
      });
    });
  });
}

describe.skipIf((await storeKindsToRun()).every((k) => k.kind !== 'redis+postgres' || k.skip))(
  'postgresLock',
  () => {
    it('should let one of two connections to one database in, and free the lock after', async () => {
      const t = await makeApp('redis+postgres');
      const other = openDatabase(t.config.database);
      try {
        const a = postgresLock(t.database.db, 'warden:cleanup');
        const b = postgresLock(other.db, 'warden:cleanup');
        const result = await a.tryRun(async () => b.tryRun(async () => 'b inside a'));
        expect(result).toEqual({ ran: true, value: { ran: false } });
        expect(await b.tryRun(async () => 'b after a')).toEqual({ ran: true, value: 'b after a' });
      } finally {
        await other.close();
        await t.close();
      }
    });
  },
);
