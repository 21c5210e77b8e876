/**
 * Case C16 of shared/CASES.md: two instances whose clocks differ by two minutes agree on
 * whether a session is valid, because deadlines follow the store's clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client, makeApp, secondInstance, storeKindsToRun, type TestApp } from '../support/app.js';

const kinds = await storeKindsToRun();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function maxAgeOf(setCookie: string | string[] | undefined): number | undefined {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  const session = all.find((c) => c.startsWith('warden_session='));
  const m = session ? /Max-Age=(\d+)/i.exec(session) : null;
  return m ? Number(m[1]) : undefined;
}

describe.each(kinds)('clocks on $kind', ({ kind, skip }) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.skipIf(skip)(
    'C16: instances two minutes apart agree on validity, and the cookie carries Max-Age',
    async () => {
      t = await makeApp(kind, {
        localClock: () => Date.now() + 120_000,
        env: { IDLE_TIMEOUT: '3s', ABSOLUTE_LIFETIME: '30s', TOUCH_INTERVAL: '1s' },
      });
      const behind = await secondInstance(t, { localClock: () => Date.now() - 120_000 });
      await t.createUser('c16@example.test');

      const a = t.client();
      const csrf = await a.csrf();
      const login = await a.request({
        method: 'POST',
        url: '/api/auth/login',
        json: { email: 'c16@example.test', password: 'correct horse battery' },
        headers: { 'x-csrf-token': csrf },
      });
      expect(login.statusCode).toBe(200);
      // Max-Age, not only Expires, so a browser with a wrong clock still agrees.
      expect(maxAgeOf(login.headers['set-cookie'])).toBeGreaterThanOrEqual(2);
      expect(maxAgeOf(login.headers['set-cookie'])).toBeLessThanOrEqual(3);
      const b = new Client(behind, a.cookies);

      expect((await b.get('/api/auth/session')).statusCode).toBe(200);
      await sleep(1_500);
      const slid = await b.get('/api/auth/session');
      expect(slid.statusCode).toBe(200);
      expect(maxAgeOf(slid.headers['set-cookie'])).toBeGreaterThanOrEqual(2);
      expect((await a.get('/api/auth/session')).statusCode).toBe(200);

      await sleep(3_500);
      expect((await b.get('/api/auth/session')).statusCode).toBe(401);
      expect((await a.get('/api/auth/session')).statusCode).toBe(401);
    },
  );
});
