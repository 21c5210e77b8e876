/**
 * What the command line changes reaches open consoles: with sessions in Redis, a `warden
 * sessions revoke` or `cleanup` run in a child process (as an operator runs it, on the same
 * database, Redis and key prefix as a running app) is announced on the app's Server-Sent
 * Events stream within two seconds of the command's end, with the new active count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantSession, signedIn } from './routes/helpers.js';
import { listen, SseStream } from './routes/live-sse.js';
import { type Client, makeApp, storeKindsToRun, type TestApp } from './support/app.js';
import { useCli } from './support/cli.js';
import { TEST_REDIS_URL } from './support/services.js';

type SessionFrame = { type: string; sessionIds?: string[]; count?: number };
const LIVE_WITHIN_MS = 2_000;

const redis = (await storeKindsToRun()).find((k) => k.kind === 'redis+postgres');
const cli = useCli('warden-cli-live-');

describe.skipIf(!redis || redis.skip !== null)('CLI changes reach open consoles (Redis)', () => {
  let t: TestApp;
  let root: Client;
  let stream: SseStream;
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await makeApp('redis+postgres');
    await t.createUser('root@cli-live.test', 'superuser');
    root = (await signedIn(t, 'root@cli-live.test')).client;
    stream = await SseStream.open(`${await listen(t.app)}/admin/events`, root.cookieHeader());
    expect(stream.status).toBe(200);
    await stream.next('count');
    if (t.config.database.kind !== 'postgres') throw new Error('expected PostgreSQL');
    env = {
      DATABASE_URL: t.config.database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: t.prefix!,
      SESSION_STORE: 'redis',
      LOG_LEVEL: 'silent',
    };
  });

  afterAll(async () => {
    stream?.close();
    await t?.close();
  });

  it('should announce a revocation made by `warden sessions revoke`', async () => {
    const user = await t.createUser('sam@cli-live.test');
    const target = await plantSession(t, user.id);
    const from = stream.frames.length;
    const active = (await root.get('/admin/live', 'json')).json().active as number;

    const res = await cli.run(['sessions', 'revoke', target.id], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^1 revoked/);

    const event = await stream.next<SessionFrame>(
      'session',
      (e) => e.type === 'revoked' && (e.sessionIds ?? []).includes(target.id),
      { timeoutMs: LIVE_WITHIN_MS, from },
    );
    expect(event.sessionIds).toEqual([target.id]);
    await stream.next<{ active: number }>('count', (c) => c.active === active - 1, {
      timeoutMs: LIVE_WITHIN_MS,
      from,
    });
  });

  it('should announce a cleanup made by `warden sessions cleanup`', async () => {
    const user = await t.createUser('kim@cli-live.test');
    await plantSession(t, user.id, { expired: true });
    await plantSession(t, user.id, { expired: true });
    const from = stream.frames.length;

    const res = await cli.run(['sessions', 'cleanup'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('removed 2 expired sessions\n');

    const event = await stream.next<SessionFrame>('session', (e) => e.type === 'cleaned_up', {
      timeoutMs: LIVE_WITHIN_MS,
      from,
    });
    expect(event.count).toBe(2);
  });
});
