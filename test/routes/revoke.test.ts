/**
 * The console's revocations by id on both stores: one session, all of a user's, and a bulk
 * selection with a mix of ids (revoke-matching and cleanup are in revoke-matching.test.ts).
 * Each answers JSON with exact counts and a browser with a redirect back and a toast, keeps
 * the acting superuser's own session unless asked, and leaves an audit row without a token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import { AUDIT_IDS_LISTED } from '../../src/sessions/session-service.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  auditRows,
  clientWith,
  expectNoSecretsInAudit,
  hiddenInput,
  lastAudit,
  listJson,
  type Planted,
  pageErrorCode,
  plantSession,
  revokedRows,
  signedIn,
  toastAfter,
  unknownId,
  whoamiStatus,
  ZERO_COUNTS,
} from './helpers.js';

const BULK_MAX = 20;

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`console revocations (${kind})`, () => {
    let t: TestApp;
    /** The acting superuser, chief@example.com. */
    let admin: Client;
    let adminId: number;
    let ownId: string;
    /** Every token handed out, to prove none reaches the audit log. */
    const tokens: string[] = [];
    let n = 0;

    const newUser = (role: UserRow['role'] = 'user') =>
      t.createUser(`victim${++n}@example.com`, role);
    const plant = async (userId: number, opts: { expired?: boolean } = {}) => {
      const p = await plantSession(t, userId, opts);
      tokens.push(p.token);
      return p;
    };
    const isLive = async (p: Planted) => (await whoamiStatus(clientWith(t, p))) === 200;

    beforeAll(async () => {
      t = await makeApp(kind, { env: { BULK_REVOKE_MAX: String(BULK_MAX) } });
      await t.createUser('chief@example.com', 'superuser');
      await t.createUser('deputy@example.com', 'superuser');
      const chief = await signedIn(t, 'chief@example.com');
      admin = chief.client;
      adminId = chief.userId;
      ownId = chief.sessionId;
      tokens.push(admin.cookies.get('warden_session')!);
    });

    afterAll(async () => {
      await t?.close();
    });

    describe('POST /admin/sessions/revoke/:sessionId', () => {
      it('should end a signed-in session at once and answer its outcome as JSON', async () => {
        const user = await newUser();
        const victim = await signedIn(t, user.email);
        tokens.push(victim.client.cookies.get('warden_session')!);
        expect(await whoamiStatus(victim.client)).toBe(200);

        const res = await admin.postJson(`/admin/sessions/revoke/${victim.sessionId}`);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
          counts: { ...ZERO_COUNTS, revoked: 1 },
          results: [{ id: victim.sessionId, status: 'revoked' }],
        });

        const after = await victim.client.get('/api/auth/session');
        expect(after.statusCode).toBe(401);
        expect(after.json().error.code).toBe('WARDEN_AUTH_REQUIRED');

        const audit = await lastAudit(t, 'sessions.revoke');
        expect(audit).toMatchObject({
          actor_id: adminId,
          actor_email: 'chief@example.com',
          target: victim.sessionId,
          outcome: 'success',
        });
        expect(audit.details).toMatchObject({
          counts: { ...ZERO_COUNTS, revoked: 1 },
          revoked: [victim.sessionId],
        });
        // The answer went before the history row (SessionEvents.follow); it follows at once.
        await t.settled();
        const history = await t.database.db
          .selectFrom('session_events')
          .selectAll()
          .where('session_id', '=', victim.sessionId)
          .where('kind', '=', 'revoked')
          .execute();
        expect(history).toHaveLength(1);
        expect(history[0].actor_id).toBe(adminId);

        const again = await admin.postJson(`/admin/sessions/revoke/${victim.sessionId}`);
        expect(again.statusCode).toBe(200);
        expect(again.json().counts).toEqual({ ...ZERO_COUNTS, already_ended: 1 });
      });

      it('should answer 404 in JSON for an id no session ever had', async () => {
        const id = unknownId();
        const res = await admin.postJson(`/admin/sessions/revoke/${id}`);
        expect(res.statusCode).toBe(404);
        expect(res.json().error).toMatchObject({ code: 'WARDEN_NOT_FOUND', details: { id } });
      });

      it('should redirect a form back to the filtered view and toast the outcome', async () => {
        const user = await newUser();
        const victim = await plant(user.id);
        const back = '/admin/sessions?email=victim&status=active&page=2&per_page=10';

        const res = await admin.postForm(`/admin/sessions/revoke/${victim.id}`, {
          return_to: back,
        });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe('1 revoked.');
        expect(await isLive(victim)).toBe(false);

        const missing = await admin.postForm(`/admin/sessions/revoke/${unknownId()}`, {
          return_to: back,
        });
        expect(missing.headers.location).toBe(back);
        expect(await toastAfter(admin, missing)).toBe('1 not found.');
      });

      it('should show the toast once: a reload after it shows none', async () => {
        const victim = await plant((await newUser()).id);
        const res = await admin.postForm(`/admin/sessions/revoke/${victim.id}`);
        expect(res.headers.location).toBe('/admin/sessions');
        expect(await toastAfter(admin, res)).toBe('1 revoked.');
        const reload = await admin.get('/admin/sessions');
        expect(reload.body).not.toContain('toast-body');
      });

      it.each([
        'https://evil.example/admin/sessions',
        '//evil.example/admin/sessions',
        '/\\evil.example/admin/',
        '/login',
        'admin/sessions',
      ])('should not follow a return_to of %s out of the console', async (returnTo) => {
        const victim = await plant((await newUser()).id);
        const res = await admin.postForm(`/admin/sessions/revoke/${victim.id}`, {
          return_to: returnTo,
        });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/admin/sessions');
      });

      it.each([
        'abc',
        'A'.repeat(64),
        'g'.repeat(64),
        'a'.repeat(63),
        'a'.repeat(65),
        `${'a'.repeat(60)}%20abc`,
      ])('should refuse the malformed id %s with 400 naming sessionId', async (bad) => {
        const json = await admin.postJson(`/admin/sessions/revoke/${bad}`);
        expect(json.statusCode).toBe(400);
        expect(json.json().error).toMatchObject({
          code: 'WARDEN_VALIDATION',
          details: { field: 'sessionId' },
        });

        const form = await admin.postForm(`/admin/sessions/revoke/${bad}`);
        expect(form.statusCode).toBe(400);
        expect(pageErrorCode(form.body)).toBe('WARDEN_VALIDATION');
        expect(form.body).toContain('sessionId');
      });

      it('should refuse an id far too long for a session id without a server error', async () => {
        const res = await admin.postJson(`/admin/sessions/revoke/${'a'.repeat(300)}`);
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
      });

      it("should keep the acting superuser's own session unless include_own is set", async () => {
        const kept = await admin.postJson(`/admin/sessions/revoke/${ownId}`);
        expect(kept.statusCode).toBe(200);
        expect(kept.json().counts).toEqual({ ...ZERO_COUNTS, kept_own: 1 });
        expect(await whoamiStatus(admin)).toBe(200);

        const form = await admin.postForm(`/admin/sessions/revoke/${ownId}`);
        expect(await toastAfter(admin, form)).toBe('1 kept (your own session).');

        const deputy = await signedIn(t, 'deputy@example.com');
        const res = await deputy.client.postForm(`/admin/sessions/revoke/${deputy.sessionId}`, {
          include_own: '1',
        });
        expect(res.statusCode).toBe(303);
        expect(await whoamiStatus(deputy.client)).toBe(401);
        // Signed out now: the page it was sent back to asks for a sign-in.
        const back = await deputy.client.get(String(res.headers.location));
        expect(back.statusCode).toBe(303);
        expect(back.headers.location).toMatch(/^\/login\?next=/);
      });
    });

    describe('POST /admin/sessions/revoke-user/:userId', () => {
      it('should end every session of a user: live ones revoked, expired ones already ended', async () => {
        const user = await newUser();
        const live = [await plant(user.id), await plant(user.id)];
        await plant(user.id, { expired: true });
        const other = await plant((await newUser()).id);

        const res = await admin.postJson(`/admin/sessions/revoke-user/${user.id}`);
        expect(res.statusCode).toBe(200);
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: 2, already_ended: 1 });
        expect(res.json().results).toHaveLength(3);
        for (const p of live) expect(await isLive(p)).toBe(false);
        expect(await isLive(other)).toBe(true);
        expect((await listJson(admin, `?email=${user.email}`)).total).toBe(0);

        const audit = await lastAudit(t, 'sessions.revoke_user');
        expect(audit).toMatchObject({ target: `user:${user.id}`, outcome: 'success' });
        expect(audit.details.counts).toEqual({ ...ZERO_COUNTS, revoked: 2, already_ended: 1 });
        expect((audit.details.revoked as string[]).sort()).toEqual(live.map((p) => p.id).sort());
      });

      it('should list at most 100 revoked ids in the audit entry and count the rest', async () => {
        const user = await newUser();
        const planted = await Promise.all(
          Array.from({ length: AUDIT_IDS_LISTED + 20 }, () => plant(user.id)),
        );
        const res = await admin.postJson(`/admin/sessions/revoke-user/${user.id}`);
        expect(res.json().counts.revoked).toBe(AUDIT_IDS_LISTED + 20);

        const audit = await lastAudit(t, 'sessions.revoke_user');
        expect((audit.details.counts as { revoked: number }).revoked).toBe(AUDIT_IDS_LISTED + 20);
        const listed = audit.details.revoked as string[];
        expect(listed).toHaveLength(AUDIT_IDS_LISTED);
        expect(new Set(listed).size).toBe(AUDIT_IDS_LISTED);
        const all = new Set(planted.map((p) => p.id));
        for (const id of listed) expect(all.has(id)).toBe(true);
        expect(audit.details.revokedNotListed).toBe(20);
        expect(audit.details.failed).toEqual([]);
        expect(audit.details).not.toHaveProperty('failedNotListed');
        // Every one of them is in the history, each with who ended it.
        const ended = await revokedRows(t, user.id);
        expect(new Set(ended.map((r) => r.session_id))).toEqual(all);
        expect(new Set(ended.map((r) => r.actor_id))).toEqual(new Set([audit.actor_id]));
      });

      it('should redirect a form back with the filters and toast the counts', async () => {
        const user = await newUser('admin');
        await plant(user.id);
        await plant(user.id);
        await plant(user.id, { expired: true });
        const back = `/admin/sessions?email=${encodeURIComponent(user.email)}&role=admin`;

        const res = await admin.postForm(`/admin/sessions/revoke-user/${user.id}`, {
          return_to: back,
        });
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe('2 revoked, 1 already ended.');
      });

      it('should say there was nothing to revoke for a user without sessions', async () => {
        const user = await newUser();
        const res = await admin.postJson(`/admin/sessions/revoke-user/${user.id}`);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ counts: ZERO_COUNTS, results: [] });
        const form = await admin.postForm(`/admin/sessions/revoke-user/${user.id}`);
        expect(await toastAfter(admin, form)).toBe('nothing to revoke.');
      });

      it("should keep the acting superuser's own session among their user's", async () => {
        const second = await plant(adminId);
        const res = await admin.postJson(`/admin/sessions/revoke-user/${adminId}`);
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: 1, kept_own: 1 });
        expect(await isLive(second)).toBe(false);
        expect(await whoamiStatus(admin)).toBe(200);
      });

      it('should refuse a user id not written in digits, and end nobody', async () => {
        const user = await newUser();
        const live = await plant(user.id);
        // Each of these reads as the number to JavaScript, and so to the schema's coercion.
        for (const written of [
          user.id.toExponential(),
          `0x${user.id.toString(16)}`,
          `${user.id}.0`,
          `+${user.id}`,
        ]) {
          const res = await admin.postJson(`/admin/sessions/revoke-user/${written}`);
          expect(res.statusCode, written).toBe(400);
          expect(res.json().error).toMatchObject({
            code: 'WARDEN_VALIDATION',
            message: expect.stringContaining('userId must be a whole number written in digits'),
          });
        }
        expect(await isLive(live)).toBe(true);
        const list = await admin.get('/admin/sessions?page=1e0', 'html');
        expect(list.statusCode).toBe(400);
        expect(list.body).toContain('page must be a whole number written in digits');
      });

      it('should say which filter was given twice, rather than that it is no number', async () => {
        const twice = await admin.get('/admin/sessions?page=2&page=3', 'html');
        expect(twice.statusCode).toBe(400);
        expect(twice.body).toContain('page must be given once');
        // One click from the page that works.
        expect(twice.body).toContain(
          '<a href="/admin/sessions">Open this page without its filters</a>',
        );
        // One bad filter among good ones: a link keeps the good ones.
        const one = await admin.get('/admin/sessions?created_from=2026-13-45&role=admin', 'html');
        expect(one.statusCode).toBe(400);
        expect(one.body).toContain(
          '<a href="/admin/sessions?role=admin">Open this page without created_from</a>',
        );
        const json = await admin.get('/admin/sessions?status=active&status=expired', 'json');
        expect(json.statusCode).toBe(400);
        expect(json.json().error).toMatchObject({
          code: 'WARDEN_VALIDATION',
          message: expect.stringContaining('status must be given once'),
        });
      });

      it('should answer 404 for a user who does not exist', async () => {
        const res = await admin.postJson('/admin/sessions/revoke-user/987654');
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('WARDEN_NOT_FOUND');
        const form = await admin.postForm('/admin/sessions/revoke-user/987654');
        expect(form.statusCode).toBe(404);
        expect(pageErrorCode(form.body)).toBe('WARDEN_NOT_FOUND');
      });

      it.each(['abc', '0', '-1', '1.5', '99999999999'])(
        'should refuse the user id %s with 400 naming userId',
        async (bad) => {
          const res = await admin.postJson(`/admin/sessions/revoke-user/${bad}`);
          expect(res.statusCode).toBe(400);
          expect(res.json().error).toMatchObject({
            code: 'WARDEN_VALIDATION',
            details: { field: 'userId' },
          });
        },
      );
    });

    describe('POST /admin/sessions/bulk-revoke', () => {
      /** Live, expired, already revoked, unknown, malformed, duplicated and own ids. */
      async function mix() {
        const user = await newUser();
        const live = [await plant(user.id), await plant(user.id), await plant(user.id)];
        const expired = await plant(user.id, { expired: true });
        const revoked = await plant(user.id);
        await admin.postJson(`/admin/sessions/revoke/${revoked.id}`);
        const unknown = [unknownId(), unknownId()];
        const malformed = ['nope', 'A'.repeat(64)];
        const ids = [
          ...live.map((p) => p.id),
          expired.id,
          revoked.id,
          ...unknown,
          ...malformed,
          live[0].id,
          ownId,
        ];
        return { live, expired, revoked, unknown, malformed, ids };
      }

      it('should count each kind of id exactly and revoke only the live ones', async () => {
        const m = await mix();
        const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids: m.ids });
        expect(res.statusCode).toBe(200);
        const body = res.json();
        expect(body.counts).toEqual({
          revoked: 3,
          already_ended: 2,
          not_found: 2,
          invalid: 2,
          kept_own: 1,
          failed: 0,
        });
        // One result per distinct id, in the order they were sent.
        expect(body.results.map((r: { id: string }) => r.id)).toEqual([...new Set(m.ids)]);
        const status = Object.fromEntries(
          body.results.map((r: { id: string; status: string }) => [r.id, r.status]),
        );
        for (const p of m.live) expect(status[p.id]).toBe('revoked');
        expect(status[m.expired.id]).toBe('already_ended');
        expect(status[m.revoked.id]).toBe('already_ended');
        for (const id of m.unknown) expect(status[id]).toBe('not_found');
        for (const id of m.malformed) expect(status[id]).toBe('invalid');
        expect(status[ownId]).toBe('kept_own');

        for (const p of m.live) expect(await isLive(p)).toBe(false);
        expect(await whoamiStatus(admin)).toBe(200);

        const audit = await lastAudit(t, 'sessions.bulk_revoke');
        expect(audit.outcome).toBe('success');
        expect(audit.details.counts).toEqual(body.counts);
        expect((audit.details.revoked as string[]).sort()).toEqual(m.live.map((p) => p.id).sort());
        expect(audit.details.failed).toEqual([]);
      });

      it('should be safe to send again: nothing more is revoked and the counts say why', async () => {
        const m = await mix();
        await admin.postJson('/admin/sessions/bulk-revoke', { ids: m.ids });
        const again = await admin.postJson('/admin/sessions/bulk-revoke', { ids: m.ids });
        expect(again.statusCode).toBe(200);
        expect(again.json().counts).toEqual({
          revoked: 0,
          already_ended: 5,
          not_found: 2,
          invalid: 2,
          kept_own: 1,
          failed: 0,
        });
      });

      it('should keep the filters in the redirect after a bulk revoke and toast every count', async () => {
        const m = await mix();
        const back = '/admin/sessions?email=victim&status=active&role=user&per_page=25';
        const res = await admin.postForm('/admin/sessions/bulk-revoke', {
          ids: m.ids,
          return_to: back,
        });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe(
          '3 revoked, 2 already ended, 2 not found, 2 not a session id, 1 kept (your own session).',
        );
        for (const p of m.live) expect(await isLive(p)).toBe(false);
      });

      it('should refuse ids sent to a single revocation or a revoke-user in JSON, revoking nothing', async () => {
        // A script reading "revoke-user takes ids" as "revoke only these" ended all of a user's
        // sessions; a form's row button still sends the checked boxes along, ignored.
        const user = await newUser();
        const [one, two] = [await plant(user.id), await plant(user.id)];
        const byUser = await admin.postJson(`/admin/sessions/revoke-user/${user.id}`, {
          ids: [one.id],
        });
        expect(byUser.statusCode).toBe(400);
        expect(byUser.json().error.message).toBe(
          'Invalid request: ids is not a field of this request (it takes return_to, include_own)',
        );
        const single = await admin.postJson(`/admin/sessions/revoke/${one.id}`, { ids: [two.id] });
        expect(single.statusCode).toBe(400);
        expect([await isLive(one), await isLive(two)]).toEqual([true, true]);
      });

      it('should take a single checked box from a form', async () => {
        const victim = await plant((await newUser()).id);
        const res = await admin.postForm('/admin/sessions/bulk-revoke', { ids: victim.id });
        expect(await toastAfter(admin, res)).toBe('1 revoked.');
        expect(await isLive(victim)).toBe(false);
      });

      it('should revoke the own session too when include_own is set', async () => {
        const deputy = await signedIn(t, 'deputy@example.com');
        const victim = await plant((await newUser()).id);
        const res = await deputy.client.postJson('/admin/sessions/bulk-revoke', {
          ids: [victim.id, deputy.sessionId],
          include_own: true,
        });
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: 2 });
        expect(await whoamiStatus(deputy.client)).toBe(401);
      });

      it('should say what include_own takes when it is neither true nor false', async () => {
        const res = await admin.postJson('/admin/sessions/bulk-revoke', {
          ids: [(await plant((await newUser()).id)).id],
          include_own: 'yes',
        });
        expect(res.statusCode).toBe(400);
        expect(res.json().error.message).toBe(
          'Invalid request: include_own must be true or false (a form sends "on" or "1" when ticked)',
        );
      });

      it('should refuse an empty selection with 400 naming ids', async () => {
        const json = await admin.postJson('/admin/sessions/bulk-revoke', { ids: [] });
        expect(json.statusCode).toBe(400);
        expect(json.json().error).toMatchObject({
          code: 'WARDEN_VALIDATION',
          details: { field: 'ids' },
        });
        const form = await admin.postForm('/admin/sessions/bulk-revoke', {
          return_to: '/admin/sessions',
        });
        expect(form.statusCode).toBe(400);
        expect(pageErrorCode(form.body)).toBe('WARDEN_VALIDATION');
        expect(form.body).toContain('ids');
        // Refused in the handler, not by the schema: on record all the same, once.
        const rows = (await auditRows(t, 'sessions.bulk_revoke')).slice(-2);
        expect(rows.map((r) => [r.outcome, r.details.field])).toEqual([
          ['refused', 'ids'],
          ['refused', 'ids'],
        ]);
      });

      it('should refuse more ids than allowed and change nothing', async () => {
        const victim = await plant((await newUser()).id);
        const ids = [victim.id, ...Array.from({ length: BULK_MAX }, unknownId)];
        const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids });
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({
          code: 'WARDEN_BULK_TOO_MANY',
          details: { max: BULK_MAX },
        });
        expect(await isLive(victim)).toBe(true);
        expect(await lastAudit(t, 'sessions.bulk_revoke')).toMatchObject({
          outcome: 'refused',
          details: { code: 'WARDEN_BULK_TOO_MANY', max: BULK_MAX },
        });

        const atLimit = await admin.postJson('/admin/sessions/bulk-revoke', {
          ids: ids.slice(0, BULK_MAX),
        });
        expect(atLimit.statusCode).toBe(200);
        expect(atLimit.json().counts).toEqual({
          ...ZERO_COUNTS,
          revoked: 1,
          not_found: BULK_MAX - 1,
        });
      });

      it('should refuse an id longer than any session id with 400 naming ids, changing nothing', async () => {
        const victim = await plant((await newUser()).id);
        const res = await admin.postJson('/admin/sessions/bulk-revoke', {
          ids: [victim.id, 'f'.repeat(129)],
        });
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('WARDEN_VALIDATION');
        expect(res.json().error.details.field).toMatch(/^ids/);
        expect(await isLive(victim)).toBe(true);
      });

      it('should read a media type in any case: JSON in, JSON out, types kept', async () => {
        const p = await plant((await newUser()).id);
        const csrf = await admin.csrf();
        const send = (json: unknown) =>
          admin.request({
            method: 'POST',
            url: '/admin/sessions/bulk-revoke',
            json,
            headers: { 'content-type': 'Application/JSON; Charset=UTF-8', 'x-csrf-token': csrf },
          });
        const wrong = await send({ ids: p.id });
        expect(wrong.statusCode).toBe(400);
        expect(wrong.json().error.details).toMatchObject({ field: 'ids', where: 'body' });
        const res = await send({ ids: [p.id] });
        expect(res.statusCode).toBe(200);
        expect(res.json().counts.revoked).toBe(1);
      });

      it('should refuse JSON ids of the wrong type with 400 naming the field, revoking nothing', async () => {
        const p = await plant((await newUser()).id);
        for (const [ids, field] of [
          ['not-a-list', 'ids'],
          [p.id, 'ids'],
          [[1, 2], 'ids.0'],
          [[p.id, null], 'ids.1'],
          [[true], 'ids.0'],
          [{ a: 1 }, 'ids'],
        ] as const) {
          const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids });
          expect(res.statusCode, JSON.stringify(ids)).toBe(400);
          expect(res.json().error.details).toMatchObject({ field, where: 'body' });
        }
        expect(await isLive(p)).toBe(true);
        // A form's single checked box is still a list of one (see the form tests below).
      });
    });

    describe('the sessions page form, submitted as a browser does', () => {
      /** The sessions page for a filter, with the token and return_to its bulk form carries. */
      async function bulkForm(search: string) {
        const page = await admin.get(`/admin/sessions${search}`);
        expect(page.statusCode).toBe(200);
        return {
          csrf: hiddenInput(page.body, '_csrf'),
          returnTo: hiddenInput(page.body, 'return_to'),
        };
      }

      it('should bulk revoke the checked rows with the token and return_to the page rendered', async () => {
        const user = await newUser();
        const rows = [await plant(user.id), await plant(user.id), await plant(user.id)];
        const search = `?email=${encodeURIComponent(user.email)}&status=active&per_page=10`;
        const form = await bulkForm(search);
        expect(form.returnTo).toBe(`/admin/sessions${search}`);

        const res = await admin.postForm(
          '/admin/sessions/bulk-revoke',
          { return_to: form.returnTo, ids: [rows[0].id, rows[2].id] },
          { csrf: form.csrf },
        );
        expect(res.headers.location).toBe(form.returnTo);
        expect(await toastAfter(admin, res)).toBe('2 revoked.');
        expect(await isLive(rows[1])).toBe(true);
      });

      it('should bulk revoke as the page script does: JSON with the page token in a header', async () => {
        const user = await newUser();
        const rows = [await plant(user.id), await plant(user.id)];
        const page = await admin.get(`/admin/sessions?email=${encodeURIComponent(user.email)}`);
        const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)![1];

        const res = await admin.request({
          method: 'POST',
          url: '/admin/sessions/bulk-revoke',
          json: { ids: rows.map((r) => r.id), include_own: false },
          headers: { accept: 'application/json', 'x-csrf-token': token },
        });
        expect(res.statusCode).toBe(200);
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: 2 });
      });

      it("should revoke only the row's own session when its button submits other checked boxes", async () => {
        const user = await newUser();
        const [row, checked] = [await plant(user.id), await plant(user.id)];
        const form = await bulkForm(`?email=${encodeURIComponent(user.email)}`);

        const res = await admin.postForm(
          `/admin/sessions/revoke/${row.id}`,
          { return_to: form.returnTo, ids: [checked.id] },
          { csrf: form.csrf },
        );
        expect(await toastAfter(admin, res)).toBe('1 revoked.');
        expect(await isLive(row)).toBe(false);
        expect(await isLive(checked)).toBe(true);
      });

      it('should clean up without touching the checked live rows', async () => {
        const user = await newUser();
        const checked = await plant(user.id);
        await plant(user.id, { expired: true });
        const form = await bulkForm(`?email=${encodeURIComponent(user.email)}`);
        const expired = (await listJson(admin, '?status=expired')).total;

        const res = await admin.postForm(
          '/admin/sessions/cleanup-expired',
          { return_to: form.returnTo, ids: [checked.id] },
          { csrf: form.csrf },
        );
        expect(res.headers.location).toBe(form.returnTo);
        expect(await toastAfter(admin, res)).toBe(
          `${expired.toLocaleString('en')} expired session${expired === 1 ? '' : 's'} cleaned up.`,
        );
        expect(await isLive(checked)).toBe(true);
        expect((await listJson(admin, `?email=${encodeURIComponent(user.email)}`)).total).toBe(1);
      });

      it('should refuse a field or a parameter the cleanup does not take, and remove nothing', async () => {
        // It has no dry run: a form's dry_run=1, ignored, removed every expired session.
        const user = await newUser();
        await plant(user.id, { expired: true });
        const form = await bulkForm(`?email=${encodeURIComponent(user.email)}`);
        const expired = (await listJson(admin, '?status=expired')).total;
        expect(expired).toBeGreaterThan(0);

        const field = await admin.postForm(
          '/admin/sessions/cleanup-expired',
          { return_to: form.returnTo, dry_run: '1' },
          { csrf: form.csrf },
        );
        expect(field.statusCode).toBe(400);
        expect(field.body).toContain(
          'dry_run is not a field of this request (it takes return_to, include_own, ids)',
        );
        const param = await admin.postForm(
          '/admin/sessions/cleanup-expired?dry_run=1',
          { return_to: form.returnTo },
          { csrf: form.csrf },
        );
        expect(param.statusCode).toBe(400);
        expect(param.body).toContain('dry_run is not a parameter of this action (it takes none)');
        // The page says so with a way back to the page the form was on.
        const fromPage = await admin.request({
          method: 'POST',
          url: '/admin/sessions/cleanup-expired',
          form: { _csrf: form.csrf, dry_run: '1' },
          headers: { referer: `http://localhost${form.returnTo}`, host: 'localhost' },
          accept: 'html',
        });
        expect(fromPage.statusCode).toBe(400);
        expect(fromPage.body).toContain(
          `<a href="${form.returnTo.replaceAll('&', '&amp;')}">Back to the page you came from</a>`,
        );
        const json = await admin.postJson('/admin/sessions/cleanup-expired', { dry_run: true });
        expect(json.statusCode).toBe(400);
        expect(json.json().error.message).toBe(
          'Invalid request: dry_run is not a field of this request (it takes return_to)',
        );
        // What the bulk form carries along is refused in JSON, where nobody sends it by mistake.
        for (const body of [{ ids: [form.csrf] }, { include_own: true }]) {
          const along = await admin.postJson('/admin/sessions/cleanup-expired', body);
          expect(along.statusCode, JSON.stringify(body)).toBe(400);
        }

        expect((await listJson(admin, '?status=expired')).total).toBe(expired);
      });
    });

    it('should have written no session token into any audit row', async () => {
      expect(tokens.length).toBeGreaterThan(20);
      await expectNoSecretsInAudit(t, tokens);
    });
  });
}
