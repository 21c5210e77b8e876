import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDownTo, migrateToLatest } from '../../src/db/migrations.js';
import type { NewUserRow, Role, UserStatus } from '../../src/db/schema.js';
import { rebuildActivity } from '../../src/users/activity.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR, MINUTE, pageErrorCode, signedIn } from './helpers.js';

const FROM = '2025-02-26'; // a Wednesday: the first week is clipped
const TO = '2025-03-19'; // a Wednesday too: so is the last
const T_FROM = Date.parse(`${FROM}T00:00:00Z`);
const T_END = Date.parse(`${TO}T00:00:00Z`) + DAY;

interface Seeded {
  role: Role;
  status: UserStatus;
  created: number;
  approved: number | null;
  rejected: number | null;
  /** What the database holds in decided_at (null for rows written by older code). */
  decided: number | null;
  updated: number;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function seedUsers(): Seeded[] {
  const rnd = random(42);
  const out: Seeded[] = [];
  const roles: Role[] = ['user', 'user', 'user', 'admin', 'superuser'];
  for (let i = 0; i < 90; i++) {
    // From ten days before the range to three days after it.
    const created = T_FROM - 10 * DAY + Math.floor(rnd() * 35 * DAY);
    const wait = Math.floor(rnd() * 4 * DAY) + MINUTE;
    const fate = rnd();
    const u: Seeded = {
      role: roles[i % roles.length],
      status: 'pending',
      created,
      approved: null,
      rejected: null,
      decided: null,
      updated: created,
    };
    if (fate < 0.45) {
      Object.assign(u, { status: 'approved', approved: created + wait, decided: created + wait });
    } else if (fate < 0.6) {
      Object.assign(u, { status: 'rejected', rejected: created + wait, decided: created + wait });
    } else if (fate < 0.68) {
      // Approved, later disabled: still one approval, and it left pending when approved.
      Object.assign(u, { status: 'disabled', approved: created + wait, decided: created + wait });
      u.updated = created + wait + DAY;
    } else if (fate < 0.74) {
      // Rejected, then enabled: one rejection, one approval, pending ended at the rejection.
      const rejected = created + wait;
      Object.assign(u, {
        status: 'approved',
        rejected,
        approved: rejected + 2 * DAY,
        decided: rejected,
      });
    } else if (fate < 0.8) {
      // Written before migration 0002 (or by a tool): only approved_at says when.
      Object.assign(u, { status: 'approved', approved: created + wait });
    } else if (fate < 0.84) {
      // Created already approved: never pending, not an approval.
      Object.assign(u, { status: 'approved', approved: created, decided: created });
    }
    u.updated = Math.max(u.updated, u.approved ?? 0, u.rejected ?? 0);
    out.push(u);
  }
  return out;
}

/** When the account left pending, by the definitions the page documents. */
function leftPending(u: Seeded): number | null {
  if (u.status === 'pending') return null;
  return u.decided ?? u.approved ?? u.rejected ?? u.updated;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : Math.round((s[mid - 1] + s[mid]) / 2);
}

/**
 * The page's medians are read from a histogram of waits (analytics-waits.test.ts checks them
 * closely): here, within 20% of the exact one, and null without approvals.
 */
function approximately(exact: number | null) {
  return exact === null ? null : expect.closeTo(exact, -Math.log10(exact * 0.2 * 2));
}

/** Bounds [low, high) that hold the exact median. */
function containing(exact: number | null) {
  if (exact === null) return null;
  return expect.toSatisfy(
    (b: unknown) => Array.isArray(b) && b[0] <= exact && (b[1] === null || exact < b[1]),
    `bounds holding ${exact}`,
  );
}

/** Periods of the range, computed with calendar arithmetic rather than the app's formulas. */
function expectedPeriods(unit: 'day' | 'week' | 'month', from: number, end: number) {
  const starts: number[] = [];
  const d = new Date(from);
  if (unit === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (unit === 'month') d.setUTCDate(1);
  while (d.getTime() < end) {
    starts.push(d.getTime());
    if (unit === 'day') d.setUTCDate(d.getUTCDate() + 1);
    else if (unit === 'week') d.setUTCDate(d.getUTCDate() + 7);
    else d.setUTCMonth(d.getUTCMonth() + 1);
  }
  return starts.map((s, i) => ({
    key: new Date(s).toISOString().slice(0, unit === 'month' ? 7 : 10),
    start: Math.max(s, from),
    end: Math.min(starts[i + 1] ?? Number.POSITIVE_INFINITY, end, nextStart(unit, s)),
  }));
}

function nextStart(unit: 'day' | 'week' | 'month', s: number): number {
  const d = new Date(s);
  if (unit === 'day') d.setUTCDate(d.getUTCDate() + 1);
  else if (unit === 'week') d.setUTCDate(d.getUTCDate() + 7);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return d.getTime();
}

const within = (at: number | null, p: { start: number; end: number }) =>
  at !== null && at >= p.start && at < p.end;

function expectedDecisions(users: Seeded[], unit: 'day' | 'week') {
  return expectedPeriods(unit, T_FROM, T_END).map((p) => {
    const approvals = users.filter((u) => within(u.approved, p) && u.approved! > u.created);
    return {
      ...p,
      registrations: users.filter((u) => within(u.created, p)).length,
      approvals: approvals.length,
      rejections: users.filter((u) => within(u.rejected, p) && u.rejected! > u.created).length,
      medianApprovalMs: approximately(median(approvals.map((u) => u.approved! - u.created))),
      medianApprovalBoundsMs: containing(median(approvals.map((u) => u.approved! - u.created))),
      pendingAtEnd: users.filter((u) => {
        const left = leftPending(u);
        return u.created < p.end && (left === null || left >= p.end);
      }).length,
    };
  });
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`analytics (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    const users = seedUsers();
    /** Sign-ins: [user index, time]. */
    const signIns: [number, number][] = [];
    const ids: number[] = [];
    const now = Date.now();

    beforeAll(async () => {
      t = await makeApp(kind);
      const boss = await t.createUser('boss@analytics.test', 'superuser');
      const rows: NewUserRow[] = users.map((u, i) => ({
        email: `u${i}@analytics.test`,
        email_normalized: `u${i}@analytics.test`,
        password_hash: 'x',
        role: u.role,
        status: u.status,
        created_at: u.created,
        approved_at: u.approved,
        approved_by: u.approved === null ? null : boss.id,
        rejected_at: u.rejected,
        rejected_by: u.rejected === null ? null : boss.id,
        decided_at: u.decided,
        last_login_at: null,
        updated_at: u.updated,
      }));
      const inserted = await t.database.db
        .insertInto('users')
        .values(rows)
        .returning('id')
        .execute();
      ids.push(...inserted.map((r) => r.id));
      // The boss is a user too, created (already approved) now.
      users.push({
        role: 'superuser',
        status: 'approved',
        created: boss.created_at,
        approved: boss.approved_at,
        rejected: null,
        decided: boss.decided_at,
        updated: boss.updated_at,
      });

      const rnd = random(7);
      for (let i = 0; i < 40; i++) {
        const user = Math.floor(rnd() * 30);
        const at = T_FROM - 3 * DAY + Math.floor(rnd() * 30 * DAY);
        signIns.push([user, at], [user, at + HOUR]);
      }
      // Around now, for the rolling windows.
      for (const [user, ago] of [
        [31, HOUR],
        [32, 20 * HOUR],
        [33, 3 * DAY],
        [31, 5 * DAY],
        [34, 20 * DAY],
        [35, 40 * DAY],
      ]) {
        signIns.push([user, now - ago]);
      }
      await t.database.db
        .insertInto('session_events')
        .values(
          signIns.map(([user, at], n) => ({
            session_id: `s${n}`,
            user_id: ids[user],
            kind: 'signed_in' as const,
            reason: null,
            actor_id: null,
            at,
            ip: null,
            user_agent: null,
          })),
        )
        .execute();
      // Endings are not sign-ins: they must not count as activity.
      await t.database.db
        .insertInto('session_events')
        .values({
          session_id: 'x',
          user_id: ids[50],
          kind: 'signed_out',
          reason: 'signed_out',
          actor_id: null,
          at: T_FROM + DAY,
          ip: null,
          user_agent: null,
        })
        .execute();
      // History written directly, as before an upgrade: the aggregates are recomputed from it.
      // The superuser's sign-in below goes through the live path instead.
      await rebuildActivity(t.database.db, t.database.dialect);
      admin = (await signedIn(t, 'boss@analytics.test')).client;
    });

    afterAll(async () => {
      await t?.close();
    });

    async function report(search: string) {
      const res = await admin.get(`/admin/analytics${search}`, 'json');
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    }

    it.each(['day', 'week'] as const)(
      'should count registrations, decisions, waits and the pending queue per %s as the test does',
      async (unit) => {
        const body = await report(`?from=${FROM}&to=${TO}&granularity=${unit}`);
        expect(body).toMatchObject({ from: FROM, to: TO, granularity: unit });
        const want = expectedDecisions(users, unit);
        expect(body.periods).toEqual(want);
        expect(body.periods.length).toBe(unit === 'day' ? 22 : 4);
        // The figures are not all zero: the seed covers every kind of event.
        for (const field of ['registrations', 'approvals', 'rejections'] as const) {
          expect(
            want.reduce((n, p) => n + p[field], 0),
            field,
          ).toBeGreaterThan(3);
        }

        const approvals = users.filter(
          (u) => within(u.approved, { start: T_FROM, end: T_END }) && u.approved! > u.created,
        );
        expect(body.totals).toEqual({
          registrations: want.reduce((n, p) => n + p.registrations, 0),
          approvals: approvals.length,
          rejections: want.reduce((n, p) => n + p.rejections, 0),
          medianApprovalMs: approximately(median(approvals.map((u) => u.approved! - u.created))),
          medianApprovalBoundsMs: containing(median(approvals.map((u) => u.approved! - u.created))),
          pendingAtStart: users.filter((u) => {
            const left = leftPending(u);
            return u.created < T_FROM && (left === null || left >= T_FROM);
          }).length,
        });
      },
    );

    it('should count users by role and by status, all of them', async () => {
      const body = await report(`?from=${FROM}&to=${TO}`);
      const count = (pick: (u: Seeded) => string, key: string) =>
        users.filter((u) => pick(u) === key).length;
      expect(body.byRole).toEqual({
        user: count((u) => u.role, 'user'),
        admin: count((u) => u.role, 'admin'),
        superuser: count((u) => u.role, 'superuser'),
      });
      expect(body.byStatus).toEqual({
        pending: count((u) => u.status, 'pending'),
        approved: count((u) => u.status, 'approved'),
        rejected: count((u) => u.status, 'rejected'),
        disabled: count((u) => u.status, 'disabled'),
      });
    });

    it('should count distinct users who signed in per day, week and month', async () => {
      const body = await report(`?from=${FROM}&to=${TO}`);
      // The test's own sign-in through the API counts too, but it happens now, after the range.
      for (const unit of ['day', 'week', 'month'] as const) {
        const want = expectedPeriods(unit, T_FROM, T_END).map((p) => ({
          ...p,
          users: new Set(signIns.filter(([, at]) => within(at, p)).map(([u]) => u)).size,
        }));
        expect(body.active[unit], unit).toEqual(want);
      }
      expect(body.active.month.map((p: { key: string }) => p.key)).toEqual(['2025-02', '2025-03']);
      expect(body.active.day.some((p: { users: number }) => p.users > 1)).toBe(true);
    });

    it('should count users who signed in in the last 24 hours, 7 days and 30 days', async () => {
      const body = await report('');
      // Plus the superuser's own sign-in of this suite.
      expect(body.activeNow).toEqual({ day: 3, week: 4, month: 5 });
    });

    it('should default to the last 30 days per day, today included', async () => {
      const body = await report('');
      const today = new Date().toISOString().slice(0, 10);
      expect(body.to).toBe(today);
      expect(body.granularity).toBe('day');
      expect(body.periods).toHaveLength(30);
      expect(body.periods.at(-1).key).toBe(today);
      // The superuser was created now: a registration today.
      expect(body.periods.at(-1).registrations).toBe(1);
    });

    it('should draw every chart on the page with a label and its figures as a table', async () => {
      const res = await admin.get(`/admin/analytics?from=${FROM}&to=${TO}&granularity=week`);
      expect(res.statusCode).toBe(200);
      const canvases = [
        ...res.body.matchAll(/<canvas id="chart-([a-z-]+)" role="img" aria-label="([^"]+)"/g),
      ];
      expect(canvases.map((m) => m[1])).toEqual([
        'registrations',
        'decisions',
        'approval-wait',
        'pending',
        'by-role',
        'by-status',
        'active-day',
        'active-week',
        'active-month',
      ]);
      for (const [, id, label] of canvases) {
        expect(label.length, id).toBeGreaterThan(20);
        expect(res.body).toContain(
          `<table class="table table-sm table-striped mt-2 table-fit" id="table-${id}">`,
        );
      }
      const body = await report(`?from=${FROM}&to=${TO}&granularity=week`);
      // Weeks cut by the range say which days they cover (each date kept on one line).
      const rowHeads = [...res.body.matchAll(/<th scope="row"[^>]*>([\s\S]*?)<\/th>/g)].map((m) =>
        m[1]!.replace(/<[^>]+>/g, ''),
      );
      expect(rowHeads).toContain('2025-02-26 to 2025-03-02');
      expect(rowHeads).toContain('2025-03-17 to 2025-03-19');
      // The chart names each week by its first day in the range, not a Monday before it.
      const week = /<canvas id="chart-active-week"[^>]*data-chart="([^"]*)"/.exec(res.body)![1]!;
      const spec = JSON.parse(week.replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
      expect(spec.labels[0]).toBe(FROM);
      expect(spec.labels.at(-1)).toBe('2025-03-17');
      expect(res.body).toContain('<span class="text-nowrap">2025-02-26</span>');
      const table = /id="table-registrations">([\s\S]*?)<\/table>/.exec(res.body)![1];
      const cells = [...table.matchAll(/<td class="text-end">(\d+)<\/td>/g)].map((m) =>
        Number(m[1]),
      );
      expect(cells).toEqual(body.periods.map((p: { registrations: number }) => p.registrations));
      expect(res.body).toContain('<script src="/static/chartjs/chart.umd.min.js" defer></script>');
      expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)/);
      expect(res.body).toContain(
        `id="total-registrations">${body.totals.registrations.toLocaleString('en')}<`,
      );
    });

    it('should serve Chart.js and the chart script from this origin', async () => {
      const lib = await admin.get('/static/chartjs/chart.umd.min.js');
      expect(lib.statusCode).toBe(200);
      expect(lib.headers['content-type']).toContain('javascript');
      const own = await admin.get('/static/analytics.js');
      expect(own.statusCode).toBe(200);
    });

    it.each([
      ['from=2025-02-30', 'from'],
      ['from=yesterday', 'from'],
      ['to=2025-13-01', 'to'],
      ['from=2025-03-02&to=2025-03-01', 'from'],
      ['from=2020-01-01&to=2025-01-01', 'to'],
      // With no end set, the range runs to today: too long is the start's fault.
      ['from=2020-01-01', 'from'],
      ['from=1999-12-31', 'from'],
      ['granularity=month', 'granularity'],
    ])('should refuse %s with 400 naming %s', async (search, field) => {
      const res = await admin.get(`/admin/analytics?${search}`, 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
      const page = await admin.get(`/admin/analytics?${search}`);
      expect(page.statusCode).toBe(400);
      expect(pageErrorCode(page.body)).toBe('WARDEN_VALIDATION');
    });

    it('should give every figure again once migration 0008 backfills a database without them', async () => {
      const searches = [
        `?from=${FROM}&to=${TO}&granularity=day`,
        `?from=${FROM}&to=${TO}&granularity=week`,
        '',
      ];
      const before = await Promise.all(searches.map(report));
      const { db, dialect } = t.database;
      // Every later migration's down, then 0008's own: the users and the history stay, the
      // aggregates go.
      await migrateDownTo(db, dialect, '0007_session_listing');
      await migrateToLatest(db, dialect);
      for (const [i, search] of searches.entries()) {
        const after = await report(search);
        // generatedAt is the time of the request; every figure must be the same.
        expect({ ...after, generatedAt: 0 }, search).toEqual({ ...before[i], generatedAt: 0 });
      }
    });

    it('should be for superusers only', async () => {
      await t.createUser('member@analytics.test', 'admin');
      const member = (await signedIn(t, 'member@analytics.test')).client;
      expect((await member.get('/admin/analytics', 'json')).statusCode).toBe(403);
      expect((await t.client().get('/admin/analytics', 'json')).statusCode).toBe(401);
    });
  });
}
