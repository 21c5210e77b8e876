/**
 * On SQLite the commit that takes the write-ahead log past 1,000 pages checkpoints it by itself,
 * in Warden's own thread: about half of what a revocation of 1,000 sessions cost a request. The
 * server checkpoints from a thread of its own instead. The database file is written only by
 * checkpoints, so its size tells when one ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SQLite checkpoints', () => {
  let database: Database | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });

  /** A fresh file database, its file, and a write of about 1,500 log pages. */
  async function open(checkpointInBackground: boolean) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-checkpoint-'));
    const file = path.join(dir, 'warden.db');
    database = openDatabase({ kind: 'sqlite', file }, { checkpointInBackground });
    const { db } = database;
    await sql`create table t (id integer primary key, body text not null)`.execute(db);
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
    const size = () => fs.statSync(file).size;
    const write = async () => {
      for (let i = 0; i < 3_000; i += 500) {
        const rows = Array.from({ length: 500 }, (_, j) => ({
          id: i + j,
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
});
