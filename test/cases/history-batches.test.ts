/**
 * How the history of a bulk ending is written: on SQLite, which answers in Warden's own thread,
 * every INSERT is a commit that writes each index page it touches, so a revocation of 1,000
 * writes its rows in one statement rather than in one per chunk; on PostgreSQL rows go as soon
 * as they come, so the INSERTs run while the store's deletes are still under way. A cleanup's
 * rows go as they come everywhere, so requests between its batches wait behind short INSERTs.
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

  it.skipIf(skip)(
    'should write every row of a run of endings once, in as few statements as the database wants',
    async () => {
      const { events, batches, user, app } = await observed();
      const writer = events.writer({ batched: true });
      const rows = ended(1_250, user.id);
      // Chunks as a revocation adds them, each after a store round trip.
      for (let i = 0; i < rows.length; i += 50) {
        writer.add(rows.slice(i, i + 50), { kind: 'revoked', reason: 'revoked' }, Date.now());
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writer.flush();

      const written = await app.database.db
        .selectFrom('session_events')
        .select('session_id')
        .where('user_id', '=', user.id)
        .where('kind', '=', 'revoked')
        .execute();
      expect(written.map((r) => r.session_id).sort()).toEqual(rows.map((r) => r.id));
      expect(batches.reduce((a, b) => a + b, 0)).toBe(1_250);
      if (kind === 'sqlite') {
        // A statement's worth, then the rest at the flush.
        expect(batches).toEqual([1_000, 250]);
      } else {
        // The first chunk goes at once, beside the deletes that follow it.
        expect(batches[0]).toBe(50);
      }
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
