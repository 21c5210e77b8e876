/**
 * How the history of a bulk ending is written. A revocation holds its rows up to a statement's
 * worth (1,000 on SQLite, 5,000 on PostgreSQL) and hands them over once its sessions are gone:
 * they are written after its answer, and every history read of the process waits for them. A
 * longer revocation writes as it goes. A cleanup's rows go as they come, so requests between its
 * batches wait behind short INSERTs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EventEntry, SessionEvents } from '../../src/events/session-events.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();

function ended(n: number, userId: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${String(i).padStart(8, '0')}${'a'.repeat(56)}`,
    userId,
    ip: '192.0.2.9',
    userAgent: 'batches',
  }));
}

describe.each(kinds)('history writer on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** A writer on the app's own database, and the size of every INSERT batch it sends. */
  async function observed() {
    t = await makeApp(kind);
    const user = await t.createUser('batches@example.test');
    const events = new SessionEvents(t.database.db);
    const batches: number[] = [];
    const write = events.recordEach.bind(events);
    events.recordEach = (entries: readonly EventEntry[]) => {
      batches.push(entries.length);
      return write(entries);
    };
    return { events, batches, user, app: t };
  }

  /** Their sign-ins, as every session has one: a history read finds a session by it. */
  async function signedIn(app: TestApp, rows: ReturnType<typeof ended>) {
    await new SessionEvents(app.database.db).record(rows, { kind: 'signed_in' }, Date.now() - 1);
  }

  /** What a history read says ended these sessions. */
  async function endsOf(events: SessionEvents, sessions: Array<{ id: string }>) {
    const rows = await events.ofSessions(sessions.map((s) => s.id));
    return rows.filter((r) => r.kind !== 'signed_in');
  }

  it.skipIf(skip)(
    'should hold a revocation of up to a statement of rows, and write a longer one as it goes',
    async () => {
      const { events, batches, user, app } = await observed();
      const writer = events.writer({ batched: true });
      const statement = kind === 'sqlite' ? 1_000 : 5_000;
      const rows = ended(statement + 250, user.id);
      // Chunks as a revocation adds them, each after a store round trip.
      for (let i = 0; i < rows.length; i += 50) {
        writer.add(rows.slice(i, i + 50), { kind: 'revoked', reason: 'revoked' }, Date.now());
        await new Promise((resolve) => setImmediate(resolve));
        if (i + 50 <= statement) expect(batches).toEqual([]);
      }
      // Past a statement's worth the rows went at once, beside the takes still to come.
      expect(batches).toEqual([statement + 50]);
      await writer.flush();

      const written = await app.database.db
        .selectFrom('session_events')
        .select('session_id')
        .where('user_id', '=', user.id)
        .where('kind', '=', 'revoked')
        .execute();
      expect(written.map((r) => r.session_id).sort()).toEqual(rows.map((r) => r.id));
      expect(batches).toEqual([statement + 50, 200]);
    },
  );

  it.skipIf(skip)(
    'should write followed rows only once the answer is sent, and make history reads wait for them',
    async () => {
      const { events, batches, user, app } = await observed();
      const writer = events.writer({ batched: true });
      const rows = ended(300, user.id);
      await signedIn(app, rows);
      writer.add(rows, { kind: 'revoked', reason: 'revoked' }, Date.now());
      let send!: () => void;
      const answered = new Promise<void>((resolve) => {
        send = resolve;
      });
      events.follow(writer, answered);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(batches).toEqual([]);

      // A history read waits for the rows, whose writing waits for the answer.
      const read = endsOf(events, [rows[0]!, rows[299]!]);
      send();
      expect((await read).map((r) => r.kind)).toEqual(['revoked', 'revoked']);
      expect(batches).toEqual([300]);
      await events.settled();
    },
  );

  it.skipIf(skip)(
    'should write followed rows after a while when the answer is never sent',
    async () => {
      const { user, app } = await observed();
      const events = new SessionEvents(app.database.db, { followWaitMs: 200 });
      const writer = events.writer({ batched: true });
      const rows = ended(5, user.id);
      await signedIn(app, rows);
      writer.add(rows, { kind: 'revoked', reason: 'revoked' }, Date.now());
      // A client that never reads its answer: neither finish nor close comes.
      events.follow(writer, new Promise(() => {}));
      const started = performance.now();
      expect(await endsOf(events, rows)).toHaveLength(5);
      expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    },
  );

  it.skipIf(skip)(
    'should report followed rows that cannot be written, and let later writes and reads go on',
    async () => {
      const { user, app } = await observed();
      const lost: Array<{ error: unknown; rows: number }> = [];
      const events = new SessionEvents(app.database.db, {
        onLost: (error, rows) => lost.push({ error, rows }),
      });
      const failing = events.writer({ batched: true });
      // A NOT NULL column left empty fails the INSERT.
      const broken = ended(20, user.id).map((s) => ({ ...s, userId: null as unknown as number }));
      failing.add(broken, { kind: 'revoked', reason: 'revoked' }, Date.now());
      events.follow(failing);
      await events.settled();
      expect(lost).toHaveLength(1);
      expect(lost[0]!.rows).toBe(20);
      expect(String(lost[0]!.error)).toMatch(/null|NOT NULL/i);

      const fine = events.writer({ batched: true });
      const rows = ended(3, user.id);
      await signedIn(app, rows);
      fine.add(rows, { kind: 'revoked', reason: 'revoked' }, Date.now());
      events.follow(fine);
      expect(await endsOf(events, rows)).toHaveLength(3);
      expect(lost).toHaveLength(1);
    },
  );

  it.skipIf(skip)("should write a cleanup's rows as they come", async () => {
    const { events, batches, user } = await observed();
    const writer = events.writer();
    const rows = ended(300, user.id);
    for (let i = 0; i < rows.length; i += 100) {
      writer.add(rows.slice(i, i + 100), { kind: 'cleaned_up', reason: 'idle' }, Date.now());
      await new Promise((resolve) => setImmediate(resolve));
    }
    await writer.flush();
    expect(batches[0]).toBe(100);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(300);
  });
});
