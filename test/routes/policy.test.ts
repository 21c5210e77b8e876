/**
 * The session policy page on both stores: validation naming the field, the audit row with
 * from → to, new sign-ins following a change at once, live sessions judged by it on their
 * next request (on this instance and on another one within seconds), and the per-role limit
 * refusing a sign-in or ending the oldest session.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { statusOf } from '../../src/sessions/session-store.js';
import {
  Client,
  makeApp,
  PASSWORD,
  secondInstance,
  storeKindsToRun,
  type TestApp,
} from '../support/app.js';
import {
  auditRows,
  clientWith,
  HOUR,
  lastAudit,
  MINUTE,
  plantSession,
  signedIn,
  toastAfter,
  whoamiStatus,
} from './helpers.js';

const ROOT = 'root@policy.test';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`session policy (${kind})`, () => {
    let t: TestApp;

    afterEach(async () => {
      await t?.close();
    });

    async function setup() {
      t = await makeApp(kind);
      await t.createUser(ROOT, 'superuser');
      const admin = (await signedIn(t, ROOT)).client;
      return admin;
    }

    async function history(sessionId: string) {
      await t.settled();
      return t.database.db
        .selectFrom('session_events')
        .select(['kind', 'reason'])
        .where('session_id', '=', sessionId)
        .where('kind', '!=', 'signed_in')
        .execute();
    }

    it('should show the configured defaults, then save a change with its audit row (from → to)', async () => {
      const admin = await setup();
      const page = await admin.get('/admin/policy', 'html');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('data-policy-idle>30 min<');
      expect(page.body).toContain('data-policy-absolute>12 h<');
      expect(page.body).toContain('href="/admin/policy"');

      const form = await admin.postForm('/admin/policy', {
        version: '0',
        idle_timeout: '10m',
        absolute_lifetime: '',
        max_sessions_user: '3',
        on_limit_user: 'evict_oldest',
        max_sessions_admin: '',
        on_limit_admin: 'refuse',
        max_sessions_superuser: '',
        on_limit_superuser: 'refuse',
      });
      expect(await toastAfter(admin, form)).toBe('Session policy saved (version 1).');

      const json = (await admin.get('/admin/policy', 'json')).json();
      expect(json).toMatchObject({
        version: 1,
        idleTimeoutMs: 10 * MINUTE,
        absoluteLifetimeMs: 12 * HOUR,
        overrides: { idleTimeoutMs: 10 * MINUTE, absoluteLifetimeMs: null },
        roleLimits: { user: { maxSessions: 3, onLimit: 'evict_oldest' } },
        updatedBy: ROOT,
      });
      const audit = await lastAudit(t, 'policy.update');
      expect(audit.actor_email).toBe(ROOT);
      expect(audit.details).toMatchObject({
        changed: ['idle_timeout', 'max_sessions_user', 'on_limit_user'],
        from: {
          idleTimeout: '30m',
          roleLimits: { user: { maxSessions: null, onLimit: 'refuse' } },
        },
        to: {
          idleTimeout: '10m',
          roleLimits: { user: { maxSessions: 3, onLimit: 'evict_oldest' } },
        },
        version: 1,
      });
    });

    it('should answer 400 naming the field for bad values, as JSON and as the form again', async () => {
      const admin = await setup();
      const cases: [Record<string, unknown>, string][] = [
        [{ idle_timeout: 'soon' }, 'idle_timeout'],
        [{ idle_timeout: '30s' }, 'idle_timeout'],
        [{ idle_timeout: '2h', absolute_lifetime: '1h' }, 'idle_timeout'],
        [{ absolute_lifetime: '10m' }, 'absolute_lifetime'],
        [{ absolute_lifetime: '400d' }, 'absolute_lifetime'],
        [{ max_sessions_user: '0' }, 'max_sessions_user'],
        [{ max_sessions_admin: 'many' }, 'max_sessions_admin'],
        [{ max_sessions_superuser: 5000 }, 'max_sessions_superuser'],
        [{ on_limit_user: 'shrug' }, 'on_limit_user'],
        [{ version: 7, idle_timeout: '20m' }, 'version'],
      ];
      for (const [body, field] of cases) {
        const res = await admin.postJson('/admin/policy', body);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json().error.code).toBe('WARDEN_VALIDATION');
        expect(res.json().error.details.field, JSON.stringify(body)).toBe(field);
      }
      // A number out of range is told the range whatever its spelling or type (the schema
      // refuses a wrong type or length before the range), and a zero duration is too short,
      // not "no duration".
      for (const value of ['0', '-1', '2.5', 'many', '1234567890123', true, [2]]) {
        const res = await admin.postJson('/admin/policy', { max_sessions_user: value });
        expect(res.json().error.message, JSON.stringify(value)).toBe(
          'Invalid request: max_sessions_user must be empty or a whole number from 1 to 1000',
        );
      }
      for (const [field, value, words] of [
        ['idle_timeout', '0s', 'must be longer than 1 min (TOUCH_INTERVAL)'],
        ['idle_timeout', '1s', 'must be longer than 1 min (TOUCH_INTERVAL)'],
        ['absolute_lifetime', '0', 'must be at least 5 minutes'],
      ]) {
        const res = await admin.postJson('/admin/policy', { [field as string]: value });
        expect(res.json().error.message, `${field}=${value}`).toBe(
          `Invalid request: ${field} ${words}`,
        );
      }

      // A field it does not take (a typo) is refused, not saved as nothing.
      const typo = await admin.postJson('/admin/policy', { idle_timout: '5m' });
      expect(typo.statusCode).toBe(400);
      expect(typo.json().error.details).toMatchObject({ field: 'idle_timout', where: 'body' });
      expect(typo.json().error.message).toMatch(
        /^Invalid request: idle_timout is not a field of this request \(it takes .*idle_timeout/,
      );

      // A number where a duration goes (seconds? minutes?) says what a duration is.
      for (const value of [90, false, 'x'.repeat(21)]) {
        const res = await admin.postJson('/admin/policy', { idle_timeout: value });
        expect(res.json().error.message, String(value)).toBe(
          'Invalid request: idle_timeout must be empty for the default, or a duration (e.g. 90s, 15m, 12h, 7d)',
        );
      }

      // Every bad field of a form is marked at once, each with its own words.
      const both = await admin.postForm('/admin/policy', {
        idle_timeout: '5 minutes',
        max_sessions_user: '-3',
        version: '0',
      });
      expect(both.statusCode).toBe(400);
      expect(both.body).toContain('see the 2 fields marked below');
      expect(both.body).toMatch(/class="form-control is-invalid" id="p-idle-timeout"/);
      expect(both.body).toMatch(
        /class="form-control form-control-sm is-invalid" id="p-max_sessions_user"/,
      );
      expect(both.body).toContain(
        'max_sessions_user must be empty or a whole number from 1 to 1000',
      );
      // Each marked field names its problem to a screen reader, beside its help.
      expect(both.body).toMatch(
        /id="p-idle-timeout"[^>]*aria-describedby="p-idle-timeout-help p-idle-timeout-error" aria-invalid="true"/,
      );
      expect(both.body).toMatch(/<div class="invalid-feedback" id="p-idle-timeout-error">/);
      expect(both.body).toMatch(
        /id="p-max_sessions_user"[^>]*aria-describedby="p-max_sessions_user-error" aria-invalid="true"/,
      );
      expect(both.body).not.toMatch(/id="p-absolute-lifetime"[^>]*aria-invalid/);

      const form = await admin.postForm('/admin/policy', { idle_timeout: 'soon', version: '0' });
      expect(form.statusCode).toBe(400);
      expect(form.body).toContain('id="policy-error"');
      expect(form.body).toContain('idle_timeout &quot;soon&quot; is not a duration');
      expect(form.body).toMatch(
        /class="form-control is-invalid" id="p-idle-timeout"[^>]*value="soon"/,
      );

      // Nothing was saved, and each refusal is on record with its field.
      expect((await admin.get('/admin/policy', 'json')).json().version).toBe(0);
      const refused = (await auditRows(t, 'policy.update')).filter((r) => r.outcome === 'refused');
      expect(refused.map((r) => r.details.field)).toContain('version');
      expect(refused.at(-1)).toMatchObject({
        target: 'session_policy',
        details: {
          field: 'idle_timeout',
          reason:
            'Invalid request: idle_timeout "soon" is not a duration (use e.g. 90s, 15m, 12h, 7d)',
        },
      });
      expect((await auditRows(t, 'policy.update')).every((r) => r.outcome === 'refused')).toBe(
        true,
      );

      // So is input refused before the handler reads it: a value its schema refuses, a field or
      // a parameter it does not take.
      const before = (await auditRows(t, 'policy.update')).length;
      const early = [
        await admin.postJson('/admin/policy', { on_limit_user: 'explode' }),
        await admin.postForm('/admin/policy', { zzz: '1' }),
        await admin.postJson('/admin/policy?x=1', {}),
      ];
      expect(early.map((r) => r.statusCode)).toEqual([400, 400, 400]);
      const later = (await auditRows(t, 'policy.update')).slice(before);
      expect(later.map((r) => [r.outcome, r.details.field])).toEqual([
        ['refused', 'on_limit_user'],
        ['refused', 'zzz'],
        ['refused', 'x'],
      ]);
    });

    it('should refuse the page and the change to anyone but a superuser', async () => {
      const admin = await setup();
      await t.createUser('admin@policy.test', 'admin');
      const other = (await signedIn(t, 'admin@policy.test')).client;
      expect((await other.get('/admin/policy', 'json')).statusCode).toBe(403);
      const res = await other.postJson('/admin/policy', { idle_timeout: '5m' });
      expect(res.statusCode).toBe(403);
      const noCsrf = await admin.postJson('/admin/policy', { idle_timeout: '5m' }, { csrf: null });
      expect(noCsrf.statusCode).toBe(403);
      expect(noCsrf.json().error.code).toBe('WARDEN_CSRF_INVALID');
      expect((await admin.get('/admin/policy', 'json')).json().version).toBe(0);
    });

    it('should give new sign-ins the new lifetimes at once', async () => {
      const admin = await setup();
      const user = await t.createUser('u@policy.test');
      const res = await admin.postJson('/admin/policy', {
        idle_timeout: '20m',
        absolute_lifetime: '2h',
      });
      expect(res.statusCode).toBe(200);

      const { session } = await t.client().login(user.email);
      const stored = await t.store.get(session.id);
      expect(stored!.absoluteExpiresAt - stored!.createdAt).toBe(2 * HOUR);
      expect(stored!.idleExpiresAt - stored!.createdAt).toBe(20 * MINUTE);
    });

    it('should end live sessions past a shortened lifetime on their next request, and keep the others', async () => {
      const admin = await setup();
      const user = await t.createUser('live@policy.test');
      const now = Date.now();
      // Signed in 3 h ago, active a minute ago (the stored deadlines are the old 12 h / 30 min).
      const old = await plantSession(t, user.id, { createdAt: now - 3 * HOUR });
      await t.store.touch(old.id, now - MINUTE, now + 29 * MINUTE);
      // Signed in 20 min ago, not seen since: within 2 h, but idle for longer than 15 min.
      const idle = await plantSession(t, user.id, { createdAt: now - 20 * MINUTE });
      const fresh = await plantSession(t, user.id, { createdAt: now - 5 * MINUTE });
      // (A request now would slide `idle`; these two stand for sessions in use.)
      for (const p of [old, fresh]) expect(await whoamiStatus(clientWith(t, p))).toBe(200);

      const res = await admin.postJson('/admin/policy', {
        absolute_lifetime: '2h',
        idle_timeout: '15m',
      });
      expect(res.statusCode).toBe(200);

      expect(await whoamiStatus(clientWith(t, old))).toBe(401);
      expect(await whoamiStatus(clientWith(t, idle))).toBe(401);
      expect(await whoamiStatus(clientWith(t, fresh))).toBe(200);
      expect(await history(old.id)).toEqual([{ kind: 'expired', reason: 'absolute' }]);
      expect(await history(idle.id)).toEqual([{ kind: 'expired', reason: 'idle' }]);
      // The shortened deadline was written back: the console lists them as expired.
      for (const p of [old, idle]) {
        expect(statusOf((await t.store.get(p.id))!, Date.now())).toBe('expired');
      }
      const listed = (await admin.get('/admin/sessions?status=active', 'json')).json();
      const activeIds = listed.items.map((i: { id: string }) => i.id);
      expect(activeIds).toContain(fresh.id);
      expect(activeIds).not.toContain(old.id);
    });

    it('should let another instance follow a change within a few seconds', async () => {
      const admin = await setup();
      const b = await secondInstance(t);
      const user = await t.createUser('other@policy.test');
      const old = await plantSession(t, user.id, { createdAt: Date.now() - 3 * HOUR });
      await t.store.touch(old.id, Date.now() - MINUTE, Date.now() + 29 * MINUTE);
      const onB = new Client(b, new Map([['warden_session', old.token]]));
      expect(await whoamiStatus(onB)).toBe(200);

      const changedAt = Date.now();
      expect((await admin.postJson('/admin/policy', { absolute_lifetime: '1h' })).statusCode).toBe(
        200,
      );
      const refusedAt = await (async () => {
        for (;;) {
          const status = await whoamiStatus(
            new Client(b, new Map([['warden_session', old.token]])),
          );
          if (status === 401) return Date.now();
          if (Date.now() - changedAt > 5_000)
            throw new Error('instance B still accepts the session');
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      expect(refusedAt - changedAt).toBeLessThan(3_500);
    });

    it('should refuse a sign-in past the role limit when set to refuse', async () => {
      const admin = await setup();
      const user = await t.createUser('capped@policy.test');
      await t.createUser('admin2@policy.test', 'admin');
      await admin.postJson('/admin/policy', { max_sessions_user: 2, on_limit_user: 'refuse' });

      const first = await t.client().login(user.email);
      await t.client().login(user.email);
      const third = await t.client().postJson('/api/auth/login', {
        email: user.email,
        password: PASSWORD,
      });
      expect(third.statusCode).toBe(403);
      expect(third.json().error.code).toBe('WARDEN_AUTH_SESSION_LIMIT');
      expect((await t.store.listByUser(user.id)).length).toBe(2);
      // One session is said as one, with a way out that needs no session here.
      await admin.postJson('/admin/policy', { max_sessions_user: 1, on_limit_user: 'refuse' });
      const single = await t.client().postJson('/api/auth/login', {
        email: user.email,
        password: PASSWORD,
      });
      expect(single.json().error.message).toBe(
        'Your role allows 1 active session at a time, and you have that many: sign out on another device, or ask an administrator to end one',
      );
      await admin.postJson('/admin/policy', { max_sessions_user: 2 });

      // The sign-in form says so, and another role is not limited.
      const browser = t.client();
      await browser.get('/login', 'html');
      const form = await browser.postForm('/login', { email: user.email, password: PASSWORD });
      expect(form.statusCode).toBe(403);
      expect(form.body).toContain('Your role allows 2 active sessions at a time');
      for (let i = 0; i < 3; i++) await t.client().login('admin2@policy.test');

      // Ending one makes room again.
      await t.app.warden.sessions.revokeIds([first.session.id], { actorId: null });
      await t.client().login(user.email);
      expect((await t.store.listByUser(user.id)).length).toBe(2);
    });

    it('should end the oldest session to make room when set to evict, recording why', async () => {
      const admin = await setup();
      const user = await t.createUser('evict@policy.test');
      await admin.postJson('/admin/policy', {
        max_sessions_user: 2,
        on_limit_user: 'evict_oldest',
      });

      const clients: Client[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const c = t.client();
        ids.push((await c.login(user.email)).session.id);
        clients.push(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(await whoamiStatus(clients[0])).toBe(401);
      expect(await whoamiStatus(clients[1])).toBe(200);
      expect(await whoamiStatus(clients[2])).toBe(200);
      expect((await t.store.listByUser(user.id)).map((s) => s.id).sort()).toEqual(
        [ids[1], ids[2]].sort(),
      );
      expect(await history(ids[0])).toEqual([{ kind: 'revoked', reason: 'evicted_by_limit' }]);
    });

    it('should keep every saved change in the page, and refuse a form shown before another change', async () => {
      const admin = await setup();
      const page = await admin.get('/admin/policy', 'html');
      expect(page.body).toContain('name="version" value="0"');
      await admin.postJson('/admin/policy', { idle_timeout: '20m' });

      // A second superuser's tab, opened before that change, saves an older picture.
      const stale = await admin.postForm('/admin/policy', { version: '0', idle_timeout: '25m' });
      expect(stale.statusCode).toBe(400);
      expect(stale.body).toContain('the policy changed since this form was shown');
      expect(stale.body).toContain('name="version" value="1"');
      expect((await admin.get('/admin/policy', 'json')).json().idleTimeoutMs).toBe(20 * MINUTE);

      // An older tab whose first try has a typo: the form comes back with the version it was
      // shown with, so its corrected save is still refused, and the change made since is kept.
      await admin.postJson('/admin/policy', { max_sessions_user: '2' });
      const typo = await admin.postForm('/admin/policy', { version: '1', idle_timeout: '2 hours' });
      expect(typo.statusCode).toBe(400);
      expect(typo.body).toContain('name="version" value="1"');
      // As the browser sends it: every field, the limit still empty as the tab showed it.
      const fixed = await admin.postForm('/admin/policy', {
        version: '1',
        idle_timeout: '2h',
        max_sessions_user: '',
      });
      expect(fixed.statusCode).toBe(400);
      expect(fixed.body).toContain('the policy changed since this form was shown');
      // Each field that would change what is in force says what that is.
      const notes = [...fixed.body.matchAll(/data-in-force="([^"]+)">([^<]*)</g)].map(
        ([, field, text]) => `${field}: ${text}`,
      );
      expect(notes).toEqual([
        'idle_timeout: In force now: 20m',
        'max_sessions_user: In force now: 2',
      ]);
      const kept = (await admin.get('/admin/policy', 'json')).json();
      expect(kept.roleLimits.user.maxSessions).toBe(2);
      expect(kept.idleTimeoutMs).toBe(20 * MINUTE);
    });
  });
}
