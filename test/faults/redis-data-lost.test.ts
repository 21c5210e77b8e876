/**
 * A Redis restarted without persistence comes back empty: every session is gone. Warden cannot
 * bring them back, but it must say so, once, in the log an operator reads, rather than let
 * everyone's sudden sign-out pass for an ordinary reconnect. A Redis that kept its data (the
 * outage test's, with its append-only file) gets no such line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, PASSWORD } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { startWarden, type Warden, waitFor } from './harness.js';

describe.skipIf(!redisServerAvailable() && !servicesRequired())('Redis restarted empty', () => {
  let own: OwnRedis;
  let w: Warden;
  let person: Client;

  beforeAll(async () => {
    own = await startOwnRedis({ persist: false });
    w = await startWarden({ env: { REDIS_URL: own.url } });
    await w.createUser('person@example.test');
    person = w.client();
    await person.login('person@example.test', PASSWORD);
  }, 30_000);

  afterAll(async () => {
    await w?.close();
    await own?.stop();
  });

  it('should log redis_data_lost once when Redis comes back without its data, and let nobody in on the lost sessions', async () => {
    expect((await person.get('/api/auth/session')).statusCode).toBe(200);
    expect(w.logs.filter((l) => l.event === 'redis_data_lost')).toEqual([]);

    await own.kill();
    await own.start();
    await waitFor(
      () => w.logs.some((l) => l.event === 'redis_data_lost'),
      5_000,
      'the data-lost line',
    );
    const lines = w.logs.filter((l) => l.event === 'redis_data_lost');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, url: own.url });
    expect(String(lines[0]!.msg)).toContain('persistence');

    // The session went with the data: its cookie is no one's now.
    await waitFor(
      async () => (await person.get('/api/auth/session')).statusCode === 401,
      3_000,
      'the lost session refused',
    );
    // And a new sign-in works on the empty Redis, without another warning.
    await person.login('person@example.test', PASSWORD);
    expect((await person.get('/api/auth/session')).statusCode).toBe(200);
    expect(w.logs.filter((l) => l.event === 'redis_data_lost')).toHaveLength(1);
  }, 30_000);
});
