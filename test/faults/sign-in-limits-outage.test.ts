/**
 * The sign-in limits count in the Redis that holds the sessions. While it is away the counts
 * cannot be read, so a password is not checked at all: a wrong one and the right one get the
 * same 503, guesses cannot run unlimited, and nothing tells a right password from a wrong one.
 * Once Redis is back, wrong passwords count again up to the account's limit.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { startWarden, type Warden, waitFor } from './harness.js';

const EMAIL = 'guessed@example.test';

describe.skipIf(!redisServerAvailable() && !servicesRequired())(
  'sign-in limits while Redis is away',
  () => {
    let own: OwnRedis;
    let w: Warden;

    beforeAll(async () => {
      own = await startOwnRedis();
      w = await startWarden({
        env: { REDIS_URL: own.url, SIGN_IN_LIMIT_ACCOUNT: '3', SIGN_IN_LIMIT_IP: '100' },
      });
      await w.createUser(EMAIL);
    }, 30_000);

    afterAll(async () => {
      own?.resume();
      await w?.close();
      await own?.stop();
    });

    const attempt = async (password: string) => {
      const res = await w.client().postJson('/api/auth/login', { email: EMAIL, password });
      const body = res.json() as { error?: { code?: string } };
      return { status: res.statusCode, code: body.error?.code ?? null };
    };

    it('should answer a wrong and the right password alike, 503 unchecked, and count again once Redis is back', async () => {
      own.pause();
      try {
        const answers = [];
        for (let i = 0; i < 5; i++) answers.push(await attempt('not the password'));
        answers.push(await attempt(PASSWORD));
        expect(new Set(answers.map((a) => JSON.stringify(a)))).toEqual(
          new Set([JSON.stringify({ status: 503, code: 'WARDEN_STORE_UNAVAILABLE' })]),
        );
        // One warning for the outage, not one per attempt (nor per counter it could not read):
        // the next, 10 s on, would count the attempts held back meanwhile.
        const warned = w.logs.filter((l) => l.event === 'rate_limit_counter');
        expect(warned).toHaveLength(1);
        expect(warned[0]).toMatchObject({ repeats: 0 });

        // The form comes back to send again, and the log says why, as for any request that fails.
        const failedBefore = w.logs.filter((l) => l.event === 'request_failed').length;
        const form = await w.client().postForm('/login', { email: EMAIL, password: PASSWORD });
        expect(form.statusCode).toBe(503);
        expect(form.body).toContain('Try again in a few seconds');
        const failed = w.logs.filter((l) => l.event === 'request_failed').slice(failedBefore);
        expect(failed).toEqual([expect.objectContaining({ code: 'WARDEN_STORE_UNAVAILABLE' })]);
      } finally {
        own.resume();
      }

      // Back: the breaker closes within its half-open wait, and the limit holds from zero.
      await waitFor(
        async () => (await attempt('still wrong')).status === 401,
        10_000,
        'a counted wrong password',
      );
      // That was the first counted failure; two more use up the limit of 3.
      for (let i = 0; i < 2; i++) {
        expect(await attempt('still wrong')).toEqual({
          status: 401,
          code: 'WARDEN_AUTH_INVALID_CREDENTIALS',
        });
      }
      expect(await attempt('still wrong')).toEqual({ status: 429, code: 'WARDEN_RATE_LIMITED' });
      expect((await attempt(PASSWORD)).status).toBe(429);
    }, 60_000);
  },
);
