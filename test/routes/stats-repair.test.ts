/**
 * POST /admin/sessions/stats/repair on both stores: entries that point to nothing, written
 * straight into Redis or the sessions table, show on the stats page, are removed by the
 * repair (and only they), and the repair is audited with its counts. CSRF and the superuser
 * guard hold; a second run finds nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  auditRows,
  HOUR,
  lastAudit,
  listJson,
  plantSession,
  signedIn,
  toastAfter,
} from './helpers.js';

const newId = () => createHash('sha256').update(randomBytes(32)).digest('hex');

type Health = { dangling: { key: string; count: number }[]; danglingTotal: number };

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`POST /admin/sessions/stats/repair (${kind})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.com', 'superuser');
    });

    afterEach(async () => {
      await t?.close();
    });

    /** Breaks the store behind its back; returns what the health report should count. */
    async function breakIndexes(aliceId: number, bobSession: string) {
      if (kind === 'sqlite') {
        // A session whose user was deleted, and one that never had a user.
        const carol = await t.createUser('carol@example.com');
        await plantSession(t, carol.id);
        await plantSession(t, carol.id, { expired: true });
        await t.database.db.deleteFrom('users').where('id', '=', carol.id).execute();
        await plantSession(t, 2_000_000_000);
        return { orphan_sessions: 3 };
      }
      const r = t.redis!;
      const p = t.prefix!;
      const created = -(Date.now() - HOUR);
      for (const id of [newId(), newId()]) {
        await r.zAdd(`${p}sessions:by-created`, { score: created, value: id });
        await r.zAdd(`${p}sessions:by-expiry`, { score: Date.now() + HOUR, value: id });
        await r.zAdd(`${p}{u${aliceId}}:sessions`, { score: created, value: id });
      }
      await r.zAdd(`${p}sessions:by-created`, { score: created, value: newId() });
      // Bob's live session filed under Alice as well.
      await r.zAdd(`${p}{u${aliceId}}:sessions`, { score: created, value: bobSession });
      // A session of Alice's ended by a revocation whose process stopped before collecting it:
      // its hash renamed aside, its global entries left (the user index lost it).
      const ended = newId();
      await r.zAdd(`${p}sessions:by-created`, { score: created, value: ended });
      await r.zAdd(`${p}sessions:by-expiry`, { score: Date.now() + HOUR, value: ended });
      await r.hSet(`${p}ended:${ended}`, { user: String(aliceId), ip: '192.0.2.7' });
      return { by_created: 4, by_expiry: 3, user_indexes: 3, ended_sessions: 1 };
    }

    async function seed() {
      const alice = await t.createUser('alice@example.com');
      const bob = await t.createUser('bob@example.com');
      const kept = [
        (await plantSession(t, alice.id)).id,
        (await plantSession(t, alice.id, { expired: true })).id,
        (await plantSession(t, bob.id)).id,
      ];
      const planted = await breakIndexes(alice.id, kept[2]!);
      const { client } = await signedIn(t, 'root@example.com');
      return { client, alice, bob, kept, planted };
    }

    const dangling = (h: Health) => Object.fromEntries(h.dangling.map((d) => [d.key, d.count]));

    it('should show entries that point to nothing, remove only them, and audit the counts', async () => {
      const { client, alice, bob, kept, planted } = await seed();

      const res = await client.postJson('/admin/sessions/stats/repair', {});
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ removed: planted });

      const audit = await lastAudit(t, 'sessions.repair_indexes');
      expect(audit.outcome).toBe('success');
      expect(audit.actor_email).toBe('root@example.com');
      expect(audit.details.counts).toEqual(planted);

      // The page shows the repair at once, not after its snapshot ages.
      const after = (await client.get('/admin/sessions/stats', 'json')).json();
      expect(after.health.data.danglingTotal).toBe(0);

      // Every real session is still there, listed and counted.
      const listed = await listJson(client, '?status=all');
      expect(listed.skipped).toBe(0);
      for (const id of kept) expect(listed.items.map((i) => i.id)).toContain(id);
      expect((await t.store.listByUser(alice.id)).map((s) => s.id).sort()).toEqual(
        kept.slice(0, 2).sort(),
      );
      expect((await t.store.listByUser(bob.id)).map((s) => s.id)).toEqual([kept[2]]);
      if (kind !== 'sqlite') {
        const r = t.redis!;
        const p = t.prefix!;
        expect(await r.zCard(`${p}sessions:by-created`)).toBe(4);
        expect(await r.zCard(`${p}sessions:by-expiry`)).toBe(4);
        expect(await r.zCard(`${p}{u${alice.id}}:sessions`)).toBe(2);
        // The ended session's copy went with its entries (test-only KEYS, on its own prefix).
        expect(await r.keys(`${p}ended:*`)).toEqual([]);
      }

      const again = await client.postJson('/admin/sessions/stats/repair', {});
      expect(Object.values(again.json().removed).every((n) => n === 0)).toBe(true);
      expect(await auditRows(t, 'sessions.repair_indexes')).toHaveLength(2);
    });

    it('should count the entries that point to nothing on the page', async () => {
      const { client, planted } = await seed();
      const total = Object.values(planted).reduce((a, b) => a + b, 0);

      const report = (await client.get('/admin/sessions/stats', 'json')).json();

      expect(dangling(report.health.data)).toEqual(planted);
      expect(report.health.data.danglingTotal).toBe(total);
      expect(report.health.data.complete).toBe(true);
    });

    it('should show a cleanup in the health figures without waiting for them to age', async () => {
      const alice = await t.createUser('alice@example.com');
      for (let i = 0; i < 3; i++) await plantSession(t, alice.id, { expired: true });
      const { client } = await signedIn(t, 'root@example.com');
      const health = async () =>
        (await client.get('/admin/sessions/stats', 'json')).json().health.data.expired;
      expect(await health()).toBe(3);

      const res = await client.postJson('/admin/sessions/cleanup-expired', {});
      expect(res.json().removed).toBe(3);

      // Delivered over the live bus (Redis pub/sub on redis+postgres), so allow it a moment.
      await expect.poll(health, { timeout: 2_000, interval: 50 }).toBe(0);
    });

    it('should answer the form with a redirect back to the page and a toast with the counts', async () => {
      const { client, planted } = await seed();
      const total = Object.values(planted).reduce((a, b) => a + b, 0);

      const res = await client.postForm('/admin/sessions/stats/repair');

      expect(res.headers.location).toBe('/admin/sessions/stats');
      const toast = await toastAfter(client, res);
      expect(toast).toMatch(new RegExp(`^Index repair: ${total} removed: `));
      if (kind !== 'sqlite') expect(toast).toContain('1 copy of an ended session never collected');
    });

    it('should refuse a repair without a CSRF token and change nothing', async () => {
      const { client, planted } = await seed();

      const res = await client.postJson('/admin/sessions/stats/repair', {}, { csrf: null });

      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('WARDEN_CSRF_INVALID');
      expect(await auditRows(t, 'sessions.repair_indexes')).toEqual([]);
      expect((await lastAudit(t, 'csrf.refused')).target).toBe('POST /admin/sessions/stats/repair');
      const health = (await client.get('/admin/sessions/stats', 'json')).json().health.data;
      expect(dangling(health)).toEqual(planted);
    });

    it('should keep the page and the repair from anyone but a superuser', async () => {
      await t.createUser('user@example.com', 'user');
      const { client: user } = await signedIn(t, 'user@example.com');
      expect((await user.get('/admin/sessions/stats', 'json')).statusCode).toBe(403);
      expect((await user.postJson('/admin/sessions/stats/repair', {})).statusCode).toBe(403);

      const anonymous = t.client();
      expect((await anonymous.get('/admin/sessions/stats', 'json')).statusCode).toBe(401);
      const page = await anonymous.get('/admin/sessions/stats', 'html');
      expect(page.statusCode).toBe(303);
      expect(page.headers.location).toBe('/login?next=%2Fadmin%2Fsessions%2Fstats');
      expect(await auditRows(t, 'sessions.repair_indexes')).toEqual([]);
    });
  });
}
