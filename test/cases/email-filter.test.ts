/**
 * Case C19 of shared/CASES.md: the email filter compares case- and Unicode-insensitively
 * and takes `%`, `_` and `.*` as the characters they are, on sessions and users alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDownTo, migrateToLatest } from '../../src/db/migrations.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();
const USERS = [
  'Alice.Example@Example.test',
  'jos\u00e9@example.test',
  'bob_smith@example.test',
  'bobxsmith@example.test',
  'ada.lovelace@example.test',
  'lada.lovelace@example.test',
  'ada.lovelace@example.org',
];

describe.each(kinds)('C19 email filter on $kind', ({ kind, skip }) => {
  let t: TestApp;
  let admin: Client;

  beforeAll(async () => {
    if (skip) return;
    t = await makeApp(kind);
    await t.createUser('root@example.test', 'superuser');
    admin = t.client();
    await admin.login('root@example.test');
    for (const email of USERS) {
      await t.createUser(email);
      await t.client().login(email);
    }
  });
  afterAll(async () => t?.close());

  async function sessionsFor(filter: string): Promise<string[]> {
    const res = await admin.get(`/admin/sessions?email=${encodeURIComponent(filter)}`, 'json');
    expect(res.statusCode).toBe(200);
    return res
      .json()
      .items.map((i: { email: string }) => i.email)
      .sort();
  }

  async function usersFor(filter: string): Promise<string[]> {
    const res = await admin.get(`/admin/users?email=${encodeURIComponent(filter)}`, 'json');
    expect(res.statusCode).toBe(200);
    return res
      .json()
      .items.map((i: { email: string }) => i.email)
      .sort();
  }

  it.skipIf(skip)('C19: finds Alice whatever the case, and keeps the email as typed', async () => {
    expect(await sessionsFor('alice.example')).toEqual(['Alice.Example@Example.test']);
    expect(await usersFor('ALICE.EXAMPLE')).toEqual(['Alice.Example@Example.test']);
  });

  it.skipIf(skip)('C19: finds José typed upper case, composed or decomposed', async () => {
    const composed = 'JOS\u00c9';
    const decomposed = 'JOSE\u0301';
    expect(await sessionsFor(composed)).toEqual(['jos\u00e9@example.test']);
    expect(await sessionsFor(decomposed)).toEqual(['jos\u00e9@example.test']);
    expect(await usersFor(decomposed)).toEqual(['jos\u00e9@example.test']);
  });

  it.skipIf(skip)('C19: finds whole and partial addresses, the @ included', async () => {
    expect(await sessionsFor('Ada.Lovelace@Example.test')).toEqual([
      'ada.lovelace@example.test',
      'lada.lovelace@example.test',
    ]);
    expect(await usersFor('ada.lovelace@example.o')).toEqual(['ada.lovelace@example.org']);
    expect(await usersFor('ce@example.org')).toEqual(['ada.lovelace@example.org']);
    expect(await sessionsFor('ada.lovelace@')).toHaveLength(3);
    expect(await usersFor('lovelace@example.test')).toEqual([
      'ada.lovelace@example.test',
      'lada.lovelace@example.test',
    ]);
  });

  it.skipIf(skip)(
    'C19: finds the users a database held before its email index was built',
    async () => {
      const { db, dialect } = t.database;
      // Without 0010 (SQLite's trigram index of addresses), then with it, filled from the rows.
      await migrateDownTo(db, dialect, '0009_analytics_per_day');
      await t.createUser('grace.hopper@example.test');
      await migrateToLatest(db, dialect);
      expect(await usersFor('hopper@example')).toEqual(['grace.hopper@example.test']);
      expect(await usersFor('ALICE.EXAMPLE@')).toEqual(['Alice.Example@Example.test']);
    },
  );

  it.skipIf(skip)('C19: takes _ as an underscore, and % and .* as themselves', async () => {
    expect(await sessionsFor('bob_')).toEqual(['bob_smith@example.test']);
    expect(await usersFor('bob_')).toEqual(['bob_smith@example.test']);
    for (const pattern of ['%', '.*', "' or 1=1 --"]) {
      expect(await sessionsFor(pattern)).toEqual([]);
      expect(await usersFor(pattern)).toEqual([]);
    }
  });
});
