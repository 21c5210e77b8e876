/**
 * Every ending of a large revocation or cleanup is one history row: the batches that run at
 * once (revocation chunks in flight, cleanup batches side by side, history written in bulk)
 * never lose a row, never write one twice, and never take a session that was not asked for.
 */
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { DB } from '../../src/db/schema.js';
import { SessionEvents } from '../../src/events/session-events.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const kinds = await storeKindsToRun();

/** Stores `count` sessions of a user straight through the store (signing in would be slow). */
async function plant(t: TestApp, userId: number, count: number, expired: boolean) {
  const now = Date.now();
  const sessions: SessionRecord[] = Array.from({ length: count }, (_, i) => ({
    id: sessionIdOf(newToken()),
    userId,
    createdAt: now - 2 * HOUR - i,
    lastSeenAt: now - HOUR,
    idleExpiresAt: expired ? now - MINUTE - i : now + HOUR,
    absoluteExpiresAt: now + 2 * HOUR,
    ip: '192.0.2.7',
    userAgent: 'bulk',
  }));
  for (let i = 0; i < sessions.length; i += 100) {
    await Promise.all(sessions.slice(i, i + 100).map((s) => t.store.create(s)));
  }
  return sessions.map((s) => s.id);
}

async function history(t: TestApp, kind: string) {
  // A revocation answers before its rows are written (SessionEvents.follow).
  await t.settled();
  return t.database.db
    .selectFrom('session_events')
    .select(['session_id', 'reason'])
    .where('kind', '=', kind as 'revoked')
    .execute();
}

describe.each(kinds)('history of bulk endings on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** An app of this kind with a signed-in superuser and the user whose sessions end. */
  async function withAdmin() {
    t = await makeApp(kind);
    await t.createUser('root@example.test', 'superuser');
    const ann = await t.createUser('ann@bulk.test');
    const admin = t.client();
    await admin.login('root@example.test');
    return { app: t, ann, admin };
  }

  it.skipIf(skip)(
    'should write one cleaned_up row per session a cleanup of many batches removes, and keep the live ones',
    async () => {
      const { app, ann, admin } = await withAdmin();
      const expired = await plant(app, ann.id, 730, true);
      const live = await plant(app, ann.id, 5, false);

      const res = await admin.postJson('/admin/sessions/cleanup-expired');

      expect(res.statusCode).toBe(200);
      expect(res.json().removed).toBe(730);
      const rows = await history(app, 'cleaned_up');
      expect(rows).toHaveLength(730);
      expect(new Set(rows.map((r) => r.session_id))).toEqual(new Set(expired));
      expect(new Set(rows.map((r) => r.reason))).toEqual(new Set(['idle']));
      const left = (await app.store.listByUser(ann.id)).map((s) => s.id);
      expect(left.sort()).toEqual([...live].sort());
    },
  );

  it.skipIf(skip)(
    'should report each of 1,000 ids of a bulk revoke revoked once, with one history row each',
    async () => {
      const { app, ann, admin } = await withAdmin();
      const ids = await plant(app, ann.id, 1_000, false);
      const kept = await plant(app, ann.id, 3, false);

      const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids });

      expect(res.statusCode).toBe(200);
      const body = res.json() as { counts: Record<string, number>; results: { id: string }[] };
      expect(body.counts).toMatchObject({ revoked: 1_000, failed: 0 });
      expect(body.results.map((r) => r.id)).toEqual(ids);
      const rows = await history(app, 'revoked');
      expect(rows).toHaveLength(1_000);
      expect(new Set(rows.map((r) => r.session_id))).toEqual(new Set(ids));
      const left = (await app.store.listByUser(ann.id)).map((s) => s.id);
      expect(left.sort()).toEqual([...kept].sort());
    },
  );

  it.skipIf(skip)(
    'should take the chunks of a bulk revoke one at a time on SQLite, and a few at once over a wire',
    async () => {
      const { app, ann, admin } = await withAdmin();
      const ids = await plant(app, ann.id, 1_000, false);
      let inFlight = 0;
      let most = 0;
      const takeMany = app.store.takeMany.bind(app.store);
      app.store.takeMany = async (chunk) => {
        most = Math.max(most, ++inFlight);
        try {
          return await takeMany(chunk);
        } finally {
          inFlight -= 1;
        }
      };

      const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids });

      expect(res.json().counts).toMatchObject({ revoked: 1_000, failed: 0 });
      // SQLite runs each DELETE in the server's own thread: chunks queued together would run
      // back to back and hold every request for all of them (about 100 ms at a million
      // sessions). Redis pipelines them.
      if (kind === 'sqlite') expect(most).toBe(1);
      else expect(most).toBeGreaterThan(1);
    },
  );

  it.skipIf(skip)(
    "should write each of a user's 1,000 endings once, with the address and browser it had",
    async () => {
      const { app, ann, admin } = await withAdmin();
      const live = await plant(app, ann.id, 990, false);
      const lapsed = await plant(app, ann.id, 10, true);

      const res = await admin.postJson(`/admin/sessions/revoke-user/${ann.id}`);

      expect(res.statusCode).toBe(200);
      expect(res.json().counts).toMatchObject({ revoked: 990, already_ended: 10, failed: 0 });
      await app.settled();
      const rows = await app.database.db
        .selectFrom('session_events')
        .select(['session_id', 'kind', 'reason', 'ip', 'user_agent'])
        .where('user_id', '=', ann.id)
        .execute();
      const of = (kind: string) => rows.filter((r) => r.kind === kind);
      expect(new Set(of('revoked').map((r) => r.session_id))).toEqual(new Set(live));
      expect(new Set(of('cleaned_up').map((r) => r.session_id))).toEqual(new Set(lapsed));
      expect(rows).toHaveLength(1_000);
      expect(new Set(rows.map((r) => `${r.ip} ${r.user_agent}`))).toEqual(
        new Set(['192.0.2.7 bulk']),
      );
      if (kind === 'redis+postgres') {
        // Nothing set aside is left behind in Redis.
        const left = await app.redis!.keys(`${app.prefix}ended:*`);
        expect(left).toEqual([]);
      }
    },
  );

  it.skipIf(skip)(
    "should not count a user's revoked sessions on the next request, though their indexes follow the answer",
    async () => {
      const { app, ann, admin } = await withAdmin();
      const live = async () => (await admin.get('/admin/live', 'json')).json().active as number;
      const before = await live();
      await plant(app, ann.id, 600, false);
      expect(await live()).toBe(before + 600);

      for (let round = 0; round < 3; round++) {
        const res = await admin.postJson(`/admin/sessions/revoke-user/${ann.id}`);
        expect(res.json().counts.revoked).toBe(round === 0 ? 600 : 200);
        expect(await live(), `round ${round}`).toBe(before);
        await plant(app, ann.id, 200, false);
      }
    },
  );

  it.skipIf(skip || kind !== 'redis+postgres')(
    "should still record a user's endings when what they were cannot be read back, and say so",
    async () => {
      const log = logCapture();
      t = await makeApp(kind, { logStream: log.stream, env: { LOG_LEVEL: 'info' } });
      await t.createUser('root@example.test', 'superuser');
      const ann = await t.createUser('ann@bulk.test');
      const admin = t.client();
      await admin.login('root@example.test');
      const ids = await plant(t, ann.id, 30, false);
      // Twenty of them have the sign-in row a real sign-in writes, from another address.
      const { events } = t.app.warden;
      const signedIn = ids.slice(0, 20);
      await events.record(
        signedIn.map((id) => ({ id, userId: ann.id, ip: '198.51.100.4', userAgent: 'signed in' })),
        { kind: 'signed_in' },
        Date.now() - HOUR,
      );
      t.store.collectSetAside = async () => {
        throw new Error('injected store failure');
      };

      const res = await admin.postJson(`/admin/sessions/revoke-user/${ann.id}`);

      expect(res.json().counts).toMatchObject({ revoked: 30, failed: 0 });
      await t.settled();
      const rows = await t.database.db
        .selectFrom('session_events')
        .select(['session_id', 'ip', 'user_agent'])
        .where('kind', '=', 'revoked')
        .execute();
      expect(new Set(rows.map((r) => r.session_id))).toEqual(new Set(ids));
      const byId = new Map(rows.map((r) => [r.session_id, `${r.ip}|${r.user_agent}`]));
      for (const id of signedIn) expect(byId.get(id)).toBe('198.51.100.4|signed in');
      for (const id of ids.slice(20)) expect(byId.get(id)).toBe('|');
      const said = log.records().filter((l) => l.event === 'history_incomplete');
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({
        rows: 10,
        level: 40,
        err: { message: expect.stringContaining('injected store failure') },
      });
    },
  );

  // Only PostgreSQL can hold the history table while the sessions' store goes on writing.
  it.skipIf(skip || kind === 'sqlite')(
    "should end a user's sessions and answer while their history waits for the database",
    async () => {
      const { app, ann, admin } = await withAdmin();
      const ids = await plant(app, ann.id, 200, false);
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const holder = app.database.db.transaction().execute(async (trx) => {
        await sql`lock table session_events in exclusive mode`.execute(trx);
        locked();
        await held;
      });
      await lockTaken;

      const res = await admin.postJson(`/admin/sessions/revoke-user/${ann.id}`);
      expect(res.statusCode).toBe(200);
      expect(res.json().counts).toMatchObject({ revoked: 200, failed: 0 });
      expect(await app.store.listByUser(ann.id)).toEqual([]);
      // The rows wait behind the lock; a history read waits for them in turn.
      let read = false;
      const rows = history(app, 'revoked').then((r) => {
        read = true;
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(read).toBe(false);

      release();
      await holder;
      expect(new Set((await rows).map((r) => r.session_id))).toEqual(new Set(ids));
    },
  );

  it.skipIf(skip)(
    'should tell ids the store no longer holds apart by their history: ended, ended elsewhere, lost or unknown',
    async () => {
      t = await makeApp(kind);
      const ann = await t.createUser('ann@gone.test');
      const { sessions, events } = t.app.warden;
      const client = { ip: '192.0.2.8', userAgent: 'gone' };
      const signIn = async () => (await sessions.signIn(ann, client)).session;
      const [revoked, lost, elsewhere] = [await signIn(), await signIn(), await signIn()];
      await sessions.revokeIds([revoked.id], { actorId: null });
      // Expired and cleaned up: its sign-in recorded when it began.
      const [expired] = await plant(t, ann.id, 1, true);
      await events.record([{ ...revoked, id: expired! }], { kind: 'signed_in' }, Date.now() - HOUR);
      expect(await sessions.cleanupExpired(Date.now(), null)).toBe(1);
      // Deleted with no history row, as when a delete's answer is lost.
      await t.store.takeMany([lost.id, elsewhere.id]);
      // Ended by an instance whose clock is ten minutes behind this one's.
      await events.record(
        [elsewhere],
        { kind: 'revoked', reason: 'revoked' },
        elsewhere.createdAt - 10 * MINUTE,
      );
      const unknown = sessionIdOf(newToken());

      const byId = async (ids: string[]) =>
        (await sessions.revokeIds(ids, { actorId: null })).results;
      expect(await byId([revoked.id, expired!, lost.id, unknown])).toEqual([
        { id: revoked.id, status: 'already_ended' },
        { id: expired!, status: 'already_ended' },
        { id: lost.id, status: 'revoked' },
        { id: unknown, status: 'not_found' },
      ]);
      // Alone, so that no earlier sign-in widens the search for its end.
      expect(await byId([elsewhere.id])).toEqual([{ id: elsewhere.id, status: 'already_ended' }]);
      // One end each, the lost one's written now.
      const ends = [...(await history(t, 'revoked')), ...(await history(t, 'cleaned_up'))];
      expect(ends.map((r) => r.session_id).sort()).toEqual(
        [revoked.id, expired!, lost.id, elsewhere.id].sort(),
      );
    },
  );

  // A plan, not a time: SQLite keeps no statistics for Warden's tables, and without them it
  // chose the index on (kind, at) for this look-up, reading every sign-in of the history.
  it.skipIf(skip || kind !== 'sqlite')(
    'should look ids up through the index of sign-ins, not by reading every sign-in',
    async () => {
      t = await makeApp(kind);
      const raw = new SQLite((t.config.database as { file: string }).file);
      const sent: { sql: string; parameters: readonly unknown[] }[] = [];
      const db = new Kysely<DB>({
        dialect: new SqliteDialect({ database: raw }),
        log: (e) => {
          sent.push(e.query);
        },
      });
      try {
        const ids = [sessionIdOf(newToken()), sessionIdOf(newToken())];
        await new SessionEvents(db).ofSessions(ids);
        const lookup = sent.find((q) => q.sql.includes("'signed_in'"))!;
        const plan = raw.prepare(`explain query plan ${lookup.sql}`).all(...lookup.parameters);
        expect(JSON.stringify(plan)).toContain('USING INDEX session_events_signed_in_idx');
      } finally {
        await db.destroy();
      }
    },
  );
});
