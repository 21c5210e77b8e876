/**
 * The ended-sessions tab on both stores: sessions ended by signing out, by a revoke, by
 * disabling their user, by cleanup after idling or at the absolute deadline, and by a session
 * limit are listed with when, why and by whom; history older than the retention is not; the
 * live table's filters (email, role, days, page) work here too, with how it ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { DAY, HOUR, isoDay, MINUTE, pageErrorCode, plantSession, signedIn } from './helpers.js';

interface EndedJson {
  total: number;
  page: number;
  perPage: number;
  items: {
    sessionId: string;
    email: string;
    role: string;
    kind: string;
    reason: string | null;
    actorEmail: string | null;
    at: number;
  }[];
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`ended sessions (${kind})`, () => {
    let t: TestApp;
    let boss: Client;
    const ids: Record<string, string> = {};
    const users: Record<string, number> = {};

    async function ended(search = ''): Promise<EndedJson> {
      const res = await boss.get(`/admin/sessions/ended${search}`, 'json');
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    }

    beforeAll(async () => {
      t = await makeApp(kind, { env: { SESSION_RETENTION: '7d', CLEANUP_INTERVAL: '0' } });
      users.boss = (await t.createUser('boss@ended.test', 'superuser')).id;
      users.deputy = (await t.createUser('deputy@ended.test', 'superuser')).id;
      users.ann = (await t.createUser('ann@ended.test')).id;
      users.bob = (await t.createUser('bob@ended.test', 'admin')).id;
      users.cat = (await t.createUser('cat@ended.test')).id;
      boss = (await signedIn(t, 'boss@ended.test')).client;
      const deputy = (await signedIn(t, 'deputy@ended.test')).client;

      // ann signs out herself.
      const ann = await signedIn(t, 'ann@ended.test');
      ids.signedOut = ann.sessionId;
      expect((await ann.client.postJson('/api/auth/logout')).statusCode).toBe(200);

      // boss revokes one of bob's sessions.
      ids.revoked = (await plantSession(t, users.bob)).id;
      await boss.postJson(`/admin/sessions/revoke/${ids.revoked}`);

      // boss disables cat, which ends both of her sessions.
      ids.cat1 = (await plantSession(t, users.cat)).id;
      ids.cat2 = (await plantSession(t, users.cat)).id;
      await boss.postJson(`/admin/users/${users.cat}/disable`);

      // deputy cleans up ann's two expired sessions: one idled out, one hit its deadline.
      const now = Date.now();
      ids.idle = (
        await plantSession(t, users.ann, { expired: true, createdAt: now - 2 * HOUR })
      ).id;
      ids.absolute = (
        await plantSession(t, users.ann, { expired: true, createdAt: now - MINUTE })
      ).id;
      await deputy.postJson('/admin/sessions/cleanup-expired');

      // A session limit evicted one of bob's two days ago; another ended before the retention.
      for (const [id, at, reason] of [
        ['evicted', now - 2 * DAY, 'evicted_by_limit'],
        ['ancient', now - 8 * DAY, 'revoked'],
      ] as const) {
        ids[id] = `${id}`.padEnd(64, '0');
        await t.database.db
          .insertInto('session_events')
          .values({
            session_id: ids[id],
            user_id: users.bob,
            kind: 'revoked',
            reason,
            actor_id: null,
            at,
            ip: '198.51.100.4',
            user_agent: 'curl/8.5.0',
          })
          .execute();
      }
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should list every ending within the retention with why and by whom, newest first', async () => {
      const body = await ended();
      const summary = Object.fromEntries(
        body.items.map((r) => [r.sessionId, [r.email, r.kind, r.reason, r.actorEmail]]),
      );
      expect(summary).toEqual({
        [ids.signedOut]: ['ann@ended.test', 'signed_out', 'signed_out', null],
        [ids.revoked]: ['bob@ended.test', 'revoked', 'revoked', 'boss@ended.test'],
        [ids.cat1]: ['cat@ended.test', 'revoked', 'user_disabled', 'boss@ended.test'],
        [ids.cat2]: ['cat@ended.test', 'revoked', 'user_disabled', 'boss@ended.test'],
        [ids.idle]: ['ann@ended.test', 'cleaned_up', 'idle', 'deputy@ended.test'],
        [ids.absolute]: ['ann@ended.test', 'cleaned_up', 'absolute', 'deputy@ended.test'],
        [ids.evicted]: ['bob@ended.test', 'revoked', 'evicted_by_limit', null],
      });
      expect(body.total).toBe(7);
      const times = body.items.map((r) => r.at);
      expect(times).toEqual([...times].sort((a, b) => b - a));
      expect(body.items.at(-1)!.sessionId).toBe(ids.evicted);
    });

    it('should say on the page when, why and by whom each one ended', async () => {
      const res = await boss.get('/admin/sessions/ended');
      expect(res.statusCode).toBe(200);
      const row = (id: string) => {
        const m = new RegExp(`<tr data-session-id="${id}"[^>]*>([\\s\\S]*?)</tr>`).exec(res.body);
        if (!m) throw new Error(`no row for ${id}`);
        return m[1].replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      };
      expect(row(ids.signedOut)).toMatch(/Signed out signed out the user/);
      expect(row(ids.revoked)).toMatch(/Revoked revoked by an administrator boss@ended\.test/);
      expect(row(ids.cat1)).toMatch(/Revoked user disabled boss@ended\.test/);
      expect(row(ids.idle)).toMatch(/Expired, removed idle timeout deputy@ended\.test/);
      expect(row(ids.absolute)).toMatch(/absolute deadline deputy@ended\.test/);
      expect(row(ids.evicted)).toMatch(
        /evicted by the session limit Warden 198\.51\.100\.4 curl\/8\.5\.0/,
      );
      expect(res.body).toContain('id="ended-count" data-total="7">7 ended');
      expect(res.body).not.toContain(ids.ancient);
      // The tabs: this one is current, the live one is a link away.
      expect(res.body).toMatch(/<a class="nav-link active" href="\/admin\/sessions\/ended"/);
      expect(res.body).toMatch(/<a class="nav-link" href="\/admin\/sessions"/);
    });

    it('should show the same tabs above the live sessions', async () => {
      const res = await boss.get('/admin/sessions');
      expect(res.body).toMatch(/<a class="nav-link active" href="\/admin\/sessions"/);
      expect(res.body).toMatch(/<a class="nav-link" href="\/admin\/sessions\/ended"/);
    });

    it('should filter by email, role, how it ended and the days it ended', async () => {
      const idsOf = async (search: string) =>
        (await ended(search)).items.map((r) => r.sessionId).sort();
      expect(await idsOf('?email=CAT@')).toEqual([ids.cat1, ids.cat2].sort());
      expect(await idsOf('?role=admin')).toEqual([ids.revoked, ids.evicted].sort());
      expect(await idsOf('?kind=cleaned_up')).toEqual([ids.idle, ids.absolute].sort());
      expect(await idsOf('?kind=signed_out&email=ann')).toEqual([ids.signedOut]);
      expect(await idsOf('?email=%25')).toEqual([]);

      const evictedDay = isoDay((await ended('?role=admin')).items.at(-1)!.at);
      expect(await idsOf(`?ended_from=${evictedDay}&ended_to=${evictedDay}`)).toEqual([
        ids.evicted,
      ]);
      const today = isoDay((await ended()).items[0].at);
      expect((await ended(`?ended_from=${today}`)).total).toBe(6);
      // A "from" before the retention still starts at the retention.
      expect((await ended('?ended_from=2000-01-01')).total).toBe(7);
    });

    it('should page through the endings, each once', async () => {
      const seen: string[] = [];
      const first = await ended('?per_page=3');
      expect(first).toMatchObject({ total: 7, page: 1, perPage: 3 });
      for (let p = 1; p <= 3; p++) {
        seen.push(...(await ended(`?per_page=3&page=${p}`)).items.map((r) => r.sessionId));
      }
      expect(seen).toHaveLength(7);
      expect(new Set(seen).size).toBe(7);
      const page = await boss.get('/admin/sessions/ended?per_page=3&page=2');
      expect(page.body).toContain('Page 2 of 3');
    });

    it.each([
      ['ended_from=2025-02-30', 'ended_from'],
      ['ended_to=soon', 'ended_to'],
      ['ended_from=2025-03-02&ended_to=2025-03-01', 'ended_from'],
      ['kind=signed_in', 'kind'],
      ['role=root', 'role'],
      ['per_page=500', 'per_page'],
    ])('should refuse %s with 400 naming %s', async (search, field) => {
      const res = await boss.get(`/admin/sessions/ended?${search}`, 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
      const page = await boss.get(`/admin/sessions/ended?${search}`);
      expect(pageErrorCode(page.body)).toBe('WARDEN_VALIDATION');
    });

    it('should be for superusers only', async () => {
      const bob = await plantSession(t, users.bob);
      const client = t.client();
      client.cookies.set('warden_session', bob.token);
      expect((await client.get('/admin/sessions/ended', 'json')).statusCode).toBe(403);
    });
  });
}
