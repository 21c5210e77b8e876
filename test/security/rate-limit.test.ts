/**
 * Sign-in limits: wrong passwords counted per account and per client IP (behind a trusted proxy,
 * the forwarded one), a clear 429 with Retry-After for JSON and a page saying so for the form,
 * the right password refused too while limited, parallel guesses held to the limit, the count
 * shared by instances on one Redis; and an unknown email answered like a wrong password, in
 * about the same time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/users/passwords.js';
import {
  Client,
  makeApp,
  PASSWORD,
  secondInstance,
  storeKindsToRun,
  type TestApp,
} from '../support/app.js';

const LIMITS = { SIGN_IN_LIMIT_ACCOUNT: '3', SIGN_IN_LIMIT_IP: '6', SIGN_IN_LIMIT_WINDOW: '10m' };

function login(c: Client, email: string, password: string, headers: Record<string, string> = {}) {
  return c.csrf().then((token) =>
    c.request({
      method: 'POST',
      url: '/api/auth/login',
      json: { email, password },
      headers: { 'x-csrf-token': token, ...headers },
    }),
  );
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`sign-in limits (${kind})`, () => {
    let t: TestApp | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    it('should answer 429 with Retry-After once an account used up its wrong passwords, the right one included', async () => {
      t = await makeApp(kind, { env: LIMITS });
      await t.createUser('ann@example.test');
      const c = t.client();
      for (let i = 0; i < 3; i++) {
        const res = await login(c, 'ann@example.test', `wrong ${i}`);
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('WARDEN_AUTH_INVALID_CREDENTIALS');
      }
      const limited = await login(c, 'ann@example.test', PASSWORD);
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error).toMatchObject({ code: 'WARDEN_RATE_LIMITED' });
      const wait = Number(limited.headers['retry-after']);
      expect(wait).toBeGreaterThan(500);
      expect(wait).toBeLessThanOrEqual(600);
      expect(limited.json().error.message).toBe(
        `Too many attempts; retry in ${Math.ceil(wait / 60)} minutes`,
      );
      expect(c.cookies.has('warden_session')).toBe(false);

      // Another account from the same client is not held up by this one.
      await t.createUser('bob@example.test');
      expect((await login(c, 'bob@example.test', PASSWORD)).statusCode).toBe(200);
    });

    it('should show the sign-in form a page that says to wait, with Retry-After', async () => {
      t = await makeApp(kind, { env: LIMITS });
      await t.createUser('ann@example.test');
      const c = t.client();
      for (let i = 0; i < 3; i++) {
        const res = await c.postForm('/login', { email: 'ann@example.test', password: 'nope' });
        expect(res.statusCode).toBe(401);
      }
      const page = await c.postForm('/login', { email: 'ann@example.test', password: PASSWORD });
      expect(page.statusCode).toBe(429);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['retry-after']).toMatch(/^\d+$/);
      expect(page.body).toMatch(/Too many attempts; retry in \d+ minutes/);
      expect(page.body).toContain('form method="post" action="/login"');
    });

    it('should count an unknown email like a wrong password, per account and per IP', async () => {
      // Each unknown email costs a full-price dummy hash: few of them.
      t = await makeApp(kind, {
        env: { ...LIMITS, SIGN_IN_LIMIT_ACCOUNT: '2', SIGN_IN_LIMIT_IP: '3' },
      });
      const c = t.client();
      for (let i = 0; i < 2; i++) {
        expect((await login(c, 'ghost@example.test', 'x')).statusCode).toBe(401);
      }
      expect((await login(c, 'ghost@example.test', 'x')).statusCode).toBe(429);
      // Same IP, another address: three failures in all from this IP, then it is refused.
      expect((await login(c, 'ghost2@example.test', 'x')).statusCode).toBe(401);
      await t.createUser('ann@example.test');
      const limited = await login(c, 'ann@example.test', PASSWORD);
      expect(limited.statusCode).toBe(429);
    });

    it('should hold a burst of parallel guesses at one account to the limit', async () => {
      t = await makeApp(kind, { env: { ...LIMITS, SIGN_IN_LIMIT_IP: '1000' } });
      await t.createUser('ann@example.test');
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => login(t!.client(), 'ann@example.test', `guess ${i}`)),
      );
      const statuses = answers.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 401)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(17);
    });

    it('should let many parallel sign-ins with the right password through', async () => {
      t = await makeApp(kind, { env: LIMITS });
      await t.createUser('ann@example.test');
      const answers = await Promise.all(
        Array.from({ length: 15 }, () => login(t!.client(), 'ann@example.test', PASSWORD)),
      );
      expect(answers.map((r) => r.statusCode)).toEqual(Array(15).fill(200));
    });

    it('should limit per forwarded client behind a trusted proxy, not per proxy', async () => {
      t = await makeApp(kind, { env: { ...LIMITS, TRUST_PROXY: 'true' } });
      for (let i = 0; i < 10; i++) await t.createUser(`u${i}@example.test`);
      const c = t.client();
      const from = (ip: string) => ({ 'x-forwarded-for': ip });
      for (let i = 0; i < 6; i++) {
        expect((await login(c, `u${i}@example.test`, 'x', from('198.51.100.7'))).statusCode).toBe(
          401,
        );
      }
      expect((await login(c, 'u9@example.test', 'x', from('198.51.100.7'))).statusCode).toBe(429);
      // The same client written as IPv6 is the same client.
      expect((await login(c, 'u9@example.test', 'x', from('::ffff:198.51.100.7'))).statusCode).toBe(
        429,
      );
      expect((await login(c, 'u9@example.test', 'x', from('198.51.100.8'))).statusCode).toBe(401);
    });

    it('should keep the forwarded address of a session in one spelling', async () => {
      t = await makeApp(kind, { env: { TRUST_PROXY: 'true' } });
      const user = await t.createUser('spelled@example.test');
      const c = t.client();
      const forwarded = '0000:0000:0000:0000:0000:ffff:192.168.100.200';
      const res = await login(c, user.email, PASSWORD, { 'x-forwarded-for': forwarded });
      expect(res.statusCode).toBe(200);
      const second = t.client();
      const v6 = '2001:0DB8:0000:0000:0000:0000:0000:0001';
      expect(
        (await login(second, user.email, PASSWORD, { 'x-forwarded-for': v6 })).statusCode,
      ).toBe(200);
      const ips = (await t.store.listByUser(user.id)).map((s) => s.ip).sort();
      expect(ips).toEqual(['192.168.100.200', '2001:db8::1']);
    });

    it.skipIf(kind !== 'redis+postgres')(
      'should share the count between instances on one Redis',
      async () => {
        t = await makeApp(kind, { env: LIMITS });
        await t.createUser('ann@example.test');
        const other = await secondInstance(t);
        const a = t.client();
        const b = new Client(other);
        expect((await login(a, 'ann@example.test', 'w1')).statusCode).toBe(401);
        expect((await login(b, 'ann@example.test', 'w2')).statusCode).toBe(401);
        expect((await login(a, 'ann@example.test', 'w3')).statusCode).toBe(401);
        expect((await login(b, 'ann@example.test', PASSWORD)).statusCode).toBe(429);
        // The counter is one Redis key with a TTL, named by a digest of the account.
        const keys: string[] = [];
        for await (const batch of t.redis!.scanIterator({ MATCH: `${t.prefix}ratelimit:*` })) {
          keys.push(...batch);
        }
        expect(keys.length).toBe(2);
        for (const key of keys) {
          expect(key).not.toContain('ann');
          expect(await t.redis!.pTTL(key)).toBeGreaterThan(0);
        }
      },
    );
  });
}

describe('sign-in timing', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('should answer an unknown email and a wrong password alike, in about the same time', async () => {
    t = await makeApp('sqlite', { env: { SIGN_IN_LIMIT_ACCOUNT: '100', SIGN_IN_LIMIT_IP: '100' } });
    // A password hashed at the real cost: the unknown email's dummy check runs at that cost.
    const user = await t.createUser('real@example.test');
    await t.database.db
      .updateTable('users')
      .set({ password_hash: await hashPassword(PASSWORD) })
      .where('id', '=', user.id)
      .execute();

    const c = t.client();
    const time = async (email: string) => {
      const started = performance.now();
      const res = await login(c, email, 'a wrong password');
      return { ms: performance.now() - started, body: res.json(), status: res.statusCode };
    };
    await time('nobody@example.test');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await time('real@example.test');
      const b = await time(`nobody${i}@example.test`);
      expect(b.status).toBe(a.status);
      expect(b.body).toEqual(a.body);
      known.push(a.ms);
      unknown.push(b.ms);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const ratio = median(unknown) / median(known);
    // Loose on purpose (shared CI machines): an unhashed miss would be 100 times faster.
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});
