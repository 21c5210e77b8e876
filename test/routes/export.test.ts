/**
 * Sessions exports on both stores: the CSV (parsed strictly) and the JSON hold exactly the rows
 * the sessions table matches for the same filters, across all its pages; cells a spreadsheet
 * would run as formulas are neutralised; each export is audited with its row count; the
 * store is read in bounded chunks (ties on the creation time included); and a 20,000-row
 * export streams: chunked, its first bytes out before the store is asked for the last chunk.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_CHUNK, sessionChunks } from '../../src/admin/export-sessions.js';
import type {
  SessionQuery,
  SessionRecord,
  SessionStore,
} from '../../src/sessions/session-store.js';
import { toRow } from '../../src/sessions/sql-store.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { csvObjects } from '../support/csv.js';
import { dayStart, HOUR, isoDay, lastAudit, MINUTE, plantSession, signedIn } from './helpers.js';

const ROOT = 'root@export.test';
const FORMULA_UAS = [
  "=cmd|' /C calc'!A0",
  '+SUM(1,2)',
  '-2+3',
  '@SUM(A1:A2)',
  '\tTabbed agent',
  '\rReturned agent',
];
const AWKWARD_UA = 'Agent "quoted", with comma\nand a line break';

interface ListedItem {
  id: string;
  current?: boolean;
  userId: number;
  email: string;
  role: string;
  status: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string;
  browser: string;
  os: string;
}

/** Counts list() calls and their limits, and when each was made. */
type ListCall = { limit: number; offset: number; countUpTo?: number; at: number };

function spyOnList(inner: SessionStore, calls: ListCall[]): SessionStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== 'list' || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (q: SessionQuery) => {
        calls.push({
          limit: q.limit,
          offset: q.offset,
          countUpTo: q.countUpTo,
          at: performance.now(),
        });
        return value.call(target, q);
      };
    },
  });
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`sessions export (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    const listCalls: ListCall[] = [];

    /** Every row the table shows for a query, all pages, as its JSON answers. */
    async function tableRows(search: string): Promise<ListedItem[]> {
      const rows: ListedItem[] = [];
      const sep = search ? '&' : '?';
      for (let page = 1; ; page++) {
        const res = await admin.get(
          `/admin/sessions${search}${sep}per_page=200&page=${page}`,
          'json',
        );
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { total: number; items: ListedItem[] };
        rows.push(...body.items);
        if (rows.length >= body.total || body.items.length === 0) return rows;
      }
    }

    beforeAll(async () => {
      // The store's own list calls are what these tests watch; on SQLite the server's export reads
      // on the reader thread instead (the last test here).
      t = await makeApp(kind, {
        wrapStore: (s) => spyOnList(s, listCalls),
        readerThread: false,
      });
      await t.createUser(ROOT, 'superuser');
      const alice = await t.createUser('alice@example.test', 'user');
      const bob = await t.createUser('bob@example.test', 'admin');
      const carol = await t.createUser('carol.alison@example.test', 'user');
      admin = (await signedIn(t, ROOT)).client;

      const owners = [alice, bob, carol];
      // 30 sessions over three days, in pairs that share a creation time, some expired.
      for (let i = 0; i < 30; i++) {
        const pair = Math.floor(i / 2);
        const createdAt = dayStart(1 + (pair % 3)) + pair * MINUTE + 7;
        await plantSession(t, owners[i % 3].id, {
          createdAt,
          expired: i % 4 === 0,
          ip: `192.0.2.${i + 1}`,
          userAgent:
            i < FORMULA_UAS.length
              ? FORMULA_UAS[i]
              : i === 10
                ? AWKWARD_UA
                : 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
        });
      }
    });

    afterAll(async () => {
      await t?.close();
    });

    const searches = [
      '',
      '?status=active',
      '?status=expired&role=user',
      '?email=ALI',
      `?created_from=${isoDay(dayStart(1))}&created_to=${isoDay(dayStart(1))}`,
      '?role=admin&status=active',
      '?email=nobody-matches',
    ];

    it('should export as CSV exactly the rows the table matches, for each filter', async () => {
      for (const search of searches) {
        const table = await tableRows(search);
        const res = await admin.get(`/admin/sessions/export.csv${search}`);
        expect(res.statusCode, search).toBe(200);
        expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
        expect(res.headers['content-disposition']).toMatch(
          /^attachment; filename="sessions-\d{8}-\d{6}\.csv"$/,
        );
        const rows = csvObjects(res.body);
        expect(
          rows.map((r) => r.id),
          search,
        ).toEqual(table.map((r) => r.id));
        for (const [i, r] of rows.entries()) {
          const want = table[i];
          expect(r).toMatchObject({
            user_id: String(want.userId),
            email: want.email,
            role: want.role,
            status: want.status,
            created_at: new Date(want.createdAt).toISOString(),
            last_seen_at: new Date(want.lastSeenAt).toISOString(),
            expires_at: new Date(want.expiresAt).toISOString(),
            ip: want.ip,
            browser: want.browser,
            os: want.os,
          });
        }
      }
    });

    it('should export as JSON exactly the rows the table matches, for each filter', async () => {
      for (const search of searches) {
        const table = await tableRows(search);
        const res = await admin.get(`/admin/sessions/export.json${search}`);
        expect(res.statusCode, search).toBe(200);
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        const rows = JSON.parse(res.body) as Record<string, unknown>[];
        expect(
          rows.map((r) => r.id),
          search,
        ).toEqual(table.map((r) => r.id));
        for (const [i, r] of rows.entries()) {
          const { createdAt, lastSeenAt, expiresAt, current: _, ...rest } = table[i];
          expect(r).toMatchObject({
            ...rest,
            createdAt: new Date(createdAt).toISOString(),
            lastSeenAt: new Date(lastSeenAt).toISOString(),
            expiresAt: new Date(expiresAt).toISOString(),
          });
        }
      }
    });

    it('should neutralise cells a spreadsheet would run, and quote the awkward ones', async () => {
      const csv = csvObjects((await admin.get('/admin/sessions/export.csv')).body);
      const agents = csv.map((r) => r.user_agent);
      for (const ua of FORMULA_UAS) expect(agents).toContain(`'${ua}`);
      expect(agents).toContain(AWKWARD_UA);
      // No cell at all starts with a formula character.
      for (const row of csv) {
        for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      }
      // JSON is data, not a spreadsheet: the values stay as they are.
      const json = JSON.parse((await admin.get('/admin/sessions/export.json')).body);
      expect(json.map((r: { userAgent: string }) => r.userAgent)).toContain(FORMULA_UAS[0]);
    });

    it('should audit each export with its format, filters and row count', async () => {
      const res = await admin.get('/admin/sessions/export.json?status=expired&role=user');
      const rows = JSON.parse(res.body).length;
      expect(rows).toBeGreaterThan(0);
      const audit = await lastAudit(t, 'sessions.export');
      expect(audit.actor_email).toBe(ROOT);
      expect(audit.outcome).toBe('success');
      expect(audit.target).toBe('status=expired&role=user');
      expect(audit.details).toMatchObject({ format: 'json', counts: { rows } });
    });

    it('should answer 400 naming the field for bad filters, and keep exports to superusers', async () => {
      const bad = await admin.get('/admin/sessions/export.csv?created_from=2025-02-30', 'json');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.details.field).toBe('created_from');
      // A value not even shaped like a date is told how to write one, not shown a pattern.
      const shapeless = await admin.get('/admin/sessions/export.csv?created_to=bad', 'json');
      expect(shapeless.statusCode).toBe(400);
      expect(shapeless.json().error.message).toBe(
        'Invalid request: created_to must be a date written YYYY-MM-DD',
      );
      await t.createUser('plain@export.test', 'user');
      const plain = (await signedIn(t, 'plain@export.test')).client;
      expect((await plain.get('/admin/sessions/export.csv', 'json')).statusCode).toBe(403);
      expect((await t.client().get('/admin/sessions/export.json', 'json')).statusCode).toBe(401);
      // A HEAD would run a whole export and audit it: there is none.
      const before = (await auditRowsOf(t)).length;
      const head = await admin.app.inject({
        method: 'HEAD',
        url: '/admin/sessions/export.csv',
        headers: { cookie: admin.cookieHeader() },
      });
      expect(head.statusCode).toBe(405);
      expect(head.headers.allow).toBe('GET');
      expect((await auditRowsOf(t)).length).toBe(before);
    });

    it('should page through ties on the creation time without losing or repeating one', async () => {
      for (const status of ['all', 'expired'] as const) {
        const query = { now: Date.now(), status };
        const all = await t.store.listIds(query);
        expect(all.length).toBeGreaterThan(3);
        for (const chunk of [1, 2, 3, 7]) {
          const got: SessionRecord[] = [];
          for await (const batch of sessionChunks(t.store, query, chunk)) {
            expect(batch.length).toBeLessThanOrEqual(chunk);
            got.push(...batch);
          }
          expect(
            got.map((s) => s.id),
            `${status}, chunk ${chunk}`,
          ).toEqual(all);
        }
      }
    });

    it('should export expired sessions most recently expired first, ties on the deadline included', async () => {
      const owner = await t.createUser('ties@export.test');
      const now = Date.now();
      // Created in one order, ended in the opposite one; three end at the same instant.
      const ends = [
        now - 5 * MINUTE,
        now - 4 * MINUTE,
        now - 3 * MINUTE,
        now - 3 * MINUTE,
        now - 3 * MINUTE,
      ];
      const planted = ends.map((end, i) => ({
        id: createHash('sha256').update(`export-ties-${now}-${i}`).digest('hex'),
        userId: owner.id,
        createdAt: now - HOUR + i * MINUTE,
        lastSeenAt: now - HOUR + i * MINUTE,
        idleExpiresAt: end,
        absoluteExpiresAt: now + HOUR,
        ip: '203.0.113.9',
        userAgent: 'curl/8.5.0',
      }));
      for (const s of planted) await t.store.create(s);
      try {
        const query = { now, status: 'expired' as const, userIds: [owner.id] };
        const want = [...planted]
          .sort((a, b) => b.idleExpiresAt - a.idleExpiresAt || (a.id < b.id ? 1 : -1))
          .map((s) => s.id);
        expect(await t.store.listIds(query)).toEqual(want);
        for (const chunk of [1, 2, 4]) {
          const got: string[] = [];
          for await (const batch of sessionChunks(t.store, query, chunk)) {
            got.push(...batch.map((s) => s.id));
          }
          expect(got, `chunk ${chunk}`).toEqual(want);
        }
      } finally {
        await t.store.deleteMany(planted.map((s) => s.id));
      }
    });

    it('should stream a 20,000-row export in chunks', { timeout: 120_000 }, async () => {
      const users = await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.createUser(`bulk${i}@export.test`)),
      );
      await plantMany(
        t,
        users.map((u) => u.id),
        20_000,
      );
      const expected = (await tableRowsCount(admin)) as number;
      expect(expected).toBeGreaterThanOrEqual(20_000);

      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = t.app.server.address() as AddressInfo;
      listCalls.length = 0;
      const started = performance.now();
      const result = await new Promise<{
        chunked: boolean;
        lines: number;
        firstByteAt: number;
      }>((resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port,
            path: '/admin/sessions/export.csv',
            headers: { cookie: admin.cookieHeader() },
          },
          (res) => {
            let lines = 0;
            let firstByteAt = 0;
            let last = 0;
            res.on('data', (chunk: Buffer) => {
              firstByteAt ||= performance.now();
              // Count CRLFs (record ends) without keeping the body; a cell may hold a bare LF.
              for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
                if ((i > 0 ? chunk[i - 1] : last) === 13) lines++;
              }
              last = chunk[chunk.length - 1];
            });
            res.on('end', () =>
              resolve({
                chunked: res.headers['transfer-encoding'] === 'chunked',
                lines,
                firstByteAt,
              }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      });

      expect(result.chunked).toBe(true);
      expect(result.lines).toBe(expected + 1);
      // Read in bounded chunks, and the first bytes left before the last chunk was asked for.
      expect(listCalls.length).toBeGreaterThanOrEqual(Math.ceil(expected / EXPORT_CHUNK));
      for (const c of listCalls) {
        expect(c.limit).toBeLessThanOrEqual(EXPORT_CHUNK);
        // Each call counts only as far as it must to know whether more remain.
        expect(c.countUpTo).toBe(c.offset + c.limit + 1);
      }
      expect(result.firstByteAt).toBeGreaterThan(started);
      expect(result.firstByteAt).toBeLessThan(listCalls[listCalls.length - 1].at);
      const audit = await lastAudit(t, 'sessions.export');
      expect(audit.details).toMatchObject({ format: 'csv', counts: { rows: expected } });
    });

    it('should let other work run between the chunks of an export', async () => {
      // After the 20,000-row test. Through inject nothing waits on a socket, so only the export's
      // own turns let a timer of this process run meanwhile; on SQLite, which answers in this
      // thread, every request would otherwise wait for the whole export.
      let turns = 0;
      let running = true;
      const turn = () => {
        if (!running) return;
        turns += 1;
        setImmediate(turn);
      };
      setImmediate(turn);
      const res = await t.app.inject({
        method: 'GET',
        url: '/admin/sessions/export.csv',
        headers: { cookie: admin.cookieHeader() },
      });
      running = false;
      expect(res.statusCode).toBe(200);
      expect(turns).toBeGreaterThanOrEqual(Math.floor(20_000 / EXPORT_CHUNK));
    });

    it('should audit an export the client walked away from as a failure, with the rows sent', async () => {
      // After the 20,000-row test: the app listens and the store is full.
      const { port } = t.app.server.address() as AddressInfo;
      const before = (await auditRowsOf(t)).length;
      await new Promise<void>((resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port,
            path: '/admin/sessions/export.json',
            headers: { cookie: admin.cookieHeader() },
          },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      });
      await expect
        .poll(async () => (await auditRowsOf(t)).length, { timeout: 5_000 })
        .toBe(before + 1);
      const audit = await lastAudit(t, 'sessions.export');
      expect(audit.outcome).toBe('failure');
      // The address is the client's, though its socket was gone when the row was written.
      expect(audit.ip).toBe('127.0.0.1');
      expect(audit.details).toMatchObject({ format: 'json' });
      const rows = (audit.details.counts as { rows: number }).rows;
      expect(rows).toBeLessThan(20_000);
    });
  });
}

describe.skipIf(!(await storeKindsToRun()).some((k) => k.kind === 'sqlite' && !k.skip))(
  'sessions export on SQLite with the reader thread',
  () => {
    it('should read the rows on the reader thread, every one of them, none through the request thread', async () => {
      const calls: ListCall[] = [];
      const t = await makeApp('sqlite', { wrapStore: (s) => spyOnList(s, calls) });
      try {
        expect(t.database.reads).not.toBe(t.database.db);
        await t.createUser(ROOT, 'superuser');
        const owner = await t.createUser('many@export.test');
        await plantMany(t, [owner.id], 5_000);
        const admin = (await signedIn(t, ROOT)).client;
        calls.length = 0;
        const res = await t.app.inject({
          method: 'GET',
          url: '/admin/sessions/export.csv',
          headers: { cookie: admin.cookieHeader() },
        });
        expect(res.statusCode).toBe(200);
        const rows = csvObjects(res.body);
        // The planted sessions and the superuser's own.
        expect(rows.length).toBe(5_001);
        expect(new Set(rows.map((r) => r.id)).size).toBe(5_001);
        expect(calls).toEqual([]);
      } finally {
        await t.close();
      }
    });
  },
);

function auditRowsOf(t: TestApp) {
  return t.database.db.selectFrom('audit_log').select('id').execute();
}

async function tableRowsCount(admin: Client): Promise<number> {
  const res = await admin.get('/admin/sessions?per_page=1', 'json');
  return res.json().total;
}

/** Stores `n` sessions for these users, straight into the store in parallel batches. */
async function plantMany(t: TestApp, userIds: number[], n: number): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < n; i += 500) {
    const batch: SessionRecord[] = [];
    for (let j = i; j < Math.min(n, i + 500); j++) {
      const createdAt = now - 2 * HOUR - j * 100;
      batch.push({
        id: `${j.toString(16).padStart(8, '0')}${'e'.repeat(56)}`,
        userId: userIds[j % userIds.length],
        createdAt,
        lastSeenAt: createdAt,
        idleExpiresAt: now + 30 * MINUTE,
        absoluteExpiresAt: now + 10 * HOUR,
        ip: '198.51.100.7',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
      });
    }
    if (t.kind === 'sqlite') {
      await t.database.db.insertInto('sessions').values(batch.map(toRow)).execute();
    } else {
      await Promise.all(batch.map((s) => t.store.create(s)));
    }
  }
}
