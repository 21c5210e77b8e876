/**
 * On SQLite the server runs the statistics' scans on a read-only connection in a thread of its
 * own (db/sqlite-reader), so requests go on meanwhile. These tests open a real file database
 * with that thread and check that it answers what the main connection would, sees every write
 * committed before it was asked, writes nothing, and leaves this thread free while it scans.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, type KyselyPlugin, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ENDING_KINDS,
  historyBatches,
  historyQuery,
  listHistory,
} from '../../src/admin/ended-query.js';
import { StatsService } from '../../src/admin/stats-service.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import type { DB } from '../../src/db/schema.js';
import { startSqliteReader } from '../../src/db/sqlite-reader.js';
import { SessionEvents } from '../../src/events/session-events.js';
import { guardStore } from '../../src/resilience/guarded-store.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import { SqlSessionStore } from '../../src/sessions/sql-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';
import { UserRepo } from '../../src/users/user-repo.js';

// About a second of SQLite's work on one core: long enough for this thread's timer to fire
// many times when the scan runs elsewhere.
const LONG_SCAN = sql<{ n: number }>`
  with recursive c(x) as (select 1 union all select x + 1 from c where x < 3000000)
  select count(*) as n from c`;

describe('SQLite reader thread', () => {
  const opened: Database[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of opened.splice(0)) await d.close();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  function tempFile(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-reader-'));
    dirs.push(dir);
    return path.join(dir, 'warden.db');
  }

  async function open(readerThread: boolean, file = tempFile()): Promise<Database> {
    const database = openDatabase({ kind: 'sqlite', file }, { readerThread });
    opened.push(database);
    await migrateToLatest(database.db, database.dialect);
    return database;
  }

  /** How many times a 1 ms timer of this thread fires while `work` runs. */
  async function ticksDuring(work: () => Promise<unknown>): Promise<number> {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 1);
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    return ticks;
  }

  it('should give the statistics the same figures as the main connection, including writes just committed', async () => {
    const file = tempFile();
    const threaded = await open(true, file);
    expect(threaded.reads).not.toBe(threaded.db);
    const users = new UserRepo(threaded.db, 'sqlite');
    const now = Date.now();
    const made = await Promise.all(
      (['user', 'admin', 'superuser', 'user'] as const).map((role, i) =>
        users.create({
          email: `u${i}@example.test`,
          passwordHash: 'x',
          role,
          status: 'approved',
          now,
        }),
      ),
    );
    const inThread = new SqlSessionStore(threaded.db, 'sqlite', { reads: threaded.reads });
    const inMain = new SqlSessionStore(threaded.db, 'sqlite');
    const session = (userId: number, i: number, expired: boolean): SessionRecord => ({
      id: sessionIdOf(newToken()),
      userId,
      createdAt: now - 60_000 * (i + 1),
      lastSeenAt: now - 1_000,
      idleExpiresAt: now + (expired ? -1_000 : 1_800_000 + i),
      absoluteExpiresAt: now + 86_400_000,
      ip: `192.0.2.${i + 1}`,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
    });
    for (let i = 0; i < 12; i++) {
      await inThread.create(session(made[i % made.length]!.id, i, i % 5 === 0));
    }
    // One more, written just before the counts are asked: the thread sees it.
    await inThread.create(session(made[2]!.id, 20, false));

    const edges = [3_600_000, 86_400_000];
    const figures = (store: SqlSessionStore) =>
      Promise.all([
        store.counts(now),
        store.countsByRole(now),
        store.topUsers(3),
        store.healthReport(now, edges),
        store.sample(5),
      ]);
    const [counts, byRole, top, health, sample] = await figures(inThread);
    expect(counts).toEqual({ active: 10, expired: 3 });
    expect(byRole.superuser).toEqual({ total: 4, active: 3 });
    expect(await figures(inMain)).toEqual([counts, byRole, top, health, sample]);
  });

  it("should send the statistics report's scans to the reader, and the main connection none of them", async () => {
    const database = await open(true);
    const tables = (into: string[]): KyselyPlugin => ({
      transformQuery(args) {
        const node = args.node as {
          kind: string;
          from?: { froms: { table?: { identifier?: { name: string } } }[] };
        };
        into.push(
          node.kind === 'RawNode'
            ? 'raw'
            : (node.from?.froms[0]?.table?.identifier?.name ?? node.kind),
        );
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    });
    const onReads: string[] = [];
    const onMain: string[] = [];
    const reads = database.reads.withPlugin(tables(onReads));
    const db = database.db.withPlugin(tables(onMain));
    const store = new SqlSessionStore(db, 'sqlite', { reads });
    const stats = new StatsService({
      store: guardStore(store, { timeoutMs: 5_000, failuresToOpen: 3, halfOpenAfterMs: 1_000 }),
      database: { ...database, db, reads },
      users: new UserRepo(db, 'sqlite'),
      clock: Date.now,
    });
    // A request waits a little for figures, then is answered without them; they come soon.
    let report = await stats.report();
    for (let i = 0; i < 100 && (!report.sessions.data || !report.activity.data); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      report = await stats.report();
    }
    for (const section of [report.sessions, report.activity, report.database, report.health]) {
      expect(section.error).toBeNull();
      expect(section.data).not.toBeNull();
    }
    // And every id a revoke-matching would end.
    expect(await store.listIds({ now: Date.now() })).toEqual([]);
    // Sessions (counts, roles, top users, health, sample), sign-ins, and every table's rows.
    expect(onReads).toContain('sessions');
    expect(onReads).toContain('raw');
    expect(onReads.length).toBeGreaterThan(10);
    expect(onMain.filter((t) => t === 'sessions' || t === 'session_events')).toEqual([]);
  });

  it('should read the Ended tab and its export on the reader thread, an export walking the time index', async () => {
    const database = await open(true);
    const onReads: string[] = [];
    const reads = database.reads.withPlugin({
      transformQuery(args) {
        const node = args.node as {
          from?: { froms: { table?: { identifier?: { name: string } } }[] };
        };
        const from = node.from?.froms[0] as {
          alias?: { table?: { identifier?: { name: string } } };
        } & {
          table?: { identifier?: { name: string } };
        };
        onReads.push(from?.table?.identifier?.name ?? from?.alias?.table?.identifier?.name ?? '?');
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    });
    const events = new SessionEvents(database.db, { reads });
    const user = await new UserRepo(database.db, 'sqlite').create({
      email: 'ended@example.test',
      passwordHash: 'x',
      role: 'user',
      status: 'approved',
      now: Date.now(),
    });
    const sessions = Array.from({ length: 5 }, (_, i) => ({
      id: sessionIdOf(newToken()),
      userId: user.id,
      ip: `192.0.2.${i + 1}`,
      userAgent: 'ended',
    }));
    await events.record(sessions, { kind: 'signed_in' }, Date.now() - 10_000);
    await events.record(sessions, { kind: 'revoked', reason: 'test', actorId: null }, Date.now());
    const filter = { kinds: ENDING_KINDS, to: Date.now() + 1 };

    const page = await listHistory(events, filter, { offset: 0, limit: 50 });
    expect(page.total).toBe(5);
    const exported: string[] = [];
    for await (const batch of historyBatches(events, filter, 2)) {
      exported.push(...batch.map((r) => r.sessionId));
    }
    expect(exported).toEqual(page.items.map((r) => r.sessionId));
    expect(onReads.length).toBeGreaterThanOrEqual(2 + 3);

    // An export's batch reads the time index newest first; a page may sort what its kinds hold.
    const plan = async (walk: boolean) => {
      const query = historyQuery(database.db, 'sqlite', filter, walk).limit(2).compile();
      const { rows } = await database.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
      );
      return rows.map((r) => r.detail).join('; ');
    };
    expect(await plan(true)).not.toContain('TEMP B-TREE');
  });

  it('should refuse a write through the reader and leave the data as it was', async () => {
    const database = await open(true);
    await sql`create table t (id integer primary key)`.execute(database.db);
    await sql`insert into t (id) values (1)`.execute(database.db);
    await expect(sql`insert into t (id) values (2)`.execute(database.reads)).rejects.toThrow(
      /readonly|read-only|only statements that return rows/i,
    );
    await expect(sql`delete from t`.execute(database.reads)).rejects.toThrow();
    await expect(database.reads.transaction().execute(async () => {})).rejects.toThrow(/read-only/);
    const { rows } = await sql<{ n: number }>`select count(*) as n from t`.execute(database.db);
    expect(rows[0]!.n).toBe(1);
  });

  it('should scan in its own thread while this one goes on, where the main connection holds it', async () => {
    const database = await open(true);
    let answer = 0;
    const beside = await ticksDuring(async () => {
      answer = (await LONG_SCAN.execute(database.reads)).rows[0]!.n;
    });
    expect(answer).toBe(3_000_000);
    const held = await ticksDuring(() => LONG_SCAN.execute(database.db));
    expect(held).toBe(0);
    expect(beside).toBeGreaterThan(10);
  });

  it('should run in this thread without the option, and on an in-memory database', async () => {
    const plain = await open(false);
    expect(plain.reads).toBe(plain.db);
    const memory = openDatabase({ kind: 'sqlite', file: ':memory:' }, { readerThread: true });
    opened.push(memory);
    expect(memory.reads).toBe(memory.db);
  });

  it('should answer on the main connection once the thread has stopped, and fail what waited on a thread that could not start', async () => {
    const file = tempFile();
    const main = new Kysely<DB>({ dialect: new SqliteDialect({ database: new SQLite(file) }) });
    try {
      await sql`create table t (id integer primary key)`.execute(main);
      await sql`insert into t (id) values (7)`.execute(main);
      const reader = startSqliteReader(file, main);
      expect((await sql<{ id: number }>`select id from t`.execute(reader.db)).rows).toEqual([
        { id: 7 },
      ]);
      await reader.stop();
      expect((await sql<{ id: number }>`select id from t`.execute(reader.db)).rows).toEqual([
        { id: 7 },
      ]);

      // No such file: the thread cannot open it. A statement asked at once waits on the thread
      // and fails with the reason; one asked after runs on the main connection.
      const broken = startSqliteReader(path.join(path.dirname(file), 'missing.db'), main);
      await expect(sql`select id from t`.execute(broken.db)).rejects.toThrow(/SQLite reader/);
      expect((await sql<{ id: number }>`select id from t`.execute(broken.db)).rows).toEqual([
        { id: 7 },
      ]);
    } finally {
      await main.destroy();
    }
  });
});
