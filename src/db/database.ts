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
   * This connection runs no statement meanwhile: they wait, asynchronously, for the settle.
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
  /** Told when PostgreSQL's breaker changes state. */
  onBreakerChange?: (state: CircuitStateName) => void;
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
  const checkpointer =
    options.checkpointInBackground && config.file !== ':memory:'
      ? startCheckpointer(sqlite, config.file)
      : undefined;
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: keepStatements(sqlite) }) });
  const reader =
    options.readerThread && config.file !== ':memory:'
      ? startSqliteReader(config.file, db)
      : undefined;
  const opened = wrap(db, 'sqlite', reader?.db);
  const dataVersion = dataVersionOf(sqlite);
  const logPages = checkpointer && logPagesOf(config.file);
  return {
    ...opened,
    dataVersion,
    userVersions: sqliteUserVersions(dataVersion),
    ...(checkpointer &&
      logPages && {
        walLog: { pages: logPages.read, settle: settleAlone(db, checkpointer) },
      }),
    async close() {
      await reader?.stop();
      await checkpointer?.stop();
      logPages?.close();
      await opened.close();
    },
  };
}

/**
 * The log's frame count as its writer last recorded it: `mxFrame`, a 32-bit integer in native
 * byte order at byte 16 of the wal-index header, the first bytes of the `-shm` file
 * (https://www.sqlite.org/walformat.html). Read with one pread; this process is the only writer,
 * so the header cannot change under it. Anything unexpected reads as 0: no settle asked for.
 */
function logPagesOf(file: string): { read: () => number; close: () => void } {
  const header = Buffer.alloc(20);
  const u32 = (at: number) =>
    os.endianness() === 'LE' ? header.readUInt32LE(at) : header.readUInt32BE(at);
  let fd: number | undefined;
  return {
    read() {
      try {
        fd ??= fs.openSync(`${file}-shm`, 'r');
        if (fs.readSync(fd, header, 0, header.length, 0) < header.length) return 0;
        // iVersion, 3007000 in every SQLite 3 so far.
        return u32(0) === 3_007_000 ? u32(16) : 0;
      } catch {
        return 0;
      }
    },
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

// The checkpointer thread: plain CommonJS, as an eval'd worker runs it. 'settle' asks for a
// checkpoint now, answered once done; 'stop' ends it.
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.settleWaitMs);
const checkpoint = (mode) => {
  try {
    db.pragma('wal_checkpoint(' + mode + ')');
  } catch {}
};
const timer = setInterval(() => checkpoint('PASSIVE'), workerData.everyMs);
parentPort.on('message', (message) => {
  // A settle in two steps: PASSIVE copies the bulk of the log while writers go on; RESTART
  // then copies what they added, holding writers off meanwhile, and makes sure the next writer
  // starts the log over. Each step answers when done.
  if (message === 'passive' || message === 'restart') {
    checkpoint(message === 'passive' ? 'PASSIVE' : 'RESTART');
    parentPort.postMessage(message);
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

interface Checkpointer {
  /**
   * A checkpoint now, on the thread; resolves when done (at once if the thread is gone). Its
   * RESTART step runs inside `alone`, which keeps this process's statements off the database
   * meanwhile. Callers that ask while one runs share it.
   */
  settle(alone: (step: () => Promise<void>) => Promise<void>): Promise<void>;
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
 * starts over only once a checkpoint has copied all of it and no reader or checkpoint is at work
 * when the next write begins; under writes that never pause, the thread's PASSIVE checkpoints
 * rarely get there, the log grows (29 GB in a cleanup of 1.3 million sessions without the
 * backstop), and with the backstop a commit copies 10,000 pages in this thread every few
 * hundred milliseconds (about 250 ms each: 540 stalls of the event loop over 100 ms in that
 * cleanup; with settle, none, the longest 25 ms). A settle's RESTART holds writers off while
 * it copies what arrived since its PASSIVE pass: this process's statements wait that long for
 * it, without holding the thread (see settleAlone).
 */
function startCheckpointer(sqlite: SQLite.Database, file: string): Checkpointer {
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
  let settling: Promise<void> | undefined;
  // The step the thread is running, answered by its next message.
  let stepDone: (() => void) | undefined;
  const finishStep = () => {
    const done = stepDone;
    stepDone = undefined;
    done?.();
  };
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      running = false;
      finishStep();
      resolve();
    });
  });
  worker.on('error', () => {});
  worker.on('message', () => {
    finishStep();
    // Nothing waits on the thread now: it need not keep the process alive.
    if (!stopping && !stepDone) worker.unref();
  });
  const step = (name: 'passive' | 'restart') =>
    new Promise<void>((resolve) => {
      if (!running) return resolve();
      stepDone = resolve;
      // Held while a caller waits, so the answer is not lost to an idle process ending.
      worker.ref();
      worker.postMessage(name);
    });
  return {
    settle(alone) {
      if (!running) return Promise.resolve();
      settling ??= (async () => {
        await step('passive');
        await alone(() => step('restart'));
      })().finally(() => {
        settling = undefined;
      });
      return settling;
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
 * the step without holding the thread; the PASSIVE step before it lets them go on.
 */
function settleAlone(db: Kysely<DB>, checkpointer: Checkpointer): () => Promise<void> {
  return () => checkpointer.settle((step) => db.connection().execute(step));
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
