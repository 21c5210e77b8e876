/**
 * @module sessions/locks
 * Locks that let one instance of a fleet run a periodic job while the others skip it:
 * in Redis (SET NX PX with a random value, released only by its holder), in PostgreSQL
 * (a session-level advisory lock on one held connection) or, for a single process on
 * SQLite, in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';

/** What `tryRun` did: ran `fn` under the lock, or skipped it because another holder had it. */
export type LockedRun<T> = { ran: true; value: T } | { ran: false };

export interface JobLock {
  readonly kind: 'redis' | 'postgres' | 'process';
  /** Runs `fn` if the lock is free, holding it until `fn` settles; never waits for it. */
  tryRun<T>(fn: () => Promise<T>): Promise<LockedRun<T>>;
}

/** A lock only this process honours: enough for the embedded, single-instance setup. */
export function processLock(): JobLock {
  let held = false;
  return {
    kind: 'process',
    async tryRun(fn) {
      if (held) return { ran: false };
      held = true;
      try {
        return { ran: true, value: await fn() };
      } finally {
        held = false;
      }
    },
  };
}

/** The slice of a node-redis v5 client the Redis lock uses. */
export interface RedisLockClient {
  set(
    key: string,
    value: string,
    options: { condition: 'NX'; expiration: { type: 'PX'; value: number } },
  ): Promise<string | null>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

// Deletes the key only while it still holds our value: a holder whose run outlived the TTL
// must not release the lock that another instance has taken since.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * A lock in Redis that expires by itself after `ttlMs`, so a holder that dies mid-run
 * blocks the others for at most that long.
 */
export function redisLock(client: RedisLockClient, key: string, ttlMs: number): JobLock {
  return {
    kind: 'redis',
    async tryRun(fn) {
      const value = randomBytes(16).toString('hex');
      const taken = await client.set(key, value, {
        condition: 'NX',
        expiration: { type: 'PX', value: ttlMs },
      });
      if (taken === null) return { ran: false };

      try {
        return { ran: true, value: await fn() };
      } finally {
        // If Redis is gone, the key expires by itself; the run's own outcome matters more.
        await client.eval(RELEASE, { keys: [key], arguments: [value] }).catch(() => {});
      }
    },
  };
}

/** A stable 63-bit advisory lock number for a name (PostgreSQL keys are bigints). */
export function advisoryKey(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  return (digest.readBigUInt64BE(0) >> 1n).toString();
}

/**
 * A PostgreSQL advisory lock, held on one pooled connection for the length of the run. If that
 * connection dies, PostgreSQL releases the lock with it. Advisory locks are per database, so
 * instances on one database share it and nothing else does.
 */
// biome-ignore lint/suspicious/noExplicitAny: takes a Kysely typed with any schema
export function postgresLock(db: Kysely<any>, name: string): JobLock {
  const key = advisoryKey(name);
  return {
    kind: 'postgres',
    tryRun(fn) {
      return db.connection().execute(async (conn) => {
        const { rows } = await sql<{ locked: boolean }>`
          select pg_try_advisory_lock(${key}::bigint) as locked`.execute(conn);
        if (!rows[0]?.locked) return { ran: false };

        try {
          return { ran: true, value: await fn() };
        } finally {
          // A connection that died took the lock with it.
          await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn).catch(() => {});
        }
      });
    },
  };
}
