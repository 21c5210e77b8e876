/**
 * Revoking every session the filters match (GET shows the count, POST needs it typed back)
 * and cleaning up the expired sessions, on both stores: exact counts, the redirect back to
 * the same filters with a toast, the acting superuser's own session kept unless asked, and
 * an audit row without a token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRow } from '../../src/db/schema.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  clientWith,
  expectNoSecretsInAudit,
  lastAudit,
  listJson,
  type Planted,
  plantSession,
  signedIn,
  toastAfter,
  whoamiStatus,
  ZERO_COUNTS,
} from './helpers.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`revoke-matching and cleanup (${kind})`, () => {
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
    const plant = async (userId: number, opts: Parameters<typeof plantSession>[2] = {}) => {
      const p = await plantSession(t, userId, opts);
      tokens.push(p.token);
      return p;
    };
    const isLive = async (p: Planted) => (await whoamiStatus(clientWith(t, p))) === 200;

    beforeAll(async () => {
      t = await makeApp(kind);
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

    describe('GET and POST /admin/sessions/revoke-matching', () => {
      /** A user with 3 live sessions and 1 expired one, found by `?email=<their email>`. */
      async function fleet(role: UserRow['role'] = 'user') {
        const user = await newUser(role);
        const live = [await plant(user.id), await plant(user.id), await plant(user.id)];
        const expired = await plant(user.id, { expired: true });
        return { user, live, expired, email: encodeURIComponent(user.email) };
      }

      it('should show how many sessions match before anything is revoked', async () => {
        const f = await fleet();
        const page = await admin.get(`/admin/sessions/revoke-matching?email=${f.email}`);
        expect(page.statusCode).toBe(200);
        expect(page.body).toContain('<strong id="matching-total">4</strong>');
        // The page says what it would act on.
        expect(page.body).toContain(
          `<dt class="col-sm-4">Email contains</dt><dd class="col-sm-8 text-break">${f.user.email}</dd>`,
        );
        const active = await admin.get(
          `/admin/sessions/revoke-matching?email=${f.email}&status=active`,
        );
        expect(active.body).toContain(
          '<dt class="col-sm-4">Status</dt><dd class="col-sm-8 text-break">active</dd>',
        );
        const everything = await admin.get('/admin/sessions/revoke-matching');
        expect(everything.body).toContain('With no filter, this is every session:');
        // Expired sessions match too: the page does not claim they end.
        expect(everything.body).toContain(
          'Those still active end at once; expired ones are removed.',
        );
        expect(everything.body).not.toContain('id="matching-filters"');
        // The form carries the moment the count was taken.
        expect(page.body).toMatch(
          new RegExp(`action="/admin/sessions/revoke-matching\\?email=${f.email}&amp;as_of=\\d+"`),
        );

        const json = await admin.get(
          `/admin/sessions/revoke-matching?email=${f.email}&status=active`,
          'json',
        );
        expect(json.json()).toEqual({ total: 3, asOf: expect.any(Number) });
        for (const p of [...f.live, f.expired]) {
          expect((await listJson(admin, `?email=${f.email}`)).items.map((i) => i.id)).toContain(
            p.id,
          );
        }
      });

      it('should still take the count it showed when a session expires before the confirmation', async () => {
        const f = await fleet();
        // A fourth live session, ending a second from now.
        const soon = await plant(f.user.id);
        await t.store.touch(soon.id, Date.now(), Date.now() + 1_000);
        const url = `/admin/sessions/revoke-matching?email=${f.email}&status=active`;
        const shown = (await admin.get(url, 'json')).json() as { total: number; asOf: number };
        expect(shown.total).toBe(4);
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        // Without the moment, the count has moved on; with it, the number shown confirms.
        expect((await admin.get(url, 'json')).json()).toMatchObject({ total: 3 });
        const res = await admin.postJson(`${url}&as_of=${shown.asOf}`, { confirm: shown.total });
        expect(res.statusCode).toBe(200);
        for (const p of f.live) expect(await isLive(p)).toBe(false);
        expect(await isLive(f.expired)).toBe(false);
      });

      it('should refuse a confirmation that is not the match count and revoke nothing', async () => {
        const f = await fleet();
        const url = `/admin/sessions/revoke-matching?email=${f.email}&status=active`;
        for (const confirm of ['2', '4', '', 'three', '-3']) {
          const json = await admin.postJson(url, { confirm });
          expect(json.statusCode, `confirm ${confirm}`).toBe(400);
          expect(json.json().error).toMatchObject({
            code: 'WARDEN_CONFIRM_MISMATCH',
            details: { matching: 3 },
          });
        }
        // Only decimal digits confirm: Number() would read "3.0", "3e0" and "0x3" as 3.
        for (const confirm of ['3.0', '3e0', '0x3', ' 3 x']) {
          const json = await admin.postJson(url, { confirm });
          expect(json.statusCode, `confirm ${confirm}`).toBe(400);
          expect(json.json().error.code).toBe('WARDEN_CONFIRM_MISMATCH');
        }
        const fraction = await admin.postJson(url, { confirm: 3.5 });
        expect(fraction.statusCode).toBe(400);
        expect(fraction.json().error.details.field).toBe('confirm');
        // Neither the text of a form nor a count: the answer says what either would need.
        expect(fraction.json().error.message).toBe(
          'Invalid request: confirm must be the number of matching sessions, in digits',
        );
        const negative = await admin.postJson(url, { confirm: -3 });
        expect(negative.json().error.message).toBe(
          'Invalid request: confirm must be the number of matching sessions, in digits',
        );
        // JSON reads 1e400 as Infinity, which a schema's integer let through: it was answered
        // as a count that does not match, "Infinity".
        const huge = await t.app.inject({
          method: 'POST',
          url,
          headers: {
            cookie: admin.cookieHeader(),
            'content-type': 'application/json',
            accept: 'application/json',
            'x-csrf-token': await admin.csrf(),
          },
          payload: '{"confirm": 1e400}',
        });
        expect(huge.statusCode).toBe(400);
        expect(huge.json().error.message).toBe(
          'Invalid request: confirm must be the number of matching sessions, in digits',
        );
        const form = await admin.postForm(url, { confirm: '30' });
        expect(form.statusCode).toBe(400);
        expect(form.body).toContain(
          '<div class="alert alert-danger" role="alert" id="confirm-error">',
        );
        // The box is marked, names the error to a screen reader, and has the focus again.
        expect(form.body).toMatch(
          /id="confirm"[^>]*autofocus aria-invalid="true" aria-describedby="confirm-error">/,
        );
        expect(form.body).toContain('<strong id="matching-total">3</strong>');
        for (const p of f.live) expect(await isLive(p)).toBe(true);
        // Each refusal is an audit row, with what was typed and the count it missed.
        const audit = await lastAudit(t, 'sessions.revoke_matching');
        expect(audit).toMatchObject({
          outcome: 'failure',
          target: `email=${f.email}&status=active`,
        });
        expect(audit.details).toMatchObject({ confirm: '30', matching: 3 });
      });

      it('should not take an empty confirmation for a count of none', async () => {
        const url = '/admin/sessions/revoke-matching?email=nobody-matches-this';
        for (const confirm of ['', ' ', '0x0']) {
          const res = await admin.postJson(url, { confirm });
          expect(res.statusCode, `confirm "${confirm}"`).toBe(400);
          expect(res.json().error.details).toEqual({ matching: 0 });
        }
        expect((await admin.postJson(url, { confirm: ' 0 ' })).statusCode).toBe(200);
      });

      it('should revoke every match and send the browser back to the same filters', async () => {
        const f = await fleet();
        const search = `email=${f.email}&status=active`;
        const res = await admin.postForm(`/admin/sessions/revoke-matching?${search}`, {
          confirm: '3',
        });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe(`/admin/sessions?${search}`);
        expect(await toastAfter(admin, res)).toBe('3 revoked.');
        for (const p of f.live) expect(await isLive(p)).toBe(false);
        // The expired session did not match status=active: it is still listed.
        const left = await listJson(admin, `?email=${f.email}`);
        expect(left.items.map((i) => i.id)).toEqual([f.expired.id]);

        const audit = await lastAudit(t, 'sessions.revoke_matching');
        expect(audit.target).toBe(search);
        expect(audit.details.counts).toEqual({ ...ZERO_COUNTS, revoked: 3 });
      });

      it('should send the browser back to the list as it is now, not as it was at the count', async () => {
        const f = await fleet();
        const search = `email=${f.email}&status=active`;
        const shown = (
          await admin.get(`/admin/sessions/revoke-matching?${search}`, 'json')
        ).json() as { total: number; asOf: number };
        const res = await admin.postForm(
          `/admin/sessions/revoke-matching?${search}&as_of=${shown.asOf}`,
          { confirm: String(shown.total) },
        );
        expect(res.statusCode).toBe(303);
        // With the count's moment, the list would hide every sign-in after it.
        expect(res.headers.location).toBe(`/admin/sessions?${search}`);
        // After the count, on the server's clock (Redis's, on that store).
        const later = await plant(f.user.id, { createdAt: Math.max(Date.now(), shown.asOf + 1) });
        const list = await admin.get(String(res.headers.location), 'html');
        expect(list.body).toContain(`data-session-id="${later.id}"`);
        expect(list.body).not.toContain('id="snapshot-note"');
        // A list kept at a moment (its pages, a bookmark) says so, and how to see the latest.
        const held = await admin.get(`/admin/sessions?${search}&as_of=${shown.asOf}`, 'html');
        expect(held.body).not.toContain(`data-session-id="${later.id}"`);
        expect(held.body).toContain('id="snapshot-note"');
        expect(held.body).toContain(
          `href="/admin/sessions?${search.replace('&', '&amp;')}">Show the latest</a>`,
        );
      });

      it('should answer JSON with the counts and accept the count as a number', async () => {
        const f = await fleet('admin');
        const res = await admin.postJson(
          `/admin/sessions/revoke-matching?email=${f.email}&role=admin`,
          { confirm: 4 },
        );
        expect(res.statusCode).toBe(200);
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: 3, already_ended: 1 });
        expect(res.json().results).toHaveLength(4);
      });

      it('should refuse a filter it does not know, revoking nothing, whatever the count confirmed', async () => {
        const f = await fleet();
        const all = (await t.store.list({ now: Date.now(), offset: 0, limit: 0 })).total;
        // `emial` unknown would leave no filter at all: every session would match.
        const res = await admin.postJson(`/admin/sessions/revoke-matching?emial=${f.email}`, {
          confirm: all,
        });
        expect(res.statusCode).toBe(400);
        expect(res.json().error.details.field).toBe('emial');
        expect((await t.store.list({ now: Date.now(), offset: 0, limit: 0 })).total).toBe(all);
        for (const s of f.live) expect(await isLive(s)).toBe(true);
      });

      it("should keep the acting superuser's own session among the matches", async () => {
        const extra = await plant(adminId);
        const url = '/admin/sessions/revoke-matching?email=chief%40example.com&status=active';
        const total = (await admin.get(url, 'json')).json().total as number;
        expect(total).toBeGreaterThanOrEqual(2);

        const res = await admin.postJson(url, { confirm: String(total) });
        expect(res.json().counts).toEqual({ ...ZERO_COUNTS, revoked: total - 1, kept_own: 1 });
        expect(await isLive(extra)).toBe(false);
        expect(await whoamiStatus(admin)).toBe(200);
      });

      it('should revoke the own session as well when include_own is set', async () => {
        const deputy = await signedIn(t, 'deputy@example.com');
        const url = '/admin/sessions/revoke-matching?email=deputy%40example.com&status=active';
        const total = (await deputy.client.get(url, 'json')).json().total as number;
        const res = await deputy.client.postForm(url, {
          confirm: String(total),
          include_own: '1',
        });
        expect(res.statusCode).toBe(303);
        expect(await whoamiStatus(deputy.client)).toBe(401);
        expect((await listJson(admin, '?email=deputy&status=active')).total).toBe(0);
      });

      it('should refuse bad filters with 400 naming the field, on the page and the action', async () => {
        const page = await admin.get(
          '/admin/sessions/revoke-matching?created_to=2026-02-31',
          'json',
        );
        expect(page.statusCode).toBe(400);
        expect(page.json().error.details.field).toBe('created_to');

        const post = await admin.postJson('/admin/sessions/revoke-matching?status=gone', {
          confirm: '0',
        });
        expect(post.statusCode).toBe(400);
        expect(post.json().error.details.field).toBe('status');
      });

      it('should revoke every session but the own when no filter is set, back to the plain list', async () => {
        await fleet();
        const { total } = (await admin.get('/admin/sessions/revoke-matching', 'json')).json();
        const active = (await listJson(admin)).items.filter((s) => s.status === 'active').length;
        const res = await admin.postForm('/admin/sessions/revoke-matching', {
          confirm: String(total),
        });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/admin/sessions');
        expect(await toastAfter(admin, res)).toMatch(/ kept \(your own session\)\.$/);
        expect((await lastAudit(t, 'sessions.revoke_matching')).details.counts).toMatchObject({
          revoked: active - 1,
          kept_own: 1,
        });
        const left = await listJson(admin);
        expect(left.items.map((i) => i.id)).toEqual([ownId]);
      });
    });

    describe('POST /admin/sessions/cleanup-expired', () => {
      it('should remove every expired session, keep the live ones, and do nothing the second time', async () => {
        const user = await newUser();
        for (let i = 0; i < 3; i++) await plant(user.id, { expired: true });
        const live = await plant(user.id);
        const before = await listJson(admin, '?status=expired');
        expect(before.total).toBeGreaterThanOrEqual(3);
        const active = before.active;

        const res = await admin.postJson('/admin/sessions/cleanup-expired');
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ removed: before.total, unreadable: 0 });

        const after = await listJson(admin, '?status=expired');
        expect(after.total).toBe(0);
        expect(after.active).toBe(active);
        expect(await isLive(live)).toBe(true);
        expect((await listJson(admin, `?email=${user.email}`)).total).toBe(1);

        const audit = await lastAudit(t, 'sessions.cleanup_expired');
        expect(audit).toMatchObject({ actor_id: adminId, outcome: 'success' });
        expect(audit.details).toEqual({ counts: { removed: before.total, unreadable: 0 } });

        const again = await admin.postJson('/admin/sessions/cleanup-expired');
        expect(again.json()).toEqual({ removed: 0, unreadable: 0 });
      });

      it('should redirect a form back with the filters and a toast with the number removed', async () => {
        await admin.postJson('/admin/sessions/cleanup-expired');
        await plant((await newUser()).id, { expired: true });
        const back = '/admin/sessions?status=expired';
        const res = await admin.postForm('/admin/sessions/cleanup-expired', { return_to: back });
        expect(res.headers.location).toBe(back);
        expect(await toastAfter(admin, res)).toBe('1 expired session cleaned up.');

        const again = await admin.postForm('/admin/sessions/cleanup-expired', { return_to: back });
        expect(await toastAfter(admin, again)).toBe('0 expired sessions cleaned up.');
      });
    });

    it('should have written no session token into any audit row', async () => {
      expect(tokens.length).toBeGreaterThan(20);
      await expectNoSecretsInAudit(t, tokens);
    });
  });
}
