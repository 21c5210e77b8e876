/**
 * seedDemo in process on both stacks (SQLite; Redis with PostgreSQL): the seed draws every
 * session before it writes the users, so each user row goes in with its last sign-in. These
 * tests check that the rows then read as the same data arriving through sign-ins would leave
 * them: last sign-ins equal to the history's, counters by role and status equal to the users
 * table, the store holding every session; also when some planned users cannot be inserted
 * (their email taken), and the sessions are drawn again over the users that were.
 */
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { FIRST_NAMES, LAST_NAMES } from '../src/seed/demo-data.js';
import { type SeedReport, seedDemo } from '../src/seed/seed-demo.js';
import { makeApp, storeKindsToRun, type TestApp } from './support/app.js';

const PASSWORD = 'demo password 123';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`seedDemo (${kind})`, () => {
    let t: TestApp | undefined;

    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    async function seed(users: number, sessions: number): Promise<SeedReport> {
      if (!t) throw new Error('no app');
      return seedDemo(t, { users, sessions, password: PASSWORD, policy: t.config });
    }

    /** Checks what a user of the console would see differ from sign-ins made one by one. */
    async function expectAsIfSignedIn(sessions: number) {
      if (!t) throw new Error('no app');
      const { db } = t.database;
      const users = await sql<{ id: number; status: string; last_login_at: number | null }>`
        select id, status, last_login_at from users`.execute(db);
      const history = await sql<{ user_id: number; last: number; n: number }>`
        select user_id, max(at) as last, count(*) as n from session_events
        where kind = 'signed_in' group by user_id`.execute(db);
      const latest = new Map(history.rows.map((r) => [Number(r.user_id), Number(r.last)]));

      // Each user's last sign-in is the latest of their sessions', and only owners have one.
      for (const u of users.rows) {
        const want = latest.get(u.id) ?? null;
        expect(u.last_login_at === null ? null : Number(u.last_login_at), `user ${u.id}`).toBe(
          want,
        );
        if (want !== null) expect(u.status).toBe('approved');
      }
      expect(history.rows.reduce((sum, r) => sum + Number(r.n), 0)).toBe(sessions);

      // The analytics' aggregates: the latest sign-in per user from the history, and the
      // counters by role and status from the users table.
      const last = await sql<{ user_id: number; last_at: number }>`
        select user_id, last_at from activity_last`.execute(db);
      expect(new Map(last.rows.map((r) => [Number(r.user_id), Number(r.last_at)]))).toEqual(latest);
      const totals = await sql<{ name: string; n: number }>`
        select name, n from user_totals where n <> 0`.execute(db);
      const recount = await sql<{ name: string; n: number }>`
        select 'role:' || role as name, count(*) as n from users group by role
        union all select 'status:' || status, count(*) from users group by status`.execute(db);
      const asMap = (rows: { name: string; n: number }[]) =>
        new Map(rows.map((r) => [r.name, Number(r.n)]));
      expect(asMap(totals.rows)).toEqual(asMap(recount.rows));

      // Every session is in the store, live and expired as the report says.
      const listed = await t.store.list({ status: 'all', now: Date.now(), offset: 0, limit: 1 });
      expect(listed.total).toBe(sessions);
    }

    it('should write each user with the last sign-in its sessions give', async () => {
      t = await makeApp(kind);

      const report = await seed(40, 400);

      expect(report).toMatchObject({ users: 40, skippedUsers: 0, sessions: 400 });
      await expectAsIfSignedIn(400);
      const ids = await sql<{ session_id: string }>`
        select session_id from session_events`.execute(t.database.db);
      const unique = new Set(ids.rows.map((r) => r.session_id));
      expect(unique.size).toBe(400);
      for (const id of unique) expect(id).toMatch(/^[0-9a-f]{64}$/);
      // The history is written as it happened: sign-ins in time order.
      const events = await sql<{ at: number }>`
        select at from session_events order by id`.execute(t.database.db);
      const times = events.rows.map((r) => Number(r.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    it('should give the sessions to the users inserted when a planned one is skipped', async () => {
      t = await makeApp(kind);
      // Every email the seed's first user (always approved) can be given: the ids end at
      // FIRST_NAMES × LAST_NAMES, so the seed numbers its emails from the next one.
      const combos = FIRST_NAMES.flatMap((f) => LAST_NAMES.map((l) => [f, l] as const));
      const serial = combos.length + 1;
      const { db } = t.database;
      for (let i = 0; i < combos.length; i += 500) {
        const rows = combos.slice(i, i + 500).map(([f, l]) => {
          const email = `${f}.${l}${serial}@example.test`;
          return {
            email,
            email_normalized: email,
            password_hash: 'x',
            role: 'user' as const,
            status: 'pending' as const,
            created_at: 0,
            updated_at: 0,
          };
        });
        await db.insertInto('users').values(rows).execute();
      }

      const report = await seed(20, 300);

      expect(report).toMatchObject({ users: 19, skippedUsers: 1, sessions: 300 });
      await expectAsIfSignedIn(300);
      // No session of the skipped user went to the one who had its email.
      const misowned = await sql<{ n: number }>`
        select count(*) as n from session_events e join users u on u.id = e.user_id
        where u.status <> 'approved'`.execute(db);
      expect(Number(misowned.rows[0].n)).toBe(0);
    });
  });
}
