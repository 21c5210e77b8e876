import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDownTo, migrateToLatest } from '../../src/db/migrations.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { rebuildActivity } from '../../src/users/activity.js';
import { UserRepo } from '../../src/users/user-repo.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR } from './helpers.js';

const at = (iso: string) => Date.parse(`${iso}Z`);
const BOSS = 'boss@activity.test';

/** [who, when]: in the order they happen; some go back in time. */
const SIGN_INS: [string, number][] = [
  ['u2', at('2025-02-27T10:00')],
  ['u0', at('2025-03-03T09:00')],
  ['u0', at('2025-03-03T15:00')], // the same day again: one active user
  ['u1', at('2025-03-05T08:00')],
  ['u4', at('2025-03-04T12:00')],
  ['u0', at('2025-03-05T18:00')],
  ['u3', at('2025-03-06T07:00')],
  ['u1', at('2025-03-04T22:00')], // the clock set back a day: u1's first day in the week moves
  ['u4', at('2025-03-08T12:00')],
  ['u0', at('2025-03-09T23:59')],
  ['u2', at('2025-03-10T00:00')],
  ['u1', at('2025-03-08T09:00')],
  ['u2', at('2025-02-28T12:00')], // back into February: u2's last day in February moves
  ['u5', at('2025-03-31T23:59')],
  ['u5', at('2025-04-01T00:01')],
  ['u3', at('2025-04-01T08:00')],
];
const NOW = at('2025-04-01T12:00');

function isoDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

/** Distinct people who signed in within [start, end), by the test's own count. */
function distinct(signIns: [string, number][], start: number, end: number): number {
  return new Set(signIns.filter(([, t]) => t >= start && t < end).map(([who]) => who)).size;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`analytics active users from sign-ins (${kind})`, () => {
    let t: TestApp;
    let now = SIGN_INS[0][1];
    let admin: Client;
    const done: [string, number][] = [];

    beforeAll(async () => {
      t = await makeApp(kind, {
        clock: () => now,
        // Redis keeps a session until its retention ends by Redis's own clock: past 2025 here.
        env: { SESSION_RETENTION: '36500d' },
        // The app's clock goes back to 2025; the store refuses a create that reaches it after the
        // caller's deadline by its own (real) clock, so these creates carry no deadline.
        wrapStore: (store) =>
          new Proxy(store, {
            get(target, prop, receiver) {
              if (prop === 'create') return (s: SessionRecord) => target.create(s);
              const value = Reflect.get(target, prop, receiver);
              return typeof value === 'function' ? value.bind(target) : value;
            },
          }),
      });
      await t.createUser(BOSS, 'superuser');
      for (const who of new Set(SIGN_INS.map(([w]) => w)))
        await t.createUser(`${who}@activity.test`);
      for (const [who, when] of SIGN_INS) {
        now = when;
        await t.client().login(`${who}@activity.test`);
        done.push([who, when]);
      }
      now = NOW;
      admin = t.client();
      await admin.login(BOSS);
      done.push(['boss', NOW]);
    });

    afterAll(async () => {
      await t?.close();
    });

    async function report(search: string) {
      const res = await admin.get(`/admin/analytics${search}`, 'json');
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as {
        active: Record<
          'day' | 'week' | 'month',
          { key: string; start: number; end: number; users: number }[]
        >;
        activeNow: { day: number; week: number; month: number };
        byStatus: Record<string, number>;
      };
    }

    /** Every active-user figure of a range against the test's own count. */
    async function expectRange(from: string, to: string) {
      const body = await report(`?from=${from}&to=${to}`);
      const first = at(`${from}T00:00`);
      const end = at(`${to}T00:00`) + DAY;
      for (const unit of ['day', 'week', 'month'] as const) {
        const periods = body.active[unit];
        expect(periods.length, unit).toBeGreaterThan(0);
        expect(periods[0].start).toBe(first);
        expect(periods.at(-1)?.end).toBe(end);
        for (const p of periods) {
          expect(p.users, `${unit} ${p.key} from ${isoDay(p.start)}`).toBe(
            distinct(done, p.start, p.end),
          );
        }
      }
      return body;
    }

    it('should count each person once per day, week and month, whatever the order of sign-ins', async () => {
      const body = await expectRange('2025-02-26', '2025-04-01');
      const day = (key: string) => body.active.day.find((p) => p.key === key)?.users;
      expect(day('2025-03-03')).toBe(1); // u0 twice
      expect(day('2025-03-04')).toBe(2); // u4, then u1 with the clock set back
      expect(day('2025-04-01')).toBe(3); // u5, u3 and the superuser
      const week = body.active.week.find((p) => p.key === '2025-03-03');
      expect(week?.users).toBe(4); // u0, u1, u3, u4 (u0 again on Sunday night)
      const feb = body.active.month.find((p) => p.key === '2025-02');
      expect(feb?.users).toBe(1); // u2 on two days
    });

    it.each([
      ['2025-03-05', '2025-03-07', 'inside one week and one month, sign-ins on both sides'],
      ['2025-03-04', '2025-03-09', 'a week cut at its start'],
      ['2025-03-03', '2025-03-05', 'a week cut at its end'],
      ['2025-02-28', '2025-03-10', 'months and weeks cut at both ends of the range'],
      ['2025-03-20', '2025-03-31', 'a span with one sign-in at its last minute'],
      ['2025-04-02', '2025-04-10', 'after every sign-in'],
    ])('should count %s to %s (%s) as the sign-ins say', async (from, to) => {
      await expectRange(from, to);
    });

    it('should count people by their latest sign-in in the last 24 hours, 7 and 30 days', async () => {
      const body = await report('');
      expect(body.activeNow).toEqual({
        day: distinct(done, NOW - DAY + 1, NOW + 1),
        week: distinct(done, NOW - 7 * DAY + 1, NOW + 1),
        month: distinct(done, NOW - 30 * DAY + 1, NOW + 1),
      });
      expect(body.activeNow).toEqual({ day: 3, week: 3, month: 7 });
    });

    it('should give the same figures when the aggregates are rebuilt from the history', async () => {
      const search = '?from=2025-02-20&to=2025-04-05&granularity=week';
      const live = await report(search);
      await rebuildActivity(t.database.db, t.database.dialect);
      expect(await report(search)).toEqual(live);
    });

    it('should backfill the aggregates from the history when migration 0008 runs', async () => {
      const search = '?from=2025-02-20&to=2025-04-05';
      const before = await report(search);
      const { db, dialect } = t.database;
      // The database as it was before 0008 (the downs of every later migration, then its own):
      // users and history, no
      // aggregates.
      await migrateDownTo(db, dialect, '0007_session_listing');
      const result = await migrateToLatest(db, dialect);
      expect(result.results?.map((r) => r.migrationName).slice(0, 2)).toEqual([
        '0008_activity',
        '0009_analytics_per_day',
      ]);
      const after = await report(search);
      // Every figure of the page, the users' counters as well as the sign-ins.
      expect(after).toEqual(before);
      expect(after.active.day.some((p) => p.users > 1)).toBe(true);
      expect(after.byStatus.approved).toBe(7);
    });

    it("should keep the accounts' figures right through the app's own writes", async () => {
      const repo = new UserRepo(t.database.db, t.database.dialect);
      const boss = (await repo.findByEmail(BOSS))?.id ?? null;
      const monday = at('2025-05-05T09:00');
      const ids: number[] = [];
      for (let i = 0; i < 6; i++) {
        const u = await repo.create({
          email: `w${i}@activity.test`,
          passwordHash: 'x',
          role: 'user',
          status: i === 5 ? 'approved' : 'pending', // w5 is created approved: never pending
          now: monday + i * HOUR,
        });
        ids.push(u.id);
      }
      await repo.decidePending([ids[0], ids[1]], 'approved', boss ?? 0, monday + DAY);
      await repo.decidePending([ids[2]], 'rejected', boss ?? 0, monday + 2 * DAY);
      await repo.setStatus(ids[0], 'disabled', boss, monday + 3 * DAY);
      await repo.setRole(ids[1], 'admin', monday + 3 * DAY);
      await repo.setStatus(ids[2], 'approved', boss, monday + 4 * DAY); // enabled after rejection
      await repo.setPassword(ids[3], 'y', monday + 4 * DAY); // still pending

      const res = await admin.get('/admin/analytics?from=2025-05-05&to=2025-05-11', 'json');
      const body = res.json();
      const rows = await t.database.db.selectFrom('users').selectAll().execute();
      const left = (u: (typeof rows)[number]) =>
        u.status === 'pending'
          ? null
          : (u.decided_at ?? u.approved_at ?? u.rejected_at ?? u.updated_at);
      const inDay = (v: number | null, start: number) =>
        v !== null && v >= start && v < start + DAY;
      const want = Array.from({ length: 7 }, (_, d) => {
        const start = at('2025-05-05T00:00') + d * DAY;
        return {
          key: isoDay(start),
          start,
          end: start + DAY,
          registrations: rows.filter((u) => inDay(u.created_at, start)).length,
          approvals: rows.filter(
            (u) => inDay(u.approved_at, start) && u.approved_at! > u.created_at,
          ).length,
          rejections: rows.filter(
            (u) => inDay(u.rejected_at, start) && u.rejected_at! > u.created_at,
          ).length,
          pendingAtEnd: rows.filter((u) => {
            const l = left(u);
            return u.created_at < start + DAY && (l === null || l >= start + DAY);
          }).length,
        };
      });
      expect(
        body.periods.map(
          ({
            medianApprovalMs: _,
            medianApprovalBoundsMs: __,
            ...p
          }: {
            medianApprovalMs: unknown;
            medianApprovalBoundsMs: unknown;
          }) => p,
        ),
      ).toEqual(want);
      expect(want.map((p) => p.pendingAtEnd)).toEqual([5, 3, 2, 2, 2, 2, 2]);
      expect(body.byRole.admin).toBe(rows.filter((u) => u.role === 'admin').length);
      expect(body.byStatus).toEqual({
        pending: 2,
        approved: rows.filter((u) => u.status === 'approved').length,
        rejected: 0,
        disabled: 1,
      });
    });

    it('should keep counting sign-ins after the backfill', async () => {
      now = NOW + HOUR;
      await t.client().login('u0@activity.test');
      done.push(['u0', now]);
      admin = t.client(); // the hour went by: a fresh session for the superuser too
      await admin.login(BOSS);
      done.push(['boss', now]);
      const body = await report('?from=2025-04-01&to=2025-04-01');
      expect(body.active.day[0].users).toBe(
        distinct(done, at('2025-04-01T00:00'), at('2025-04-02T00:00')),
      );
      expect(body.active.day[0].users).toBe(4);
    });
  });
}
