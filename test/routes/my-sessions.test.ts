/**
 * My sessions on both stores: a person with three sessions sees all three (device, browser,
 * IP, this one marked), ends one other, then all others, and keeps the one in use; somebody
 * else's session id answers exactly like an unknown one and stays untouched. Each ending is a
 * history row and a log line, never an audit row; every POST needs its CSRF token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';
import { toastAfter, unknownId, whoamiStatus } from './helpers.js';

const UA = {
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  iphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
};

interface OwnJson {
  id: string;
  current: boolean;
  device: string;
  browser: string;
  os: string;
  ip: string;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`my sessions (${kind})`, () => {
    let t: TestApp;
    const capture = logCapture();
    const log = capture.lines;
    /** Every token handed out, to prove none reaches a log line. */
    const tokens: string[] = [];

    async function signIn(email: string, userAgent: string) {
      const c = t.client();
      c.userAgent = userAgent;
      const login = await c.login(email);
      tokens.push(c.cookies.get('warden_session')!);
      return { client: c, id: login.session.id };
    }

    async function listOwn(c: Client): Promise<OwnJson[]> {
      const res = await c.get('/me/sessions', 'json');
      expect(res.statusCode).toBe(200);
      return res.json().items;
    }

    async function historyOf(sessionId: string) {
      // Rows of a revocation follow its answer (SessionEvents.follow).
      await t.settled();
      return t.database.db
        .selectFrom('session_events')
        .select(['kind', 'reason', 'actor_id'])
        .where('session_id', '=', sessionId)
        .where('kind', '<>', 'signed_in')
        .execute();
    }

    const auditCount = async () =>
      Number(
        (
          await t.database.db
            .selectFrom('audit_log')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('action', 'not like', 'csrf.%')
            .executeTakeFirstOrThrow()
        ).n,
      );

    beforeAll(async () => {
      t = await makeApp(kind, { logStream: capture.stream, env: { CLEANUP_INTERVAL: '0' } });
    });

    afterAll(async () => {
      await t?.close();
    });

    it('should end one other session, then all others, and keep the one in use', async () => {
      const ada = await t.createUser('ada@mine.test');
      const laptop = await signIn('ada@mine.test', UA.firefox);
      const phone = await signIn('ada@mine.test', UA.iphone);
      const office = await signIn('ada@mine.test', UA.edge);
      const auditBefore = await auditCount();

      const listed = await listOwn(laptop.client);
      // This device first.
      expect(listed[0].id).toBe(laptop.id);
      expect(listed.map((s) => s.id).sort()).toEqual([laptop.id, office.id, phone.id].sort());
      expect(listed[0]).toMatchObject({
        current: true,
        device: 'Computer',
        browser: 'Firefox 133',
        os: 'Linux',
        ip: '127.0.0.1',
      });
      expect(listed.find((s) => s.id === phone.id)).toMatchObject({
        current: false,
        device: 'Apple iPhone',
        browser: 'Mobile Safari 17',
        os: 'iOS 17',
      });
      expect(listed.filter((s) => s.current)).toHaveLength(1);

      const page = await laptop.client.get('/me/sessions');
      expect(page.body.match(/This device/g)).toHaveLength(1);
      expect(page.body.match(/>End session<\/button>/g)).toHaveLength(2);
      expect(page.body).toContain('End all other sessions (2)');
      expect(page.body).not.toContain(`action="/me/sessions/${laptop.id}/revoke"`);

      // One other: the phone.
      const one = await laptop.client.postForm(`/me/sessions/${phone.id}/revoke`);
      expect(one.headers.location).toBe('/me/sessions');
      expect(await toastAfter(laptop.client, one)).toBe(
        'The session on Mobile Safari 17 on iOS 17 (127.0.0.1) has ended.',
      );
      expect(await whoamiStatus(phone.client)).toBe(401);
      expect(await whoamiStatus(laptop.client)).toBe(200);
      expect(await whoamiStatus(office.client)).toBe(200);
      expect(await historyOf(phone.id)).toEqual([
        { kind: 'revoked', reason: 'signed_out_elsewhere', actor_id: ada.id },
      ]);

      // All others: only the office is left to end.
      const all = await laptop.client.postJson('/me/sessions/revoke-others');
      expect(all.statusCode).toBe(200);
      expect(all.json().counts).toMatchObject({ revoked: 1, kept_own: 1, failed: 0 });
      expect(await whoamiStatus(office.client)).toBe(401);
      expect(await whoamiStatus(laptop.client)).toBe(200);
      expect((await listOwn(laptop.client)).map((s) => s.id)).toEqual([laptop.id]);
      expect(await historyOf(office.id)).toEqual([
        { kind: 'revoked', reason: 'signed_out_elsewhere', actor_id: ada.id },
      ]);

      const again = await laptop.client.postForm('/me/sessions/revoke-others');
      expect(await toastAfter(laptop.client, again)).toBe('There was no other session to end.');

      // Not console actions: no audit row; one log line each, with no token in it.
      expect(await auditCount()).toBe(auditBefore);
      const lines = log
        .map((l) => JSON.parse(l))
        .filter((l) => l.event === 'sign_out_elsewhere' && l.userId === ada.id);
      expect(lines.map((l) => [l.sessionId, l.ended])).toEqual([
        [phone.id, 1],
        [undefined, 1],
        [undefined, 0],
      ]);
      for (const token of tokens) expect(log.join('\n')).not.toContain(token);
    });

    it("should answer 404 for somebody else's session, as for an unknown one, and leave it alone", async () => {
      await t.createUser('eve@mine.test');
      await t.createUser('bob@mine.test');
      const eve = await signIn('eve@mine.test', UA.firefox);
      const bob = await signIn('bob@mine.test', UA.edge);

      const theirs = await eve.client.postJson(`/me/sessions/${bob.id}/revoke`);
      const nobody = await eve.client.postJson(`/me/sessions/${unknownId()}/revoke`);
      expect(theirs.statusCode).toBe(404);
      expect(theirs.json()).toEqual(nobody.json());
      expect(theirs.json().error.code).toBe('WARDEN_NOT_FOUND');
      expect(theirs.body).not.toContain(bob.id);
      expect(await whoamiStatus(bob.client)).toBe(200);
      expect(await historyOf(bob.id)).toEqual([]);

      const form = await eve.client.postForm(`/me/sessions/${bob.id}/revoke`);
      expect(form.statusCode).toBe(404);
      expect(await whoamiStatus(bob.client)).toBe(200);

      // Ending "all others" touches nobody else's sessions either.
      await eve.client.postJson('/me/sessions/revoke-others');
      expect(await whoamiStatus(bob.client)).toBe(200);
      expect((await listOwn(eve.client)).map((s) => s.id)).toEqual([eve.id]);
    });

    it('should refuse to end the session in use, a malformed id and a missing CSRF token', async () => {
      await t.createUser('kay@mine.test');
      const mine = await signIn('kay@mine.test', UA.firefox);
      const other = await signIn('kay@mine.test', UA.edge);

      const own = await mine.client.postJson(`/me/sessions/${mine.id}/revoke`);
      expect(own.statusCode).toBe(400);
      expect(own.json().error.details.field).toBe('sessionId');
      expect(await whoamiStatus(mine.client)).toBe(200);

      const bad = await mine.client.postJson('/me/sessions/not-an-id/revoke');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.details.field).toBe('sessionId');

      for (const url of [`/me/sessions/${other.id}/revoke`, '/me/sessions/revoke-others']) {
        const forged = await mine.client.postJson(url, {}, { csrf: null });
        expect(forged.statusCode, url).toBe(403);
        expect(forged.json().error.code).toBe('WARDEN_CSRF_INVALID');
        const cross = await mine.client.request({
          method: 'POST',
          url,
          form: { _csrf: await mine.client.csrf() },
          headers: { origin: 'https://evil.example' },
        });
        expect(cross.statusCode, url).toBe(403);
      }
      expect(await whoamiStatus(other.client)).toBe(200);
      const get = await mine.client.get(`/me/sessions/${other.id}/revoke`, 'json');
      expect(get.statusCode).toBe(405);
    });

    it('should show a direction control in a user agent as its escape, not reverse the line', async () => {
      await t.createUser('bidi@mine.test');
      const odd = await signIn(
        'bidi@mine.test',
        'Mozilla/5.0 (Linux; Android 13; Pixel 7\u202e) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
      );
      const page = await odd.client.get('/me/sessions', 'html');
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('\u202e');
    });

    it('should send anonymous people to sign in first', async () => {
      const anon = t.client();
      const page = await anon.get('/me/sessions', 'html');
      expect(page.statusCode).toBe(303);
      expect(page.headers.location).toBe('/login?next=%2Fme%2Fsessions');
      expect((await anon.get('/me/sessions', 'json')).statusCode).toBe(401);
      const post = await anon.postJson('/me/sessions/revoke-others');
      expect(post.statusCode).toBe(401);
    });

    it('should link My sessions for every signed-in person, before the console links', async () => {
      await t.createUser('member@mine.test');
      await t.createUser('root@mine.test', 'superuser');
      const member = await signIn('member@mine.test', UA.firefox);
      const root = await signIn('root@mine.test', UA.firefox);
      const home = (await member.client.get('/', 'html')).body;
      expect(home).toContain('href="/me/sessions"');
      expect(home).not.toContain('href="/admin/sessions"');
      const console = (await root.client.get('/me/sessions', 'html')).body;
      expect(console.indexOf('href="/me/sessions"')).toBeLessThan(
        console.indexOf('href="/admin/sessions"'),
      );
      expect(console).toMatch(/<a class="nav-link active" href="\/me\/sessions"/);
    });
  });
}
