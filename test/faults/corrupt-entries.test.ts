/**
 * Corrupt session data written straight into the store, each kind it can hold (Redis: a hash
 * missing fields, a hash with a bad number, a key of the wrong type, a string of cut-off JSON,
 * an index entry whose key is gone; SQLite: text in a time column, a blob for the browser, a
 * row whose user is gone). The console lists the rest and says how many it skipped, logs that
 * once per listing, and cleanup (the console's and the scheduled one) removes them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CleanupJob } from '../../src/sessions/cleanup-job.js';
import { processLock } from '../../src/sessions/locks.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const HOUR = 3_600_000;

const newId = () => createHash('sha256').update(randomBytes(32)).digest('hex');

/** Writes corrupt entries of `userId` behind the store's back; returns how many a listing meets. */
async function plantCorrupt(t: TestApp, userId: number): Promise<number> {
  const now = Date.now();
  if (t.redis && t.prefix) {
    const r = t.redis;
    const p = t.prefix;
    const [missing, badNumber, wrongType, badJson, dangling] = [1, 2, 3, 4, 5].map(newId);
    await r.hSet(`${p}s:${missing}`, { user: String(userId), ip: '::1' });
    await r.hSet(`${p}s:${badNumber}`, {
      user: String(userId),
      created: 'yesterday',
      seen: String(now),
      idle: String(now + HOUR),
      absolute: String(now + HOUR),
      ip: '::1',
      ua: 'x',
    });
    await r.rPush(`${p}s:${wrongType}`, 'not a hash');
    await r.set(`${p}s:${badJson}`, '{"user":1,"created":');
    for (const id of [missing!, badNumber!, wrongType!, badJson!, dangling!]) {
      if (id !== dangling) await r.pExpire(`${p}s:${id}`, HOUR);
      await r.zAdd(`${p}sessions:by-created`, { score: -(now - HOUR), value: id });
      await r.zAdd(`${p}sessions:by-expiry`, { score: now + HOUR, value: id });
      await r.zAdd(`${p}{u${userId}}:sessions`, { score: -(now - HOUR), value: id });
    }
    return 5;
  }

  const db = t.database.db;
  const row = (id: string, user: number) => ({
    id,
    user_id: user,
    created_at: now - HOUR,
    last_seen_at: now - HOUR,
    idle_expires_at: now + HOUR,
    absolute_expires_at: now + HOUR,
    expires_at: now + HOUR,
    ip: '::1',
    user_agent: 'x',
  });
  const [textTime, blobAgent, orphan] = [newId(), newId(), newId()];
  await db
    .insertInto('sessions')
    .values([row(textTime, userId), row(blobAgent, userId), row(orphan, 2_000_000_000)])
    .execute();
  // SQLite keeps whatever a column is given, whatever its declared type.
  await sql`update sessions set created_at = 'yesterday' where id = ${textTime}`.execute(db);
  await sql`update sessions set user_agent = x'00ff' where id = ${blobAgent}`.execute(db);
  return 3;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`corrupt session entries (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    let userId: number;
    const logs: Record<string, unknown>[] = [];

    beforeAll(async () => {
      t = await makeApp(kind, {
        logStream: {
          write: (line: string) => logs.push(JSON.parse(line)) > 0,
        } as unknown as NodeJS.WritableStream,
      });
      await t.createUser('root@example.test', 'superuser');
      userId = (await t.createUser('una@example.test')).id;
      admin = t.client();
      await admin.login('root@example.test');
      await t.client().login('una@example.test');
      await t.client().login('una@example.test');
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should list the readable sessions, say how many it skipped, log once, and remove them on cleanup', async () => {
      const planted = await plantCorrupt(t, userId);
      const loggedBefore = logs.filter((l) => l.event === 'sessions_unreadable').length;

      const listing = await admin.get('/admin/sessions', 'json');
      expect(listing.statusCode).toBe(200);
      expect(listing.json()).toMatchObject({ skipped: planted, total: 3 + planted });
      expect(listing.json().items).toHaveLength(3);
      const page = await admin.get('/admin/sessions', 'html');
      expect(page.statusCode).toBe(200);
      // Redis pruned the dangling index entry on the first listing already.
      const now = kind === 'sqlite' ? planted : planted - 1;
      expect(page.body).toMatch(
        new RegExp(`role="status">${now} unreadable\\s+entries were skipped; cleanup removes them`),
      );
      const lines = logs.filter((l) => l.event === 'sessions_unreadable').slice(loggedBefore);
      expect(lines.map((l) => l.skipped)).toEqual([planted, now]);

      const cleanup = await admin.postJson('/admin/sessions/cleanup-expired');
      expect(cleanup.statusCode).toBe(200);
      expect(cleanup.json()).toEqual({ removed: 0, unreadable: now });

      const after = await admin.get('/admin/sessions', 'json');
      expect(after.json()).toMatchObject({ skipped: 0, total: 3 });
      expect(
        logs.filter((l) => l.event === 'sessions_unreadable').slice(loggedBefore),
      ).toHaveLength(2);
      expect((await admin.get('/admin/sessions?email=una', 'json')).json().total).toBe(2);
    });

    it('should remove them on the scheduled cleanup too', async () => {
      const planted = await plantCorrupt(t, userId);
      // On Redis a reader must meet an entry first: that is how cleanup learns of it.
      expect((await admin.get('/admin/sessions', 'json')).json().skipped).toBe(planted);
      const { sessions, audit, clock, config } = t.app.warden;
      const job = new CleanupJob({
        sessions,
        audit,
        lock: processLock(),
        db: t.database.db,
        clock,
        log: t.app.log,
        intervalMs: 60_000,
        retentionMs: config.retentionMs,
      });

      const outcome = await job.runOnce();

      expect(outcome).toMatchObject({ status: 'ran', unreadable: kind === 'sqlite' ? 3 : 4 });
      expect((await admin.get('/admin/sessions', 'json')).json()).toMatchObject({
        skipped: 0,
        total: 3,
      });
    });

    it('should end a signed-in session whose entry was damaged once, with one end in its history', async () => {
      const user = await t.createUser(`dmg-${newId().slice(0, 8)}@example.test`);
      const victim = t.client();
      const { session } = await victim.login(user.email);
      // Damaged behind the store's back: a field gone on Redis, a time that is text on SQLite.
      if (t.redis && t.prefix) {
        await t.redis.hDel(`${t.prefix}s:${session.id}`, 'created');
      } else {
        await sql`update sessions set created_at = 'yesterday' where id = ${session.id}`.execute(
          t.database.db,
        );
      }

      const first = await admin.postJson(`/admin/sessions/revoke/${session.id}`);
      expect(first.statusCode).toBe(200);
      expect(first.json().results).toEqual([{ id: session.id, status: 'revoked' }]);
      expect((await victim.get('/api/auth/session')).statusCode).toBe(401);

      const again = await admin.postJson('/admin/sessions/bulk-revoke', { ids: [session.id] });
      expect(again.json().results).toEqual([{ id: session.id, status: 'already_ended' }]);
      const history = await t.app.warden.events.ofSessions([session.id]);
      expect(history.map((r) => r.kind).sort()).toEqual(['revoked', 'signed_in']);
    });
  });
}
