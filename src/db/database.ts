/**
 * @module db/database
 * Opens Kysely on SQLite or PostgreSQL, as the config names.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, type SqliteDatabase, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database as DatabaseConfig } from '../config.js';
import type { CircuitStateName } from '../resilience/breaker.js';
import { guardPool } from '../resilience/guarded-database.js';
import type { UserVersions } from '../users/user-versions.js';
import type { DB } from './schema.js';
import { startSqliteReader, stopThread } from './sqlite-reader.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  readonly db: Kysely<DB>;
  /**
   * For reads that scan much of the database (the statistics, the session counts, a sessions
   * export): on a SQLite file opened with `readerThread`, a read-only connection in a thread of
   * its own (see db/sqlite-reader), so they do not hold this thread; otherwise `db` itself.
   * Selects only.
   */
  readonly reads: Kysely<DB>;
  readonly dialect: Dialect;
  /** Round trip of a trivial query, in milliseconds. */
  ping(): Promise<number>;
  /** PostgreSQL's circuit breaker (see resilience/guarded-database.ts); none for SQLite. */
  readonly breaker?: { state: CircuitStateName; since: number };
  /**
   * SQLite only: a users' change counter for this connection (see sqliteUserVersions), so
   * validation may keep user rows in memory without Redis.
   */
  readonly userVersions?: UserVersions;
  /**
   * SQLite only: `PRAGMA data_version`, read at most once per event-loop turn. It changes when
   * another connection commits (another process); this connection's own commits leave it.
   */
  readonly dataVersion?: () => number;
  /** SQLite with the background checkpointer only: its write-ahead log (see WalLog). */
  readonly walLog?: WalLog;
  close(): Promise<void>;
}

/** What a long run of writes needs of SQLite's write-ahead log (see startCheckpointer). */
export interface WalLog {
  /** Pages the log holds since it last started over (0 when that cannot be read). */
  pages(): number;
  /**
   * Copies the log into the database file on the checkpointer thread now; resolves when done.
   * This connection's statements go on while the thread copies, and wait, asynchronously, only
   * when the log must be made to start over by force (see settleAlone).
   */
  settle(): Promise<void>;
}

// BIGINT (oid 20) comes back as a string by default; every bigint here is a time in
// milliseconds or a count, both far below 2^53.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return (value: string) => Number(value);
    // biome-ignore lint/suspicious/noExplicitAny: pg's own overloads do not accept the union
    return pg.types.getTypeParser(oid, format as any);
  },
};

/** How long an unbounded pool waits for a new connection, in milliseconds. */
const CONNECT_TIMEOUT_MS = 2_000;

export interface OpenOptions {
  /**
   * Bound on one PostgreSQL query and on waiting for a connection, in milliseconds, behind a
   * circuit breaker. @default unbounded queries (one-shot commands), connections in 2 s
   */
  timeoutMs?: number;
  /** Told when PostgreSQL's breaker changes state (`trial`: see Breaker's onStateChange). */
  onBreakerChange?: (state: CircuitStateName, at: number, trial: boolean) => void;
  /**
   * SQLite file only: a thread of its own copies the write-ahead log into the database file
   * (see startCheckpointer), so no request pays for it. @default false (one-shot commands)
   */
  checkpointInBackground?: boolean;
  /**
   * SQLite file only: `reads` runs on a read-only connection in a thread of its own (see
   * db/sqlite-reader). @default false (one-shot commands, which have no requests to hold up)
   */
  readerThread?: boolean;
}

/**
 * Opens the database. On PostgreSQL with `timeoutMs`, every query is bounded and goes through a
 * breaker; SQLite runs in this process and has no connection to lose.
 *
 * LIMITATION: `warden serve` migrates through its bounded pool, so a migration statement slower
 * than DATABASE_TIMEOUT (an index built over a large table) fails there; `warden migrate`, which
 * is unbounded, runs it. A pool of their own for migrations would remove this.
 */
export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Database {
  if (config.kind === 'postgres') {
    const { timeoutMs } = options;
    const pool = new pg.Pool({
      connectionString: config.url,
      max: 10,
      connectionTimeoutMillis: timeoutMs ?? CONNECT_TIMEOUT_MS,
      types: pgTypes,
    });
    // An idle client losing its connection must not crash the process; the next query
    // gets a fresh one.
    pool.on('error', () => {});
    if (timeoutMs === undefined) {
      return wrap(new Kysely<DB>({ dialect: new PostgresDialect({ pool }) }), 'postgres');
    }
    const guarded = guardPool(pool, { timeoutMs, onStateChange: options.onBreakerChange });
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: guarded }) });
    return { ...wrap(db, 'postgres'), breaker: guarded.breaker };
  }

  if (config.file !== ':memory:') fs.mkdirSync(path.dirname(config.file), { recursive: true });
  const sqlite = new SQLite(config.file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const logPages =
    options.checkpointInBackground && config.file !== ':memory:'
      ? logPagesOf(config.file)
      : undefined;
  const checkpointer = logPages && startCheckpointer(sqlite, config.file, logPages);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: keepStatements(sqlite) }) });
  const reader =
    options.readerThread && config.file !== ':memory:'
      ? startSqliteReader(config.file, db)
      : undefined;
  const opened = wrap(db, 'sqlite', reader?.db);
  const dataVersion = dataVersionOf(sqlite);
  return {
    ...opened,
    dataVersion,
    userVersions: sqliteUserVersions(dataVersion),
    ...(checkpointer &&
      logPages && {
        walLog: { pages: logPages.read, settle: settleAlone(db, checkpointer, logPages) },
      }),
    async close() {
      await reader?.stop();
      await checkpointer?.stop();
      logPages?.close();
      await opened.close();
    },
  };
}

interface LogHeader {
  /** Frames in the log, 0 when it cannot be read: no settle asked for. */
  read(): number;
  /** The log's first salt, which changes each time the log starts over; null when unread. */
  generation(): number | null;
  close(): void;
}

/**
 * The log's frame count as its writer last recorded it: `mxFrame`, a 32-bit integer in native
 * byte order at byte 16 of the wal-index header, the first bytes of the `-shm` file
 * (https://www.sqlite.org/walformat.html); its first salt at byte 32 (a copy of the log file's
 * big-endian bytes, read here in native order, which serves to tell one value from another).
 * Read with one pread and no checksum: another process's commit landing during it (the CLI, a
 * second instance) can misread one value, which at worst asks for a settle, or skips one.
 */
function logPagesOf(file: string): LogHeader {
  const header = Buffer.alloc(36);
  const u32 = (at: number) =>
    os.endianness() === 'LE' ? header.readUInt32LE(at) : header.readUInt32BE(at);
  let fd: number | undefined;
  const readHeader = (): boolean => {
    try {
      fd ??= fs.openSync(`${file}-shm`, 'r');
      if (fs.readSync(fd, header, 0, header.length, 0) < header.length) return false;
      // iVersion, 3007000 in every SQLite 3 so far.
      return u32(0) === 3_007_000;
    } catch {
      return false;
    }
  };
  return {
    read: () => (readHeader() ? u32(16) : 0),
    generation: () => (readHeader() ? u32(32) : null),
    close() {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
    },
  };
}

// How often the checkpointer thread copies the write-ahead log into the database file.
const CHECKPOINT_EVERY_MS = 500;
// Log pages past which a commit still checkpoints by itself (SQLite's default is 1,000): only
// should the thread fall behind or stop, so the log stays bounded.
const BACKSTOP_CHECKPOINT_PAGES = 10_000;
// How long a settle's RESTART waits for the writer and readers of the moment, in milliseconds.
const SETTLE_WAIT_MS = 1_000;
// PASSIVE passes a settle makes before it falls back to RESTART: the first copies the bulk of the
// log, the second what this process wrote meanwhile (a chunk's history rows, a few requests').
const SETTLE_PASSIVE_PASSES = 2;

// The checkpointer thread: plain CommonJS, as an eval'd worker runs it. 'passive' and
// 'restart' ask for a checkpoint now, answered once done with how many frames of the log are in
// the file (-1 when the checkpoint failed, or found another one under way); 'stop' ends it.
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.settleWaitMs);
const checkpoint = (mode) => {
  try {
    const [row] = db.pragma('wal_checkpoint(' + mode + ')');
    return row.busy === 0 ? row.checkpointed : -1;
  } catch {
    return -1;
  }
};
const timer = setInterval(() => checkpoint('PASSIVE'), workerData.everyMs);
parentPort.on('message', (message) => {
  if (message === 'passive' || message === 'restart') {
    parentPort.postMessage(checkpoint(message === 'passive' ? 'PASSIVE' : 'RESTART'));
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

interface Checkpointer {
  /**
   * A checkpoint now, on the thread; resolves when done (at once if the thread is gone) with
   * whether it ran a RESTART (which gives up on a reader after SETTLE_WAIT_MS). PASSIVE passes
   * first, while writers go on; when they leave some of the log uncopied, or `restart` asks for
   * it, a RESTART, inside `alone`, which keeps this process's statements off the database
   * meanwhile (see settleAlone). One at a time, as the thread answers one step at a time:
   * settleAlone, its only caller, shares a settle under way with whoever asks meanwhile.
   */
  settle(alone: (step: () => Promise<void>) => Promise<void>, restart: boolean): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Checkpoints the write-ahead log from a thread of its own. By default the commit that takes the
 * log past 1,000 pages copies them all into the database file itself, in this thread, where
 * every request waits: about half of a revocation of 1,000 sessions (whose history rows and
 * deletes touch that many index pages at random). A PASSIVE checkpoint from another
 * connection waits for no writer, and leaves `PRAGMA data_version` as it was (the user cache
 * stays warm). If the thread fails, the backstop keeps the log bounded.
 *
 * A long run of writes (a cleanup, a large revocation) must still pause for `settle`. The log
 * starts over only once a checkpoint has copied all of it and, when the next write begins, no
 * checkpoint is at work and no reader that began before the copy was done is still reading;
 * under writes that never pause, the thread's PASSIVE checkpoints rarely get there, the log
 * grows (29 GB in a cleanup of 1.3 million sessions without the backstop), and with the backstop
 * a commit copies 10,000 pages in this thread every few hundred milliseconds (about 250 ms each:
 * 540 stalls of the event loop over 100 ms in that cleanup; with settle, none, the longest 25
 * ms). While the run waits, PASSIVE passes usually copy the whole log and the next write starts
 * it over; when they cannot, a RESTART holds writers off until the log can start over, and this
 * process's statements wait that long for it, without holding the thread (see settleAlone).
 */
function startCheckpointer(sqlite: SQLite.Database, file: string, log: LogHeader): Checkpointer {
  sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
  const worker = new Worker(CHECKPOINTER, {
    eval: true,
    workerData: {
      file,
      module: createRequire(import.meta.url).resolve('better-sqlite3'),
      everyMs: CHECKPOINT_EVERY_MS,
      settleWaitMs: SETTLE_WAIT_MS,
    },
  });
  worker.unref();
  let running = true;
  let stopping = false;
  // The step the thread is running, answered by its next message: the frames now in the file.
  let stepDone: ((copied: number) => void) | undefined;
  const finishStep = (copied: number) => {
    const done = stepDone;
    stepDone = undefined;
    done?.(copied);
  };
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      running = false;
      finishStep(-1);
      resolve();
    });
  });
  worker.on('error', () => {});
  worker.on('message', (copied: unknown) => {
    finishStep(typeof copied === 'number' ? copied : -1);
    // Nothing waits on the thread now: it need not keep the process alive.
    if (!stopping && !stepDone) worker.unref();
  });
  const step = (name: 'passive' | 'restart') =>
    new Promise<number>((resolve) => {
      if (!running) return resolve(-1);
      stepDone = resolve;
      // Held while a caller waits, so the answer is not lost to an idle process ending.
      worker.ref();
      worker.postMessage(name);
    });
  return {
    async settle(alone, restart) {
      if (!running) return false;
      // Whole when the file holds every frame the log holds now: the thread's own count of the
      // log dates from the start of its pass, and leaves out what this process wrote meanwhile.
      for (let pass = 0; pass < SETTLE_PASSIVE_PASSES; pass++) {
        const copied = await step('passive');
        if (!running) return false;
        // Asked to restart: one pass all the same, so the RESTART that holds every statement
        // copies only what arrived during it (a chunk's pages would take it 16-19 ms).
        if (restart) break;
        if (copied >= 0 && copied >= log.read()) return false;
      }
      await alone(async () => {
        await step('restart');
      });
      return true;
    },
    async stop() {
      if (!running) return;
      stopping = true;
      await stopThread(worker, exited);
    },
  };
}

/**
 * The checkpointer's settle, holding this connection during its RESTART. That step keeps every
 * writer out until it is done (up to 100–250 ms at a million sessions), and a statement of this
 * connection that wanted to write then waited in SQLite's busy handler, in this thread, where
 * every request waits too: a revoke-matching of 90,000 held the server about 200 ms in every
 * 400. Some of those waits even failed at once with SQLITE_BUSY, and took the revocation and its
 * history rows with them. Holding Kysely's connection instead makes the statements queue behind
 * the step without holding the thread.
 *
 * Most settles need no RESTART: the long run of writes waits for the settle, so a PASSIVE pass
 * or two copy the whole log while requests go on, and this connection's next write starts the
 * log over by itself. Every RESTART held every request for its length, up to 36 ms in a
 * million-session cleanup, which settles every thousand rows. When a reader still reads an older
 * part of the log, the passes cannot copy all of it, and the settle RESTARTs it. When the passes
 * copied all of it but a reader that began at its end kept the next write from starting it over
 * (an export on the reader thread), the next settle finds the same log (same salt) written to
 * since, and restarts it by force, after one more pass.
 */
function settleAlone(
  db: Kysely<DB>,
  checkpointer: Checkpointer,
  log: LogHeader,
): () => Promise<void> {
  // The log as the last settle left it to start over by itself: its generation and length.
  let left: { generation: number; pages: number } | null = null;
  let settling: Promise<void> | undefined;
  const settle = async () => {
    const generation = log.generation();
    // Stuck: written to since, yet not started over. With nothing written since, the log is
    // still all copied and the next write starts it over: no RESTART is owed (it would wait
    // for any reader, with every statement held).
    const stuck = left !== null && generation === left.generation && log.read() > left.pages;
    const restarted = await checkpointer.settle((step) => db.connection().execute(step), stuck);
    left = restarted || generation === null ? null : { generation, pages: log.read() };
  };
  // Callers that ask while one runs (chunks in flight together) share it.
  return () => {
    settling ??= settle().finally(() => {
      settling = undefined;
    });
    return settling;
  };
}

/**
 * A users' change counter without Redis. `PRAGMA data_version` changes whenever another
 * connection commits to the file (another process: the CLI's create-superuser, a second
 * instance), and this connection's own user writes raise a counter kept beside it, shared by
 * every repo on the connection. Any commit elsewhere counts, not only user changes: a cache miss
 * then, never a stale row.
 */
function sqliteUserVersions(dataVersion: () => number): UserVersions {
  let own = 0;
  const peek = () => `${dataVersion()}.${own}`;
  return {
    read: async () => peek(),
    peek,
    bump: async () => {
      own += 1;
    },
  };
}

/**
 * The pragma costs a read transaction (a few microseconds), and validation asks for it twice
 * (sessions and users). Once per turn is enough: a request handled in this turn arrived before
 * it began, so a commit it must see ended before the first read of the turn.
 */
function dataVersionOf(sqlite: SQLite.Database): () => number {
  const statement = sqlite.prepare('PRAGMA data_version').pluck();
  let memo: number | undefined;
  const clear = () => {
    memo = undefined;
  };
  return () => {
    if (memo === undefined) {
      memo = statement.get() as number;
      setImmediate(clear);
    }
    return memo;
  };
}

/** Distinct statements kept prepared; queries with a variable number of ids make new ones. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * The database as Kysely's SQLite driver sees it, with prepared statements reused: the driver
 * prepares every query anew, which was a quarter of a session validation's CPU on SQLite.
 * A statement still running (a streamed export) is not handed out twice.
 */
function keepStatements(sqlite: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const kept = cache.get(text);
      if (kept && !kept.busy) return kept;
      const statement = sqlite.prepare(text);
      if (!kept) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

function wrap(db: Kysely<DB>, dialect: Dialect, reads: Kysely<DB> = db): Database {
  return {
    db,
    reads,
    dialect,
    async ping() {
      const start = performance.now();
      await sql`select 1`.execute(db);
      return performance.now() - start;
    },
    close: () => db.destroy(),
  };
}
