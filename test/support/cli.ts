/**
 * The `warden` command line as a user runs it, for the suites that test it: `node bin/warden.js
 * …` in a child process, with an environment of only what the test sets, on a SQLite file in
 * a temp dir of each test's own. Every child still running after its test is killed, and the
 * dir removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, vi } from 'vitest';

export const BIN = path.resolve(import.meta.dirname, '../../bin/warden.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  /** This test's temp dir and the SQLite file in it (DATABASE_URL unless the test sets one). */
  readonly dir: string;
  readonly dbFile: string;
  /** Starts `warden <args>`; the caller reads its output. */
  start(args: string[], env?: Record<string, string>): ChildProcess;
  /** Runs `warden <args>` to its end. */
  run(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** A read-only query on the test's SQLite file (after the children that write it exit). */
  query<T>(sql: string, ...params: unknown[]): T[];
  /** The `n` of a `select count(*) as n …` query. */
  count(sql: string, ...params: unknown[]): number;
}

/** Registers the hooks of one suite's children; call at the top of the test file. */
export function useCli(tempPrefix = 'warden-cli-'): Cli {
  // Each child loads the whole CLI: 3 to 6 s on a slow 2-core machine during a full run, and
  // some tests start several one after another (27.6 s of the default 30 s was seen).
  vi.setConfig({ testTimeout: 120_000 });
  const children = new Set<ChildProcess>();
  let dir = '';
  let dbFile = '';

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), tempPrefix));
    dbFile = path.join(dir, 'warden.db');
  });

  afterEach(async () => {
    await Promise.all([...children].map(kill));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = (args: string[], env: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      // Only what the test sets: the machine's own REDIS_URL or DATABASE_URL stay out.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: dbFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new SQLite(dbFile, { readonly: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };

  return {
    get dir() {
      return dir;
    },
    get dbFile() {
      return dbFile;
    },
    start,
    run: (args, env) => collect(start(args, env)),
    query,
    count: (sql, ...params) => query<{ n: number }>(sql, ...params)[0].n,
  };
}

/** The child's exit code and everything it wrote. */
function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
