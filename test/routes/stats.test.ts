/**
 * GET /admin/sessions/stats on both stores: every figure of the JSON form (and the page's main
 * counts) against counts the test works out itself from the fleet it seeded with chosen
 * times, roles and browsers; sign-ins per hour and per day from history rows at chosen times.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/db/schema.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR, MINUTE, signedIn } from './helpers.js';

const UA = {
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  chromeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  safariMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  // What the test client sends (support/app.ts).
  chromeLinux:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
} as const;
const CLIENT_OF: Record<string, { browser: string; os: string }> = {
  [UA.firefoxLinux]: { browser: 'Firefox', os: 'Linux' },
  [UA.chromeWindows]: { browser: 'Chrome', os: 'Windows' },
  [UA.safariMac]: { browser: 'Safari', os: 'Mac OS' },
  [UA.chromeLinux]: { browser: 'Chrome', os: 'Linux' },
};

interface Seeded {
  userId: number;
  role: Role;
  email: string;
  createdAt: number;
  expiresAt: number;
  userAgent: string;
}

interface Report {
  now: number;
  breaker: { state: string; since: number };
  sessions: Section<{
    total: number;
    active: number;
    expired: number;
    byRole: { role: string; total: number; active: number }[];
    topUsers: { userId: number; email: string; role: string; sessions: number }[];
    topUsersSampledFrom: number | null;
    clientSample: { read: number; active: number; complete: boolean };
    browsers: { name: string; count: number; share: number }[];
    os: { name: string; count: number; share: number }[];
  }>;
  activity: Section<{
    signInsPerHour: { start: number; count: number }[];
    signInsPerDay: { start: number; count: number }[];
  }>;
  store: Section<{ kind: string; roundTripMs: number; redis: Record<string, unknown> | null }>;
  database: Section<{
    dialect: string;
    roundTripMs: number;
    sizeBytes: number;
    tables: { name: string; rows: number }[];
  }>;
  health: Section<{
    remaining: { label: string; count: number }[];
    expired: number;
    oldestExpiredAt: number | null;
    dangling: { key: string; count: number }[];
    danglingTotal: number;
    complete: boolean;
  }>;
}

interface Section<T> {
  takenAt: number;
  tookMs: number;
  data: T;
  error: string | null;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`GET /admin/sessions/stats (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    let report: Report;
    const fleet: Seeded[] = [];
    /** Sign-in history rows the test wrote, with no session behind them (ended long ago). */
    const pastSignIns: number[] = [];
    const now = Date.now();

    /** A session with a chosen creation time, deadline and browser, plus its sign-in row. */
    async function plant(
      user: { id: number; role: Role; email: string },
      opts: { createdAt: number; expiresAt: number; userAgent: string },
    ) {
      const id = createHash('sha256').update(randomBytes(32)).digest('hex');
      const record: SessionRecord = {
        id,
        userId: user.id,
        createdAt: opts.createdAt,
        lastSeenAt: opts.createdAt,
        idleExpiresAt: opts.expiresAt,
        absoluteExpiresAt: Math.max(opts.expiresAt, now + 2 * DAY),
        ip: '198.51.100.4',
        userAgent: opts.userAgent,
      };
      await t.store.create(record);
      await signInRow(user.id, id, opts.createdAt);
      fleet.push({ userId: user.id, role: user.role, email: user.email, ...opts });
    }

    async function signInRow(userId: number, sessionId: string, at: number) {
      await t.database.db
        .insertInto('session_events')
        .values({ session_id: sessionId, user_id: userId, kind: 'signed_in', at })
        .execute();
    }

    beforeAll(async () => {
      t = await makeApp(kind);
      const make = async (email: string, role: Role) => ({
        ...(await t.createUser(email, role)),
        role,
        email,
      });
      const root = await make('root@example.com', 'superuser');
      const u1 = await make('una@example.com', 'user');
      const u2 = await make('udo@example.com', 'user');
      const u3 = await make('uma@example.com', 'user');
      const a1 = await make('ada@example.com', 'admin');
      const s2 = await make('sam@example.com', 'superuser');

      // Active sessions by time left: 4 under 5 min, 20 within the hour, 8 within 6 h,
      // 3 within 24 h, 1 beyond; created at chosen hours of the last day.
      const left = [
        ...Array(4).fill(2 * MINUTE),
        ...Array(20).fill(30 * MINUTE),
        ...Array(8).fill(3 * HOUR),
        ...Array(3).fill(10 * HOUR),
        25 * HOUR,
      ];
      const owners = [
        ...Array(15).fill([u1, UA.firefoxLinux]),
        ...Array(10).fill([u2, UA.chromeWindows]),
        ...Array(6).fill([u3, UA.safariMac]),
        ...Array(3).fill([a1, UA.firefoxLinux]),
        ...Array(2).fill([s2, UA.chromeWindows]),
      ] as [typeof u1, string][];
      for (const [i, [user, userAgent]] of owners.entries()) {
        await plant(user, {
          createdAt: now - ((i % 20) + 1) * HOUR + i * 1000,
          expiresAt: now + left[i]!,
          userAgent,
        });
      }
      // 12 expired sessions, created days ago.
      const expired = [
        ...Array(4).fill(u1),
        ...Array(3).fill(u2),
        ...Array(3).fill(u3),
        ...Array(2).fill(a1),
      ] as (typeof u1)[];
      for (const [i, user] of expired.entries()) {
        await plant(user, {
          createdAt: now - (i + 2) * DAY - i * HOUR,
          expiresAt: now - (i + 1) * HOUR,
          userAgent: UA.safariMac,
        });
      }
      // Older history: sign-ins 10, 20 and 40 days ago (the last outside the 30-day window).
      for (const days of [10, 10, 20, 40]) {
        const at = now - days * DAY;
        pastSignIns.push(at);
        await signInRow(u2.id, createHash('sha256').update(String(at)).digest('hex'), at);
      }

      const login = await signedIn(t, 'root@example.com');
      admin = login.client;
      const own = await t.store.get(login.sessionId);
      fleet.push({
        userId: root.id,
        role: 'superuser',
        email: root.email,
        createdAt: own!.createdAt,
        expiresAt: Math.min(own!.idleExpiresAt, own!.absoluteExpiresAt),
        userAgent: UA.chromeLinux,
      });

      const res = await admin.get('/admin/sessions/stats', 'json');
      expect(res.statusCode).toBe(200);
      report = res.json() as Report;
    });

    afterAll(async () => {
      await t?.close();
    });

    const activeAt = (at: number) => fleet.filter((s) => s.expiresAt > at);

    it('should count stored, active and expired sessions', () => {
      const s = report.sessions.data;
      expect(report.sessions.error).toBeNull();
      expect(s.active).toBe(37);
      expect(s.expired).toBe(12);
      expect(s.total).toBe(49);
      expect(activeAt(report.now)).toHaveLength(37);
    });

    it('should count sessions by role', () => {
      const want = (['user', 'admin', 'superuser'] as const).map((role) => {
        const mine = fleet.filter((s) => s.role === role);
        return { role, total: mine.length, active: mine.filter((s) => s.expiresAt > now).length };
      });
      expect(report.sessions.data.byRole).toEqual(want);
      expect(want.find((r) => r.role === 'admin')).toEqual({ role: 'admin', total: 5, active: 3 });
    });

    it('should rank the users with the most sessions', () => {
      const perUser = new Map<string, number>();
      for (const s of fleet) perUser.set(s.email, (perUser.get(s.email) ?? 0) + 1);
      const want = [...perUser].sort((a, b) => b[1] - a[1]).map(([email, n]) => [email, n]);

      const top = report.sessions.data.topUsers;
      expect(top.map((u) => [u.email, u.sessions])).toEqual(want);
      expect(top[0]).toMatchObject({ email: 'una@example.com', role: 'user', sessions: 19 });
      expect(report.sessions.data.topUsersSampledFrom).toBeNull();
    });

    it('should break active sessions down by browser and OS, over every session', () => {
      const active = activeAt(report.now);
      const tally = (pick: 'browser' | 'os') => {
        const counts = new Map<string, number>();
        for (const s of active) {
          const name = CLIENT_OF[s.userAgent]![pick];
          counts.set(name, (counts.get(name) ?? 0) + 1);
        }
        return Object.fromEntries(counts);
      };
      const data = report.sessions.data;
      expect(Object.fromEntries(data.browsers.map((b) => [b.name, b.count]))).toEqual(
        tally('browser'),
      );
      expect(Object.fromEntries(data.os.map((b) => [b.name, b.count]))).toEqual(tally('os'));
      // Most first: Firefox 15 + 3, Chrome 10 + 2 + root's 1, Safari 6.
      expect(data.browsers.map((b) => b.name)).toEqual(['Firefox', 'Chrome', 'Safari']);
      expect(data.browsers[0]!.share).toBeCloseTo(18 / 37, 5);
      expect(data.clientSample).toEqual({ read: 49, active: 37, complete: true });
    });

    it('should count sign-ins per hour over the last 24 hours and per day over 30 days', () => {
      const signIns = [...fleet.map((s) => s.createdAt), ...pastSignIns];
      const { signInsPerHour: hours, signInsPerDay: days } = report.activity.data;

      expect(hours).toHaveLength(24);
      expect(days).toHaveLength(30);
      const taken = report.activity.takenAt;
      expect(hours.at(-1)!.start).toBe(Math.floor(taken / HOUR) * HOUR);
      expect(days.at(-1)!.start).toBe(Math.floor(taken / DAY) * DAY);
      for (const [i, h] of hours.entries()) {
        if (i > 0) expect(h.start - hours[i - 1]!.start).toBe(HOUR);
        const want = signIns.filter((at) => at >= h.start && at < h.start + HOUR).length;
        expect(h.count, `hour ${new Date(h.start).toISOString()}`).toBe(want);
      }
      for (const d of days) {
        const want = signIns.filter((at) => at >= d.start && at < d.start + DAY).length;
        expect(d.count, `day ${new Date(d.start).toISOString()}`).toBe(want);
      }
      // Every session planted within the last day, and the two sign-ins 10 days ago, show up.
      expect(hours.reduce((n, h) => n + h.count, 0)).toBe(
        signIns.filter((at) => at >= hours[0]!.start).length,
      );
      // The sign-in 40 days ago is outside the window; those 10 and 20 days ago are in.
      expect(days.reduce((n, d) => n + d.count, 0)).toBe(signIns.length - 1);
    });

    it('should report sessions by time left, expired ones and the oldest deadline', () => {
      const h = report.health.data;
      // Root's own session has the default 30 min idle timeout.
      expect(h.remaining).toEqual([
        { label: 'under 5 min', count: 4 },
        { label: '5 min to 1 h', count: 21 },
        { label: '1 h to 6 h', count: 8 },
        { label: '6 h to 24 h', count: 3 },
        { label: 'over 24 h', count: 1 },
      ]);
      expect(h.expired).toBe(12);
      expect(h.oldestExpiredAt).toBe(now - 12 * HOUR);
      expect(h.danglingTotal).toBe(0);
      expect(h.complete).toBe(true);
    });

    it("should describe the store and the database with Warden's own round trips", () => {
      const store = report.store.data;
      expect(store.kind).toBe(kind === 'sqlite' ? 'sql' : 'redis');
      expect(store.roundTripMs).toBeGreaterThan(0);
      if (kind === 'sqlite') {
        expect(store.redis).toBeNull();
      } else {
        expect(store.redis).toMatchObject({
          version: expect.stringMatching(/^\d+\.\d+/),
          uptimeSeconds: expect.any(Number),
          usedMemoryBytes: expect.any(Number),
          peakMemoryBytes: expect.any(Number),
          fragmentationRatio: expect.any(Number),
          connectedClients: expect.any(Number),
          opsPerSecond: expect.any(Number),
          expiredKeys: expect.any(Number),
          evictedKeys: expect.any(Number),
        });
        const ratio = store.redis!.hitRatio as number;
        expect(ratio).toBeGreaterThan(0);
        expect(ratio).toBeLessThanOrEqual(1);
      }

      const db = report.database.data;
      expect(db.dialect).toBe(kind === 'sqlite' ? 'sqlite' : 'postgres');
      expect(db.sizeBytes).toBeGreaterThan(0);
      const rows = Object.fromEntries(db.tables.map((r) => [r.name, r.rows]));
      expect(rows.users).toBe(6);
      expect(rows.sessions).toBe(kind === 'sqlite' ? 49 : 0);
      expect(rows.session_events).toBe(49 + pastSignIns.length);
    });

    it('should say when each section was taken, and the breaker state', () => {
      for (const name of ['sessions', 'activity', 'store', 'database', 'health'] as const) {
        expect(Math.abs(report[name].takenAt - now), name).toBeLessThan(60_000);
      }
      expect(report.breaker.state).toBe('closed');
    });

    it('should render the page with the same figures and the times they were taken', async () => {
      const page = await admin.get('/admin/sessions/stats', 'html');
      expect(page.statusCode).toBe(200);
      const body = page.body;
      expect(body).toMatch(/id="stat-active"><span data-stat="active" data-format="int">37</);
      expect(body).toMatch(/id="stat-expired"><span data-stat="expired" data-format="int">12</);
      expect(body).toMatch(/id="stat-total"><span data-stat="total" data-format="int">49</);
      expect(body).toMatch(/<a class="nav-link active" href="\/admin\/sessions\/stats"/);
      expect(
        body.match(/<time data-taken\s+datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</g),
      ).toHaveLength(7);
      expect(body).toContain('<script src="/static/stats.js" defer></script>');
      expect(body).toContain('una@example.com');
      expect(body).not.toMatch(/<script>|style="/);
    });

    it('should serve the figures from the snapshot until it is older than a few seconds', async () => {
      const first = (await admin.get('/admin/sessions/stats', 'json')).json() as Report;
      const again = (await admin.get('/admin/sessions/stats', 'json')).json() as Report;
      expect(again.sessions.takenAt).toBe(first.sessions.takenAt);
      expect(again.sessions.data).toEqual(report.sessions.data);
    });

    it('should serve its script and Chart.js from the installed package', async () => {
      const script = await admin.get('/static/stats.js');
      expect(script.statusCode).toBe(200);
      const chart = await admin.get('/static/chartjs/chart.umd.min.js');
      expect(chart.statusCode).toBe(200);
    });

    // Last: it changes the fleet the tests above read.
    it('should show a revocation on the next reload, not once the figures have aged', async () => {
      const before = (await admin.get('/admin/sessions/stats', 'json')).json() as Report;
      const udo = before.sessions.data!.topUsers.find((u) => u.email === 'udo@example.com')!;
      expect(udo.sessions).toBeGreaterThan(0);
      const res = await admin.postJson(`/admin/sessions/revoke-user/${udo.userId}`, {});
      expect(res.statusCode).toBe(200);
      // Well within the figures' 3 s: only the revocation can have made them stale.
      await expect
        .poll(
          async () => {
            const after = (await admin.get('/admin/sessions/stats', 'json')).json() as Report;
            return after.sessions.data!.topUsers.some((u) => u.email === 'udo@example.com');
          },
          { timeout: 1_500, interval: 100 },
        )
        .toBe(false);
    });
  });
}
