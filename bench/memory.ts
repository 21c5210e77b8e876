/**
 * @module bench/memory
 * Section 4's peer figure: Redis bytes per session when connect-redis stores the same fields
 * Warden keeps (user, created, last seen, IP, user agent, the cookie's expiry) with no index,
 * measured as the change in used_memory on a redis-server of its own.
 */
import { randomBytes } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { docAddress, USER_AGENTS, weighted } from '../src/seed/demo-data.js';
import { startRedis } from './lib/procs.js';
import { usedMemory } from './scale.js';

const pickUserAgent = weighted(USER_AGENTS.map((e) => ({ value: e.ua, weight: e.weight })));

export async function connectRedisBytesPerSession(
  sessions: number,
  log: (line: string) => void,
): Promise<number> {
  const redis = await startRedis();
  try {
    const client = createClient({ url: redis.url });
    await client.connect();
    const store = new RedisStore({ client, prefix: 'sess:' });
    const before = await usedMemory(redis.url);
    const now = Date.now();
    const maxAge = 12 * 3_600_000;
    for (let done = 0; done < sessions; ) {
      const n = Math.min(2_000, sessions - done);
      await Promise.all(
        Array.from({ length: n }, (_, i) => {
          // express-session's ids: 24 random bytes, base64url (32 characters).
          const sid = randomBytes(24).toString('base64url');
          const user = 1 + ((done + i) % 100_000);
          const session = {
            cookie: {
              originalMaxAge: maxAge,
              expires: new Date(now + maxAge).toISOString(),
              httpOnly: true,
              path: '/',
            },
            user,
            created: now - i,
            seen: now,
            ip: docAddress((Math.random() * 2 ** 32) >>> 0),
            ua: pickUserAgent(),
          };
          return new Promise<void>((resolve, reject) =>
            // biome-ignore lint/suspicious/noExplicitAny: express-session's SessionData type
            store.set(sid, session as any, (err) => (err ? reject(err) : resolve())),
          );
        }),
      );
      done += n;
    }
    const bytes = (await usedMemory(redis.url)) - before;
    client.destroy();
    log(`connect-redis: ${(bytes / sessions).toFixed(0)} bytes per session`);
    return bytes / sessions;
  } finally {
    await redis.stop();
  }
}
