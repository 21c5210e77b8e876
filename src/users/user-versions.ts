/**
 * @module users/user-versions
 * One counter beside the sessions in Redis that every change to a user's status, role or
 * password raises. Session validation reads it in the same round trip as the session hash
 * (node-redis pipelines the two commands), so each instance may keep user rows in memory and
 * still sees a disable or a role change on the very next request, whichever instance made it.
 */

/** The slice of a node-redis v5 client the counter uses. */
export interface UserVersionClient {
  get(key: string): Promise<string | null>;
  incr(key: string): Promise<number>;
}

export interface UserVersions {
  /** The counter as it is now; throws when Redis cannot answer. */
  read(): Promise<string>;
  /** Raises the counter; called after a write to a user that validation depends on. */
  bump(): Promise<void>;
}

export function redisUserVersions(client: UserVersionClient, prefix: string): UserVersions {
  const key = `${prefix}users:version`;
  return {
    async read() {
      return (await client.get(key)) ?? '0';
    },
    async bump() {
      await client.incr(key);
    },
  };
}
