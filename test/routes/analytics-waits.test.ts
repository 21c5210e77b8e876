/**
 * The analytics page's figures that migration 0009 reads from aggregates, on every store:
 * - The medians of time to approval come from a histogram of waits per day: each is given
 *   with the bounds the exact median lies within (the test computes it from the users rows),
 *   about 9% apart, and the page says the figure is approximate. The users triggers keep the
 *   histogram through approvals, rejections, re-enabling, edits and deletes, and the
 *   migration's backfill gives the same figures as the triggers did.
 * - "Signed in in the last 24 hours / 7 / 30 days" sum per-day counts of latest sign-ins and
 *   read part of one day: the counts equal the test's own at any time of day, with sign-ins on
 *   the windows' edges, arriving out of order, and after a rebuild from the history.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillApprovalWaits } from '../../src/db/activity-tables.js';
import { migrateDownTo, migrateToLatest } from '../../src/db/migrations.js';
import { rebuildActivity, recordSignInActivity } from '../../src/users/activity.js';
import { histogramMedian, UserAnalytics } from '../../src/users/analytics.js';
import { UserRepo } from '../../src/users/user-repo.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR, MINUTE, signedIn } from './helpers.js';

const at = (iso: string) => Date.parse(`${iso}Z`);
const FROM = '2025-03-03'; // a Monday
const TO = '2025-03-16'; // a Sunday: two whole weeks
const T_FROM = at(`${FROM}T00:00`);
/** Eight buckets to a doubling: one bucket spans a factor of 2^(1/8) (plus rounding). */
const BUCKET_RATIO = 2 ** (1 / 8);

function random(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function exactMedian(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : Math.round((s[mid - 1] + s[mid]) / 2);
}

describe('histogramMedian', () => {
  const lows = [0, 1000, 2000, 4000, 8000];

  it('should give nothing for an empty histogram', () => {
    expect(histogramMedian(new Map(), lows)).toBeNull();
    expect(histogramMedian(new Map([[2, 0]]), lows)).toBeNull();
  });

  it('should place the middle value within its bucket by its rank there', () => {
    // Three values in [2000, 4000): the middle one is the second of three, at the middle.
    expect(histogramMedian(new Map([[2, 3]]), lows)).toEqual({ ms: 3000, bounds: [2000, 4000] });
    // The middle two in different buckets: bounds from the first's start to the second's end.
    expect(
      histogramMedian(
        new Map([
          [1, 1],
          [3, 1],
        ]),
        lows,
      ),
    ).toEqual({ ms: 3750, bounds: [1000, 8000] });
  });

  it('should have no end past the last bucket', () => {
    expect(histogramMedian(new Map([[4, 5]]), lows)).toEqual({ ms: 8000, bounds: [8000, null] });
  });
});

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`analytics medians from the wait histogram (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    let repo: UserRepo;
    let boss: number;

    beforeAll(async () => {
      t = await makeApp(kind);
      boss = (await t.createUser('boss@waits.test', 'superuser')).id;
      repo = new UserRepo(t.database.db, t.database.dialect);
      admin = (await signedIn(t, 'boss@waits.test')).client;

      // 300 registrations over the two weeks, each decided after a wait from 20 s to 6 days
      // (even on a log scale), through the application's own writes.
      const rnd = random(11);
      for (let i = 0; i < 300; i++) {
        const created = T_FROM - 2 * DAY + Math.floor(rnd() * 14 * DAY);
        const wait = Math.floor(20_000 * ((6 * DAY) / 20_000) ** rnd()) + (i % 7);
        const u = await repo.create({
          email: `w${i}@waits.test`,
          passwordHash: 'x',
          role: 'user',
          status: 'pending',
          now: created,
        });
        const fate = rnd();
        if (fate < 0.75) await repo.decidePending([u.id], 'approved', boss, created + wait);
        else if (fate < 0.9) await repo.decidePending([u.id], 'rejected', boss, created + wait);
        else if (fate < 0.95) {
          // Rejected, then enabled: one approval, waited until then.
          await repo.decidePending([u.id], 'rejected', boss, created + wait);
          await repo.setStatus(u.id, 'approved', boss, created + wait + DAY);
        }
      }
    });

    afterAll(async () => {
      await t?.close();
    });

    async function report(search: string) {
      const res = await admin.get(`/admin/analytics${search}`, 'json');
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    }

    /** The approvals' waits by the test's own reading of the users rows. */
    async function waits(start: number, end: number): Promise<number[]> {
      const rows = await t.database.db
        .selectFrom('users')
        .select(['created_at', 'approved_at'])
        .execute();
      return rows
        .filter((r) => r.approved_at !== null && r.approved_at > r.created_at)
        .filter((r) => r.approved_at! >= start && r.approved_at! < end)
        .map((r) => r.approved_at! - r.created_at);
    }

    /** Every median of a report lies within its bounds, as the exact one does, about 9% apart. */
    async function expectMediansWithinBounds(unit: 'day' | 'week') {
      const body = await report(`?from=${FROM}&to=${TO}&granularity=${unit}`);
      const medians = [
        ...body.periods.map((p: Record<string, unknown>) => ({ ...p })),
        { ...body.totals, start: T_FROM, end: at(`${TO}T00:00`) + DAY },
      ];
      let compared = 0;
      for (const p of medians) {
        const exact = exactMedian(await waits(p.start, p.end));
        if (exact === null) {
          expect(p.medianApprovalMs).toBeNull();
          expect(p.medianApprovalBoundsMs).toBeNull();
          continue;
        }
        const [low, high] = p.medianApprovalBoundsMs;
        expect(exact, JSON.stringify(p)).toBeGreaterThanOrEqual(low);
        expect(exact, JSON.stringify(p)).toBeLessThan(high);
        expect(p.medianApprovalMs).toBeGreaterThanOrEqual(low);
        expect(p.medianApprovalMs).toBeLessThan(high);
        // Within a bucket's width of the exact median: each middle approval is placed within
        // its own bucket, and the mean of two such is as close to theirs.
        expect(Math.abs(p.medianApprovalMs - exact) / exact).toBeLessThan(BUCKET_RATIO - 1 + 0.001);
        compared++;
      }
      expect(compared).toBeGreaterThan(unit === 'day' ? 10 : 2);
      return body;
    }

    it.each(['day', 'week'] as const)(
      'should give each median per %s within the bounds the exact one lies in',
      async (unit) => {
        const body = await expectMediansWithinBounds(unit);
        // The overall median is in one bucket here (151 approvals or so, odd or not).
        const [low, high] = body.totals.medianApprovalBoundsMs;
        expect(high / low).toBeLessThan(BUCKET_RATIO * 1.001);
      },
    );

    it('should say on the page that the medians are approximate, and to within what', async () => {
      const res = await admin.get(`/admin/analytics?from=${FROM}&to=${TO}&granularity=week`);
      expect(res.statusCode).toBe(200);
      const body = await report(`?from=${FROM}&to=${TO}&granularity=week`);
      const headline = /id="total-median-wait">([^<]*)</.exec(res.body)?.[1];
      expect(headline).toMatch(/^≈ \d/);
      expect(res.body).toMatch(
        /id="total-median-wait-note">to within its histogram bucket: [^<]+ to [^<]+</,
      );
      const table = /id="table-approval-wait">([\s\S]*?)<\/table>/.exec(res.body)![1];
      const cells = [...table.matchAll(/<td class="text-end">([\s\S]*?)<\/td>/g)].map((m) =>
        m[1]!.replace(/<[^>]+>/g, ''),
      );
      expect(cells).toHaveLength(body.periods.length);
      for (const cell of cells) expect(cell).toMatch(/^≈ .+ \(.+ to .+\)$/);
      expect(res.body).toContain(
        'Median time from registration to approval per week (approximate)',
      );
    });

    it('should keep the histogram through edits and deletes as a rebuild from the rows gives it', async () => {
      const { db } = t.database;
      const rows = await db
        .selectFrom('users')
        .select(['id', 'approved_at', 'created_at'])
        .where('approved_at', 'is not', null)
        .orderBy('id')
        .execute();
      const waited = rows.filter((r) => r.approved_at! > r.created_at);
      // A tool deletes some approved accounts, moves some approvals, and one row is inserted
      // approved after a wait (as an import would).
      await db
        .deleteFrom('users')
        .where(
          'id',
          'in',
          waited.slice(0, 20).map((r) => r.id),
        )
        .execute();
      for (const r of waited.slice(20, 30)) {
        await db
          .updateTable('users')
          .set({ approved_at: r.approved_at! + 5 * HOUR })
          .where('id', '=', r.id)
          .execute();
      }
      await db
        .updateTable('users')
        .set({ created_at: T_FROM + DAY })
        .where('id', '=', waited[30].id)
        .execute();
      await db
        .insertInto('users')
        .values({
          email: 'import@waits.test',
          email_normalized: 'import@waits.test',
          password_hash: 'x',
          role: 'user',
          status: 'approved',
          created_at: T_FROM + 3 * DAY,
          approved_at: T_FROM + 3 * DAY + 42 * MINUTE,
          approved_by: boss,
          rejected_at: null,
          rejected_by: null,
          decided_at: T_FROM + 3 * DAY + 42 * MINUTE,
          last_login_at: null,
          updated_at: T_FROM + 3 * DAY + 42 * MINUTE,
        })
        .execute();
      await expectMediansWithinBounds('day');

      const histogram = async () =>
        (
          await sql<{ day: number; bucket: number; n: number }>`select day, bucket, n
            from approval_waits where n <> 0 order by day, bucket`.execute(db)
        ).rows.map((r) => [Number(r.day), Number(r.bucket), Number(r.n)]);
      const kept = await histogram();
      expect(kept.length).toBeGreaterThan(100);
      await sql`delete from approval_waits`.execute(db);
      await fillApprovalWaits(db);
      expect(await histogram()).toEqual(kept);
    });

    it('should give the same figures once migration 0009 backfills a database without them', async () => {
      const searches = [`?from=${FROM}&to=${TO}&granularity=day`, `?from=${FROM}&to=${TO}`, ''];
      const before = await Promise.all(searches.map(report));
      const { db, dialect } = t.database;
      // The database as 0009's down leaves it (and the downs of any migration after it).
      await migrateDownTo(db, dialect, '0008_activity');
      const result = await migrateToLatest(db, dialect);
      expect(result.results?.[0]?.migrationName).toBe('0009_analytics_per_day');
      for (const [i, search] of searches.entries()) {
        const after = await report(search);
        expect({ ...after, generatedAt: 0 }, search).toEqual({ ...before[i], generatedAt: 0 });
      }
      expect(before[1].totals.medianApprovalMs).toBeGreaterThan(0);
    });
  });

  describe.skipIf(skip !== null)(`analytics "signed in in the last N days" (${kind})`, () => {
    let t: TestApp;
    /** [user, time] in the order they are recorded. */
    const signIns: [number, number][] = [];
    const DAY0 = at('2025-06-10T00:00');

    beforeAll(async () => {
      t = await makeApp(kind);
      const rnd = random(5);
      // 60 people over 40 days, more of them lately, some sign-ins arriving late (out of order).
      for (let i = 0; i < 400; i++) {
        const user = 1000 + Math.floor(rnd() * 60);
        const when = DAY0 - Math.floor(rnd() ** 2 * 40 * DAY);
        signIns.push([user, when]);
      }
      // On the edges of the windows for a `now` of 2025-06-10T03:00 and T21:00.
      for (const now of [at('2025-06-10T03:00'), at('2025-06-10T21:00')]) {
        for (const [user, when] of [
          [2000, now - DAY],
          [2001, now - DAY + 1],
          [2002, now - 7 * DAY],
          [2003, now - 7 * DAY + 1],
          [2004, now - 30 * DAY],
          [2005, now - 30 * DAY + 1],
          [2006, now],
        ]) {
          signIns.push([user + (now % DAY === 3 * HOUR ? 0 : 100), when]);
        }
      }
      signIns.push([2200, DAY0 + 2 * DAY]); // later than every `now` below: a clock set back
      for (const [user, when] of signIns) {
        await recordSignInActivity(t.database.db, t.database.dialect, user, when);
      }
    });

    afterAll(async () => {
      await t?.close();
    });

    /** Users whose latest sign-in is in (now - window, now], by the test's own count. */
    function expected(now: number) {
      const latest = new Map<number, number>();
      for (const [user, when] of signIns) latest.set(user, Math.max(latest.get(user) ?? 0, when));
      const count = (ms: number) =>
        [...latest.values()].filter((when) => when > now - ms && when <= now).length;
      return { day: count(DAY), week: count(7 * DAY), month: count(30 * DAY) };
    }

    const NOWS = [
      '2025-06-10T00:00',
      '2025-06-10T03:00',
      '2025-06-10T11:59',
      '2025-06-10T12:01',
      '2025-06-10T21:00',
      '2025-06-10T23:59',
    ].map(at);

    async function activeNow(now: number) {
      const analytics = new UserAnalytics(t.database.db, t.database.dialect);
      const report = await analytics.report(
        { from: DAY0 - 6 * DAY, to: DAY0 + DAY, granularity: 'day' },
        now,
      );
      return report.activeNow;
    }

    it('should count the users whose latest sign-in is in each window, at any time of day', async () => {
      for (const now of NOWS) {
        const want = expected(now);
        expect(await activeNow(now), new Date(now).toISOString()).toEqual(want);
      }
      expect(expected(at('2025-06-10T21:00')).day).toBeGreaterThan(5);
    });

    it('should count the same once the aggregates are rebuilt from the history', async () => {
      const { db } = t.database;
      await db
        .insertInto('session_events')
        .values(
          signIns.map(([user, when], n) => ({
            session_id: `s${n}`,
            user_id: user,
            kind: 'signed_in' as const,
            reason: null,
            actor_id: null,
            at: when,
            ip: null,
            user_agent: null,
          })),
        )
        .execute();
      const live = await Promise.all(NOWS.map(activeNow));
      await rebuildActivity(db, t.database.dialect);
      expect(await Promise.all(NOWS.map(activeNow))).toEqual(live);
      expect(live).toEqual(NOWS.map(expected));
    });
  });
}
