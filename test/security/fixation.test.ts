/**
 * Case C11 of shared/CASES.md, session fixation: a cookie the client made up, or one it had
 * before signing in (its own earlier session, or one an attacker planted), never becomes or
 * stays a session; the sign-in always hands out a new token. The cookie is HttpOnly,
 * SameSite, Path=/, and Secure when configured or when the request came over HTTPS (through a
 * trusted proxy only).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whoamiStatus } from '../routes/helpers.js';
import { type Client, makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

/** The attributes of one Set-Cookie line, lower-cased names. */
function cookieLine(res: LightMyRequestResponse, name: string) {
  const header = res.headers['set-cookie'];
  const lines = Array.isArray(header) ? header : header ? [header] : [];
  const line = lines.find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`no ${name} cookie set`);
  const [pair, ...attrs] = line.split(';').map((p) => p.trim());
  const map = new Map(
    attrs.map((a) => {
      const [k, v = ''] = a.split('=');
      return [k.toLowerCase(), v] as const;
    }),
  );
  return { value: pair.slice(name.length + 1), attrs: map };
}

/** Signs in through the form (as a browser) or the API; the answer that set the cookie. */
async function signIn(c: Client, how: 'form' | 'api', email: string) {
  const body = { email, password: PASSWORD };
  const res =
    how === 'form' ? await c.postForm('/login', body) : await c.postJson('/api/auth/login', body);
  expect(res.statusCode, res.body).toBe(how === 'form' ? 303 : 200);
  return res;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`C11 session fixation (${kind})`, () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('alice@example.test');
      await t.createUser('mallory@example.test');
    });
    afterAll(async () => {
      await t?.close();
    });

    it.each(['form', 'api'] as const)(
      'C11: a made-up cookie sent at sign-in (%s) is never adopted and authenticates nothing',
      async (how) => {
        const planted = randomBytes(32).toString('base64url');
        const c = t.client();
        c.cookies.set('warden_session', planted);
        await signIn(c, how, 'alice@example.test');

        const issued = c.cookies.get('warden_session')!;
        expect(issued).not.toBe(planted);
        expect(await whoamiStatus(c)).toBe(200);
        expect(await t.store.get(digest(planted))).toBeNull();
        const attacker = t.client();
        attacker.cookies.set('warden_session', planted);
        expect(await whoamiStatus(attacker)).toBe(401);
      },
    );

    it.each(['form', 'api'] as const)(
      "C11: an attacker's own session planted before sign-in (%s) ends there, and the victim gets a new token",
      async (how) => {
        const mallory = t.client();
        await mallory.login('mallory@example.test');
        const planted = mallory.cookies.get('warden_session')!;

        const victim = t.client();
        victim.cookies.set('warden_session', planted);
        await signIn(victim, how, 'alice@example.test');

        const issued = victim.cookies.get('warden_session')!;
        expect(issued).not.toBe(planted);
        const who = await victim.get('/api/auth/session');
        expect(who.json().email).toBe('alice@example.test');
        // The planted value is worth nothing now, to the attacker as to anyone.
        expect(await whoamiStatus(mallory)).toBe(401);
        expect(await t.store.get(digest(planted))).toBeNull();
      },
    );

    it('C11: signing in again from the same browser ends the session it had', async () => {
      const c = t.client();
      await c.login('alice@example.test');
      const before = c.cookies.get('warden_session')!;
      await signIn(c, 'form', 'alice@example.test');
      const after = c.cookies.get('warden_session')!;

      expect(after).not.toBe(before);
      const old = t.client();
      old.cookies.set('warden_session', before);
      expect(await whoamiStatus(old)).toBe(401);
      expect(await whoamiStatus(c)).toBe(200);
    });

    it('C11: the session and CSRF cookies are HttpOnly, SameSite=Lax, Path=/, with Max-Age, not Secure over plain HTTP', async () => {
      const c = t.client();
      const csrf = cookieLine(await c.get('/api/auth/csrf'), 'warden_csrf');
      const session = cookieLine(
        await c.postJson('/api/auth/login', { email: 'alice@example.test', password: PASSWORD }),
        'warden_session',
      );
      for (const cookie of [session, csrf]) {
        expect(cookie.attrs.has('httponly')).toBe(true);
        expect(cookie.attrs.get('samesite')).toBe('Lax');
        expect(cookie.attrs.get('path')).toBe('/');
        expect(cookie.attrs.has('secure')).toBe(false);
      }
      expect(Number(session.attrs.get('max-age'))).toBeGreaterThan(0);
    });
  });
}

describe('C11: the Secure flag', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  async function cookiesOf(env: Record<string, string>, headers: Record<string, string>) {
    const t = await makeApp('sqlite', { env });
    apps.push(t);
    await t.createUser('alice@example.test');
    const c = t.client();
    const csrf = await c.request({ method: 'GET', url: '/api/auth/csrf', headers });
    const token = csrf.json().token as string;
    const login = await c.request({
      method: 'POST',
      url: '/api/auth/login',
      json: { email: 'alice@example.test', password: PASSWORD },
      headers: { ...headers, 'x-csrf-token': token },
    });
    expect(login.statusCode, login.body).toBe(200);
    return [cookieLine(login, 'warden_session'), cookieLine(csrf, 'warden_csrf')];
  }

  it('C11: is set with COOKIE_SECURE', async () => {
    for (const cookie of await cookiesOf({ COOKIE_SECURE: 'true' }, {})) {
      expect(cookie.attrs.has('secure')).toBe(true);
    }
  });

  it('C11: is set behind a trusted proxy that says the request came over HTTPS', async () => {
    const cookies = await cookiesOf({ TRUST_PROXY: 'true' }, { 'x-forwarded-proto': 'https' });
    for (const cookie of cookies) expect(cookie.attrs.has('secure')).toBe(true);
  });

  it('C11: is not set because an untrusted client claims HTTPS', async () => {
    const cookies = await cookiesOf({}, { 'x-forwarded-proto': 'https' });
    for (const cookie of cookies) expect(cookie.attrs.has('secure')).toBe(false);
  });
});
