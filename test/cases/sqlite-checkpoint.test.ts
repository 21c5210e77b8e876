/**
 * On SQLite the commit that takes the write-ahead log past 1,000 pages checkpoints it by itself,
 * in Warden's own thread: about half of what a revocation of 1,000 sessions cost a request. The
 * server checkpoints from a thread of its own instead, and long runs of removals pause for it
 * (walLog.settle) so the log starts over rather than reaching the bound at which a commit copies it
 * here. The database file is written only by checkpoints, so its size tells when one ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { SqlSessionStore } from '../../src/sessions/sql-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SQLite checkpoints', () => {
  let database: Database | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await database?.close();
    database = undefined;
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  function fileDatabase(checkpointInBackground: boolean): Database {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-checkpoint-'));
    dirs.push(dir);
    database = openDatabase(
      { kind: 'sqlite', file: path.join(dir, 'warden.db') },
      { checkpointInBackground },
    );
    return database;
  }

  /** A fresh file database, its file, and a write of about 1,500 log pages. */
  async function open(checkpointInBackground: boolean) {
    const database = fileDatabase(checkpointInBackground);
    const file = path.join(dirs.at(-1)!, 'warden.db');
    const { db } = database;
    await sql`create table t (id integer primary key, body text not null)`.execute(db);
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
    const size = () => fs.statSync(file).size;
    // `from`: the first row id, for a write after another.
    const write = async (from = 0) => {
      for (let i = 0; i < 3_000; i += 500) {
        const rows = Array.from({ length: 500 }, (_, j) => ({
          id: from + i + j,
          body: 'x'.repeat(2_000),
        }));
        await sql`insert into t (id, body) values ${sql.join(
          rows.map((r) => sql`(${r.id}, ${r.body})`),
        )}`.execute(db);
      }
    };
    return { size, write };
  }

  it('should leave the checkpoint of a large write to its own thread, which runs it soon after', async () => {
    const { size, write } = await open(true);
    const before = size();
    await write();
    // The writes returned without copying a page into the database file…
    expect(size()).toBe(before);
    // …and the thread copies them within a few of its rounds.
    for (let i = 0; i < 40 && size() < before + 5_000_000; i++) await sleep(100);
    expect(size()).toBeGreaterThan(before + 5_000_000);
  });

  it('should checkpoint in the writing thread without it, as SQLite does by default', async () => {
    const { size, write } = await open(false);
    const before = size();
    await write();
    expect(size()).toBeGreaterThan(before);
  });

  it('should copy the log into the file when asked to settle it, and answer once it has', async () => {
    const { size, write } = await open(true);
    const before = size();
    await write();
    expect(size()).toBe(before);
    // Asked twice at once (chunks in flight together): one checkpoint answers both.
    const settling = database!.walLog!.settle();
    expect(database!.walLog!.settle()).toBe(settling);
    await settling;
    expect(size()).toBeGreaterThan(before + 5_000_000);
    // The log is all in the file: a checkpoint here finds nothing left to copy.
    const [state] = (
      await sql<{ log: number; checkpointed: number }>`pragma wal_checkpoint(PASSIVE)`.execute(
        database!.db,
      )
    ).rows;
    expect(state!.checkpointed).toBe(state!.log);
  });

  it("should settle without holding statements when the log is copied whole, and restart a log a reader kept, holding this connection's statements, not the thread", async () => {
    const { write } = await open(true);
    const file = path.join(dirs.at(-1)!, 'warden.db');
    const { pages: logPages, settle: settleLog } = database!.walLog!;
    await write();
    // A reader of what the log holds, as the reader thread can be: the log cannot start over
    // under it, and a RESTART waits for it (up to its busy timeout, a second) with every writer
    // held off.
    const reader = new SQLite(file, { readonly: true });
    try {
      reader.prepare('begin').run();
      reader.prepare('select count(*) from t').get();
      // The first settle copies the whole log without a RESTART: it does not wait for the
      // reader (it used to, a second, with every statement of this connection held).
      const started = performance.now();
      await settleLog();
      expect(performance.now() - started).toBeLessThan(900);
      // The next write cannot start the log over while the reader reads it…
      await sql`insert into t (id, body) values (${100_000}, ${'y'})`.execute(database!.db);
      expect(logPages()).toBeGreaterThan(1_000);
      // …and the next settle cannot copy that write, past the reader's snapshot, so it
      // RESTARTs the log, waiting for the reader its busy timeout, a second.
      const settling = settleLog();
      await sleep(150);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const issuedAt = performance.now();
      await sql`insert into t (id, body) values (${100_001}, ${'y'})`.execute(database!.db);
      const waited = performance.now() - issuedAt;
      clearInterval(timer);
      await settling;
      // The write waited for the settle without holding the thread: timers went on meanwhile.
      // It used to wait in SQLite's busy handler here, where no timer runs.
      expect(waited).toBeGreaterThan(500);
      expect(ticks).toBeGreaterThan(20);
    } finally {
      reader.close();
    }
    // With the reader gone, a settle and a write start the log over.
    await settleLog();
    await sql`insert into t (id, body) values (${100_002}, ${'y'})`.execute(database!.db);
    expect(logPages()).toBeLessThan(10);
  });

  it('should answer a settle at once when the thread has stopped, and offer none without it', async () => {
    const { settle } = fileDatabase(true).walLog!;
    await database!.close();
    database = undefined;
    await expect(settle()).resolves.toBeUndefined();
    expect(fileDatabase(false).walLog).toBeUndefined();
  });

  it('should read how many pages the log holds, back to none once settled and written again', async () => {
    const { write } = await open(true);
    const { db } = database!;
    const { pages: logPages, settle: settleLog } = database!.walLog!;
    const before = logPages();
    await write();
    expect(logPages()).toBeGreaterThan(before + 1_000);
    await settleLog();
    await sql`insert into t (id, body) values (${100_000}, ${'y'})`.execute(db);
    // The write after a settle started the log over: one page, and its commit's.
    expect(logPages()).toBeLessThan(10);
  });

  it('should restart by force a log that a reader at its end kept from starting over, and only once written to', async () => {
    const { write } = await open(true);
    const file = path.join(dirs.at(-1)!, 'warden.db');
    const { db } = database!;
    const { pages: logPages, settle: settleLog } = database!.walLog!;
    let most = 0;
    let id = 100_000;
    for (let round = 0; round < 8; round++) {
      await write(10_000 * (round + 1));
      // A reader that begins at the log's end and reads for 100 ms (an export): the settle's
      // pass copies the whole log, yet the write after it cannot start it over meanwhile.
      const reader = new SQLite(file, { readonly: true });
      reader.prepare('begin').run();
      reader.prepare('select count(*) from t').get();
      setTimeout(() => reader.close(), 100);
      await settleLog();
      await sql`insert into t (id, body) values (${id++}, ${'w'})`.execute(db);
      most = Math.max(most, logPages());
      // The reader is gone before the next round, whose writes cannot start the log over
      // either (the insert above is not yet copied); that round's settle copies it all again,
      // and only the log's salt, unchanged since the last settle, tells that it never restarted.
      await sleep(150);
    }
    // Every second settle found the log the one before had left, written to and not started
    // over, and restarted it once its reader was done: after a settle the log held about one
    // round's 1,500 pages at most. Left to start over by itself, it grew by about a thousand
    // pages a round (7,766 after eight).
    expect(most).toBeLessThan(4_000);
  });

  it('should not hold statements for a reader when nothing was written since the last settle', async () => {
    const { write } = await open(true);
    const file = path.join(dirs.at(-1)!, 'warden.db');
    const { settle: settleLog } = database!.walLog!;
    await write();
    const reader = new SQLite(file, { readonly: true });
    try {
      reader.prepare('begin').run();
      reader.prepare('select count(*) from t').get();
      await settleLog();
      // A chunk that removed nothing (its ids already gone) settles again: the log is all
      // copied and unchanged, so no RESTART waits a second for the reader.
      const started = performance.now();
      await settleLog();
      expect(performance.now() - started).toBeLessThan(900);
    } finally {
      reader.close();
    }
  });

  it('should leave a log that starts over when this process writes while a settle copies it', async () => {
    const { write } = await open(true);
    const { db } = database!;
    const { pages: logPages, settle: settleLog } = database!.walLog!;
    await write();
    // Requests write on while the thread copies (a chunk's history rows did): what they add
    // after a pass began is not copied by it, and the thread's own count of the log leaves it
    // out. A settle that took that count for the whole log left a log that could not start over.
    let settled = false;
    const settling = settleLog().then(() => {
      settled = true;
    });
    let id = 200_000;
    while (!settled) {
      await sql`insert into t (id, body) values (${id++}, ${'z'})`.execute(db);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await settling;
    expect(id).toBeGreaterThan(200_001);
    await sql`insert into t (id, body) values (${id}, ${'z'})`.execute(db);
    expect(logPages()).toBeLessThan(10);
  });

  it('should let bulk removals wait for the log to settle once it holds 5,000 pages, and a short one not wait', async () => {
    const { db, dialect, walLog } = fileDatabase(true);
    const { pages: logPages, settle: settleLog } = walLog!;
    await migrateToLatest(db, dialect);
    let settled = 0;
    let most = 0;
    const store = new SqlSessionStore(db, dialect, {
      log: {
        settle: async () => {
          settled += 1;
          await settleLog();
        },
        pages: () => {
          most = Math.max(most, logPages());
          return logPages();
        },
      },
    });
    const now = Date.now();
    const sessions = (count: number, expired: boolean): SessionRecord[] =>
      Array.from({ length: count }, (_, i) => ({
        id: sessionIdOf(newToken()),
        userId: 1 + (i % 50),
        createdAt: now - 7_200_000 - i,
        lastSeenAt: now - 3_600_000,
        idleExpiresAt: now + (expired ? -1_800_000 : 1_800_000),
        absoluteExpiresAt: now + 86_400_000,
        ip: '192.0.2.10',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
      }));
    const due = sessions(6_000, true);
    const live = sessions(1_000, false);
    for (let i = 0; i < due.length; i += 500) {
      await db.transaction().execute(async (trx) => {
        const mine = new SqlSessionStore(trx, dialect);
        for (const s of due.slice(i, i + 500)) await mine.create(s);
      });
    }
    for (const s of live) await store.create(s);
    await settleLog();

    let removed = 0;
    for (
      let batch = await store.takeExpired(now, 100);
      ;
      batch = await store.takeExpired(now, 100)
    ) {
      removed += batch.sessions.length;
      if (batch.done) break;
    }
    expect(removed).toBe(6_000);
    // The log was settled on the way, and never reached the bound of a commit's own checkpoint.
    expect(settled).toBeGreaterThan(0);
    expect(most).toBeLessThan(10_000);

    await settleLog();
    settled = 0;
    const taken = await store.takeMany(live.map((s) => s.id));
    expect([...taken.values()].filter((t) => typeof t === 'object')).toHaveLength(1_000);
    expect(settled).toBe(0);
    expect(
      await db.selectFrom('sessions').select(db.fn.countAll().as('n')).executeTakeFirst(),
    ).toEqual({ n: 0 });
  });
});
