/**
 * Ended-sessions exports on both stores: the CSV (parsed strictly) and the JSON hold exactly
 * the rows the ended tab lists for the same filters, across all its pages; cells a spreadsheet
 * would run as formulas are neutralised; each export is audited with its row count; the tab
 * links to both with its filters; and the history is read in batches that neither lose nor
 * repeat rows sharing one time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HistoryRow, historyBatches, historyQuery } from '../../src/admin/ended-query.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { csvObjects } from '../support/csv.js';
import { DAY, HOUR, isoDay, lastAudit, plantSession, signedIn } from './helpers.js';

const ROOT = 'root@ended-export.test';
const FORMULA_UAS = ["=cmd|' /C calc'!A0", '+SUM(1,2)', '-2+3', '@SUM(A1:A2)', '\tTabbed agent'];
const AWKWARD_UA = 'Agent "quoted", with comma\nand a line break';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';

/** A row as the tab's JSON lists it. */
type TableRow = HistoryRow;

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`ended sessions export (${kind})`, () => {
    let t: TestApp;
    let root: Client;
    let rootId: number;

    /** Every row the ended tab lists for a query, all pages, as its JSON answers. */
    async function tableRows(search: string): Promise<TableRow[]> {
      const rows: TableRow[] = [];
      const sep = search ? '&' : '?';
      for (let page = 1; ; page++) {
        const res = await root.get(
          `/admin/sessions/ended${search}${sep}per_page=200&page=${page}`,
          'json',
        );
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { total: number; items: TableRow[] };
        rows.push(...body.items);
        if (rows.length >= body.total || body.items.length === 0) return rows;
      }
    }

    beforeAll(async () => {
      t = await makeApp(kind, { env: { SESSION_RETENTION: '7d', CLEANUP_INTERVAL: '0' } });
      rootId = (await t.createUser(ROOT, 'superuser')).id;
      const alice = await t.createUser('alice@ended-export.test');
      const bob = await t.createUser('bob@ended-export.test', 'admin');
      const carol = await t.createUser('carol.alison@ended-export.test');
      root = (await signedIn(t, ROOT)).client;

      // Real endings: a sign-out, a revoke by root, and cleanup of an expired session.
      const out = await signedIn(t, 'alice@ended-export.test');
      expect((await out.client.postJson('/api/auth/logout')).statusCode).toBe(200);
      const revoked = await plantSession(t, bob.id, { userAgent: FORMULA_UAS[0] });
      expect((await root.postJson(`/admin/sessions/revoke/${revoked.id}`)).statusCode).toBe(200);
      await plantSession(t, carol.id, { expired: true, userAgent: AWKWARD_UA });
      expect((await root.postJson('/admin/sessions/cleanup-expired')).statusCode).toBe(200);

      // 36 more over five days, in threes that share one time, written as history rows.
      const owners = [alice, bob, carol];
      const kinds = ['signed_out', 'revoked', 'cleaned_up'] as const;
      const reasons = { signed_out: 'signed_out', revoked: 'evicted_by_limit', cleaned_up: 'idle' };
      const now = Date.now();
      await t.database.db
        .insertInto('session_events')
        .values(
          Array.from({ length: 36 }, (_, i) => {
            const k = kinds[i % 3];
            return {
              session_id: i.toString(16).padStart(64, 'a'),
              user_id: owners[(i >> 1) % 3].id,
              kind: k,
              reason: reasons[k],
              actor_id: k === 'revoked' && i % 2 === 0 ? rootId : null,
              at: now - HOUR - Math.floor(i / 3) * 10 * HOUR,
              ip: `192.0.2.${i + 1}`,
              user_agent: i % 6 < FORMULA_UAS.length ? FORMULA_UAS[i % 6] : FIREFOX,
            };
          }),
        )
        .execute();
      // Beyond the retention: in no export.
      await t.database.db
        .insertInto('session_events')
        .values({
          session_id: 'f'.repeat(64),
          user_id: alice.id,
          kind: 'revoked',
          reason: 'revoked',
          actor_id: rootId,
          at: now - 8 * DAY,
          ip: '192.0.2.200',
          user_agent: FIREFOX,
        })
        .execute();
    });

    afterAll(async () => {
      await t?.close();
    });

    const searches = () => [
      '',
      '?kind=revoked',
      '?email=ALI',
      '?role=admin&kind=revoked',
      `?ended_from=${isoDay(Date.now() - 2 * DAY)}&ended_to=${isoDay(Date.now() - 2 * DAY)}`,
      '?email=nobody-matches',
    ];

    it('should export as CSV exactly the rows the tab lists, for each filter', async () => {
      for (const search of searches()) {
        const table = await tableRows(search);
        const res = await root.get(`/admin/sessions/ended/export.csv${search}`);
        expect(res.statusCode, search).toBe(200);
        expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
        expect(res.headers['content-disposition']).toMatch(
          /^attachment; filename="ended-sessions-\d{8}-\d{6}\.csv"$/,
        );
        const rows = csvObjects(res.body);
        expect(
          rows.map((r) => r.session_id),
          search,
        ).toEqual(table.map((r) => r.sessionId));
        for (const [i, r] of rows.entries()) {
          const want = table[i];
          expect(r).toMatchObject({
            user_id: String(want.userId),
            email: want.email ?? '',
            role: want.role ?? '',
            ended_at: new Date(want.at).toISOString(),
            kind: want.kind,
            reason: want.reason ?? '',
            actor_id: want.actorId === null ? '' : String(want.actorId),
            ip: want.ip ?? '',
          });
        }
      }
      expect((await tableRows('')).length).toBe(39);
    });

    it('should export as JSON exactly the rows the tab lists, for each filter', async () => {
      for (const search of searches()) {
        const table = await tableRows(search);
        const res = await root.get(`/admin/sessions/ended/export.json${search}`);
        expect(res.statusCode, search).toBe(200);
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        const rows = JSON.parse(res.body) as Record<string, unknown>[];
        expect(rows).toHaveLength(table.length);
        for (const [i, r] of rows.entries()) {
          const { at, ...rest } = table[i];
          expect(r, search).toMatchObject({ ...rest, endedAt: new Date(at).toISOString() });
        }
      }
    });

    it('should say who ended each session, as the tab does', async () => {
      const csv = csvObjects((await root.get('/admin/sessions/ended/export.csv')).body);
      const by = new Set(csv.map((r) => `${r.kind}:${r.ended_by}`));
      expect(by).toEqual(
        new Set([
          'signed_out:the user',
          `revoked:${ROOT}`,
          'revoked:Warden',
          `cleaned_up:${ROOT}`,
          'cleaned_up:Warden',
        ]),
      );
      const firefox = csv.filter((r) => r.user_agent === FIREFOX);
      expect(firefox.length).toBeGreaterThan(0);
      for (const r of firefox) expect([r.browser, r.os]).toEqual(['Firefox 133', 'Linux']);
    });

    it('should neutralise cells a spreadsheet would run, and quote the awkward ones', async () => {
      const csv = csvObjects((await root.get('/admin/sessions/ended/export.csv')).body);
      const agents = csv.map((r) => r.user_agent);
      for (const ua of FORMULA_UAS) expect(agents).toContain(`'${ua}`);
      expect(agents).toContain(AWKWARD_UA);
      for (const row of csv) {
        for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      }
      // JSON is data, not a spreadsheet: the values stay as they are.
      const json = JSON.parse((await root.get('/admin/sessions/ended/export.json')).body);
      expect(json.map((r: { userAgent: string }) => r.userAgent)).toContain(FORMULA_UAS[0]);
    });

    it('should audit each export with its format, filters and row count', async () => {
      const res = await root.get('/admin/sessions/ended/export.json?kind=revoked&page=2');
      const rows = JSON.parse(res.body).length;
      expect(rows).toBeGreaterThan(0);
      const audit = await lastAudit(t, 'sessions.ended_export');
      expect(audit.actor_email).toBe(ROOT);
      expect(audit.outcome).toBe('success');
      expect(audit.target).toBe('kind=revoked');
      expect(audit.details).toMatchObject({ format: 'json', counts: { rows } });
    });

    it('should offer both exports above the tab, with its filters and the moment it was read', async () => {
      const res = await root.get('/admin/sessions/ended?role=admin&kind=revoked&page=2&per_page=5');
      expect(res.statusCode).toBe(200);
      const links = [...res.body.matchAll(/href="(\/admin\/sessions\/ended\/export\.[^"]+)"/g)].map(
        (m) => m[1].replace(/&amp;/g, '&'),
      );
      expect(links).toHaveLength(2);
      const csv = new URL(links[0], 'http://x');
      expect(csv.pathname).toBe('/admin/sessions/ended/export.csv');
      expect(links[1]).toBe(links[0].replace('export.csv', 'export.json'));
      expect(Object.fromEntries(csv.searchParams)).toEqual({
        role: 'admin',
        kind: 'revoked',
        as_of: expect.stringMatching(/^\d+$/),
      });
      // The link's file holds what the tab counted.
      const file = csvObjects((await root.get(links[0])).body);
      expect(file.length).toBe((await tableRows('?role=admin&kind=revoked')).length);
    });

    it('should leave out endings after the snapshot it was given', async () => {
      const before = (await tableRows('')).length;
      const asOf = Date.now();
      await plantSession(t, rootId).then((s) => root.postJson(`/admin/sessions/revoke/${s.id}`));
      const rows = JSON.parse(
        (await root.get(`/admin/sessions/ended/export.json?as_of=${asOf}`)).body,
      );
      expect(rows).toHaveLength(before);
      expect(JSON.parse((await root.get('/admin/sessions/ended/export.json')).body)).toHaveLength(
        before + 1,
      );
    });

    it.each([
      ['ended_from=2025-02-30', 'ended_from'],
      ['ended_from=2025-03-02&ended_to=2025-03-01', 'ended_from'],
      ['kind=signed_in', 'kind'],
    ])('should refuse %s with 400 naming %s', async (search, field) => {
      const res = await root.get(`/admin/sessions/ended/export.csv?${search}`, 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });
    });

    it('should keep exports to superusers, and run none for a HEAD', async () => {
      await t.createUser('plain@ended-export.test', 'admin');
      const plain = (await signedIn(t, 'plain@ended-export.test')).client;
      expect((await plain.get('/admin/sessions/ended/export.csv', 'json')).statusCode).toBe(403);
      expect((await t.client().get('/admin/sessions/ended/export.json', 'json')).statusCode).toBe(
        401,
      );
      const before = await t.database.db.selectFrom('audit_log').select('id').execute();
      const head = await root.app.inject({
        method: 'HEAD',
        url: '/admin/sessions/ended/export.csv',
        headers: { cookie: root.cookieHeader() },
      });
      expect(head.statusCode).toBe(405);
      expect(head.headers.allow).toBe('GET');
      const after = await t.database.db.selectFrom('audit_log').select('id').execute();
      expect(after.length).toBe(before.length);
    });

    it('should read the history in batches that neither lose nor repeat rows of one time', async () => {
      const { db, dialect } = t.database;
      const filter = { from: Date.now() - 7 * DAY };
      const all = (await historyQuery(db, dialect, filter).execute()).map((r) => r.id);
      expect(all.length).toBeGreaterThan(30);
      for (const batch of [1, 2, 3, 7]) {
        const got: number[] = [];
        for await (const rows of historyBatches(t.app.warden.events, filter, batch)) {
          expect(rows.length).toBeLessThanOrEqual(batch);
          got.push(...rows.map((r) => r.id));
        }
        expect(got, `batch ${batch}`).toEqual(all);
      }
    });
  });
}
