/**
 * @module users/user-versions
 * One counter beside the sessions in Redis that every change to a user's status, role or
 * password raises. Session validation reads it in the same round trip as the session hash
 * (node-redis pipelines the two commands), so each instance may keep user rows in memory and
 * still sees a disable or a role change on the very next request, whichever instance made it.
 * With tracked reads the counter itself is kept in memory until Redis reports that it rose.
 */
import { invalidationFence, type TrackedReads } from '../sessions/tracked-reads.js';

/** The slice of a node-redis v5 client the counter uses. */
export interface UserVersionClient {
  get(key: string): Promise<string | null>;
  incr(key: string): Promise<number>;
  ping(): Promise<string>;
}

export interface UserVersions {
  /** The counter as it is now; throws when Redis cannot answer. */
  read(): Promise<string>;
  /** The counter without waiting, when known to be current; undefined when not known. */
  peek?(): string | undefined;
  /** Raises the counter; called after a write to a user that validation depends on. */
  bump(): Promise<void>;
}

export function redisUserVersions(
  client: UserVersionClient,
  prefix: string,
  tracked?: TrackedReads,
): UserVersions {
  const key = `${prefix}users:version`;
  const get = async (c: Pick<UserVersionClient, 'get'>) => (await c.get(key)) ?? '0';
  const bump = async () => {
    await client.incr(key);
    tracked?.forget(key);
    // Other instances may hold the counter in memory: their invalidation is out before this
    // change is reported done (see invalidationFence).
    await invalidationFence(client);
  };
  if (!tracked) return { read: () => get(client), bump };
  return {
    // The main connection answers while the tracking one is away (see RedisSessionStore.get).
    read: () => (tracked.ready ? tracked.load(key, get, () => true) : get(client)),
    // Not counted: the cache's hits and misses count validations, which read the session.
    peek: () => tracked.peek(key, false),
    bump,
  };
}
