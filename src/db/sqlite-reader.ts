/**
 * @module db/sqlite-reader
 * Reads that scan a large part of the SQLite file (the statistics page's counts, its health
 * buckets, its sign-in charts) on a read-only connection in a thread of their own.
 *
 * better-sqlite3 answers in the thread that asks, and Warden serves every request from one
 * thread: at a million sessions the statistics page's reads held every sign-in and validation
 * for 0.8 to 2.2 s the first time it was opened, and about 120 ms each time its figures were
 * taken again. Here they run beside the requests. In WAL mode a reader sees every transaction
 * committed before its statement starts, so a figure read right after a write counts it.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { DB } from './schema.js';

// The reader thread: plain CommonJS, as an eval'd worker runs it. Each message is a statement
// and its parameters; the answer is its rows or the error's message. Statements that write are
// refused by the read-only connection itself.
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const statements = new Map();
parentPort.on('message', (message) => {
  if (message === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  const { id, sql, parameters } = message;
  try {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      // The statistics ask the same few dozen statements again and again.
      if (statements.size < 256) statements.set(sql, statement);
    }
    if (!statement.reader) throw new Error('the SQLite reader runs only statements that return rows');
    parentPort.postMessage({ id, rows: statement.all(parameters) });
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
`;

type Answer = { id: number; rows: unknown[] } | { id: number; error: string };

export interface SqliteReader {
  /** Kysely on the reader thread: selects only. */
  readonly db: Kysely<DB>;
  /** Stops the thread; statements asked afterwards run on the fallback connection. */
  stop(): Promise<void>;
}

/**
 * Starts the reader thread on a SQLite file (a file another connection of this process holds
 * open in WAL mode). Should the thread stop (it fails to open the file, or exits), every
 * statement waiting on it fails with the reason, and later ones run on `fallback`, the main
 * connection, as they would without a thread.
 */
export function startSqliteReader(file: string, fallback: Kysely<DB>): SqliteReader {
  const worker = new Worker(READER, {
    eval: true,
    workerData: { file, module: createRequire(import.meta.url).resolve('better-sqlite3') },
  });
  // An idle reader must not keep the process alive; one with statements in flight does.
  worker.unref();
  let running = true;
  let nextId = 0;
  const waiting = new Map<
    number,
    { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }
  >();
  const hold = () => (waiting.size > 0 ? worker.ref() : worker.unref());

  const fail = (reason: string) => {
    running = false;
    for (const { reject } of waiting.values()) reject(new Error(`SQLite reader thread: ${reason}`));
    waiting.clear();
  };
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      fail(`stopped (exit code ${code})`);
      resolve();
    });
  });
  worker.on('error', (err) => fail(err.message));
  worker.on('message', (answer: Answer) => {
    const pending = waiting.get(answer.id);
    if (!pending) return;
    waiting.delete(answer.id);
    hold();
    if ('error' in answer) pending.reject(new Error(answer.error));
    else pending.resolve(answer.rows);
  });

  const connection: DatabaseConnection = {
    async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
      if (!running) return fallback.executeQuery<R>(query);
      const id = nextId++;
      const rows = await new Promise<unknown[]>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        hold();
        worker.postMessage({ id, sql: query.sql, parameters: query.parameters });
      });
      return { rows: rows as R[] };
    },
    // biome-ignore lint/correctness/useYield: refuses before its first row
    async *streamQuery() {
      throw new Error('the SQLite reader does not stream');
    },
  };
  const refuse = async () => {
    throw new Error('the SQLite reader is read-only: no transactions');
  };
  const driver: Driver = {
    async init() {},
    // The thread takes one statement at a time in the order asked; no lock is needed here.
    acquireConnection: async () => connection,
    beginTransaction: refuse,
    commitTransaction: refuse,
    rollbackTransaction: refuse,
    async releaseConnection() {},
    async destroy() {},
  };
  const dialect: Dialect = {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => driver,
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };

  return {
    db: new Kysely<DB>({ dialect }),
    async stop() {
      if (!running) return;
      running = false;
      await stopThread(worker, exited);
    },
  };
}

/**
 * Tells one of the SQLite threads (this reader, the checkpointer) to stop, and waits until it
 * has. Held meanwhile: an unref'd thread alone would let the process end mid-close.
 */
export async function stopThread(worker: Worker, exited: Promise<void>): Promise<void> {
  worker.ref();
  worker.postMessage('stop');
  await exited;
}
