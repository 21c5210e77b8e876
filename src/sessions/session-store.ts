/**
 * @module sessions/session-store
 * The one interface both session stores implement (SQL and Redis), and what it
 * promises. `test/store-contract.test.ts` holds every implementation to it.
 */

import type { Role } from '../db/schema.js';
import type { ReadCacheStats } from './read-cache.js';

/** One session as stored. Times are epoch milliseconds; `id` is the token's SHA-256. */
export interface SessionRecord {
  id: string;
  userId: number;
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  ip: string;
  userAgent: string;
}

/** The deadline that comes first: past it the session is expired. */
export function expiresAt(s: Pick<SessionRecord, 'idleExpiresAt' | 'absoluteExpiresAt'>): number {
  return Math.min(s.idleExpiresAt, s.absoluteExpiresAt);
}

export type SessionStatus = 'active' | 'expired';

export function statusOf(s: SessionRecord, now: number): SessionStatus {
  return expiresAt(s) > now ? 'active' : 'expired';
}

/** Filters on the session's user, answered by the users table. */
export interface UserFilter {
  /** Part of the email, already in NFC lower case (see normalizeEmail); never a pattern. */
  email?: string;
  role?: Role;
}

/** Narrows a user-id resolution, so its cost follows what the caller needs, not the users table. */
export interface ResolveOptions {
  /** Only these users are considered (a page's owners, a caller's ids). */
  among?: readonly number[];
  /** Only ids greater than this: with `limit`, pages through the matching users. */
  after?: number;
  /** At most this many ids are returned, the lowest first (with `after`, a keyset page). */
  limit?: number;
}

/**
 * Ids of the users matching a filter; how the Redis store answers user filters. A resolver
 * may ignore `options` (the store intersects and counts itself); honouring them is what keeps
 * a broad filter's page from costing a read of every matching user.
 */
export type ResolveUserIds = (filter: UserFilter, options?: ResolveOptions) => Promise<number[]>;

/** What a console listing asks for. */
export interface SessionQuery {
  /** Only these users' sessions (an empty array matches nothing). */
  userIds?: readonly number[];
  /** Only sessions of users matching this. */
  user?: UserFilter;
  status?: 'all' | SessionStatus;
  /** Inclusive lower bound on `createdAt`. */
  createdFrom?: number;
  /** Exclusive upper bound on `createdAt`. */
  createdTo?: number;
  /** The time that decides active or expired. */
  now: number;
  offset: number;
  limit: number;
  /**
   * Count no further than this: when more sessions match, `total` is this number and
   * `totalCapped` is true ("more than 10,000"). What a console page asks for, so that it
   * costs what the page costs rather than what the whole match costs. Without it the total
   * is exact (the confirmation of revoke-matching, the export).
   */
  countUpTo?: number;
}

export interface SessionPage {
  /**
   * Newest first by creation (ties: ascending id), except with status expired: most recently
   * expired first (latest `expiresAt`; ties: descending id), which every store can read from
   * its deadline index without passing the live sessions. listIds follows the same order.
   */
  items: SessionRecord[];
  /** How many sessions match in all (not only this page); see `totalCapped`. */
  total: number;
  /** True when the query's `countUpTo` was reached: more than `total` sessions match. */
  totalCapped?: boolean;
  /** Entries met on the way that could not be read (corrupt or dangling) and were left out. */
  skipped: number;
}

/** Why a delete did not remove a session. */
export type DeleteOutcome = 'deleted' | 'not_found';

/**
 * What `takeMany` found of one id: the session as it was when deleted, `unreadable` when an
 * entry was there and deleted but could not be read, `not_found` when nothing was there.
 */
export type Taken = SessionRecord | 'unreadable' | 'not_found';

/**
 * A session `takeOfUser` ended without reading it (Redis): what it was is read once the
 * revocation has answered, by `collectSetAside`.
 */
export interface SetAside {
  readonly setAside: true;
  readonly id: string;
  /** When it would have expired: the revocation ended it when that was still ahead. */
  readonly expiresAt: number;
}

/** What `takeOfUser` found of one id: as takeMany's, or a session set aside. */
export type TakenOfUser = Taken | SetAside;

/** One batch of `takeExpired`. */
export interface ExpiredBatch {
  /** The readable sessions it removed, as they were (for their history rows). */
  sessions: SessionRecord[];
  /** True when fewer than `limit` entries were due: nothing due is left (but for races). */
  done: boolean;
}

/** Sessions of one group of users: every stored one, and the active among them. */
export interface SessionTally {
  total: number;
  active: number;
}

/** The users with the most stored sessions (live and expired), most first. */
export interface TopUsers {
  users: { userId: number; sessions: number }[];
  /**
   * null when every session was counted; otherwise the number of newest sessions the
   * candidates were drawn from (a user with only older sessions can be missing).
   */
  sampledFrom: number | null;
}

/** What the statistics page shows about the store's own bookkeeping. */
export interface HealthReport {
  /**
   * Active sessions by time left: `remaining[i]` expire within (edges[i-1], edges[i]]
   * milliseconds from now (edges[-1] being 0), and the last entry after every edge.
   */
  remaining: number[];
  /** Sessions past their deadline that cleanup has not removed yet. */
  expired: number;
  /** The earliest deadline among those, or null when there are none. */
  oldestExpiredAt: number | null;
  /** Index entries (Redis) or rows (SQL: sessions whose user is gone) that point to nothing. */
  dangling: Record<string, number>;
  /** How many entries or rows were checked for `dangling`. */
  checked: number;
  /** False when only a bounded part was checked; a repair walks everything. */
  complete: boolean;
}

export interface CreateOptions {
  /**
   * The store's time (epoch milliseconds) after which the write must not happen any more: by
   * then the caller has given up waiting and answered that the sign-in failed. A store that
   * receives the write later (a paused server resuming, a stalled connection) refuses it with
   * LateWriteError instead of creating a session nobody holds the token of.
   */
  notAfter?: number;
}

export interface TakeOptions {
  /**
   * As CreateOptions' `notAfter`: past this time (epoch ms, by the store's clock) the caller has
   * given up waiting, and a take that reaches the store later (a paused Redis resuming with the
   * script in its socket) removes nothing, so no session goes without its history row.
   */
  notAfter?: number;
  /**
   * Told of each batch as soon as the store has it, even when the caller has stopped waiting
   * (Redis paused after running the step, before sending its answer): those sessions are gone,
   * and only this callback can still record them.
   */
  taken?: (batch: ExpiredBatch) => void;
}

/** A take that reached the store after its `notAfter`: nothing was removed. */
export class LateTakeError extends Error {
  override name = 'LateTakeError';
  constructor(notAfter: number) {
    super(`the store got a cleanup step after ${notAfter}, when its caller had given up`);
  }
}

/** A create that reached the store after its `notAfter`: nothing was written. */
export class LateWriteError extends Error {
  override name = 'LateWriteError';
  constructor(id: string, notAfter: number) {
    super(`session ${id}: the store got the write after ${notAfter}, when its caller had given up`);
  }
}

export interface SessionStore {
  readonly kind: 'sql' | 'redis';

  /**
   * Ids per takeMany or takeOfUser call in a bulk revocation, a few calls in flight. A call
   * whose answer is lost can leave that many deleted yet unreported, so it is small where
   * answers travel a wire (Redis, PostgreSQL); SQLite answers in this process, where no answer
   * is lost and each call is a commit of its own, so there it is large.
   */
  readonly bulkChunk: number;
  /**
   * Such calls in flight at once. Where answers travel a wire, a few overlap their round trips;
   * SQLite runs each in this thread, where calls queued together run back to back and hold
   * every request for all of them, so there it is one.
   */
  readonly bulkWindow: number;

  /** Stores a new session. Only sign-in creates sessions. */
  create(session: SessionRecord, options?: CreateOptions): Promise<void>;
  /**
   * Stores many new sessions as `create` would, for bulk loads (the demo seed), where a store
   * can do it in fewer steps; throws, storing none of a step, if one of its ids is stored.
   */
  createMany?(sessions: readonly SessionRecord[]): Promise<void>;

  /** The session, or null when it does not exist (or cannot be read). */
  get(id: string): Promise<SessionRecord | null>;
  /**
   * The session without waiting, when the store knows it has not changed since it was last read
   * (a cache whose changes the store reports); undefined when it does not know. Never null: a
   * missing session is for `get` to say. The record is shared: do not mutate it.
   */
  peek?(id: string): SessionRecord | undefined;
  /** What the memory behind `peek` did since start (for /metrics); undefined without one. */
  memoryStats?(): ReadCacheStats | undefined;

  /**
   * Slides a session: sets `lastSeenAt` and `idleExpiresAt`, only if the session still
   * exists. Never creates one, so a touch racing a sign-out or revocation cannot bring
   * the session back. Returns false when there was nothing to touch.
   */
  touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<boolean>;

  /** Deletes one session; says whether it was there. */
  delete(id: string): Promise<DeleteOutcome>;

  /**
   * Deletes several sessions; returns, for each id, whether it was there. Ids not in the
   * returned map were not attempted (the store failed first): the caller reports them as
   * failed, and a second run finishes the job.
   */
  deleteMany(ids: readonly string[]): Promise<Map<string, DeleteOutcome>>;

  /**
   * deleteMany that also answers what each deleted session was, read in the same step (one
   * round trip, atomic per chunk), so a revocation writes its history without reading first.
   * Ids left out of the map were not confirmed, as in deleteMany.
   */
  takeMany(ids: readonly string[]): Promise<Map<string, Taken>>;

  /**
   * Ids of one user's sessions as the user's own index (Redis) or rows (SQL) hold them, newest
   * first, without reading the sessions: where a revocation of every session of the user
   * starts. An id may be stale (its session gone, or misfiled under this user): `takeOfUser`
   * checks each.
   */
  userSessionIds(userId: number): Promise<string[]>;

  /**
   * takeMany of one user's sessions only: an id whose stored session belongs to another user
   * is neither taken nor touched and is answered `not_found`, as is an id with nothing stored.
   * The owner is checked in the same atomic step as the delete. Ids left out of the map were
   * not confirmed, as in takeMany.
   */
  takeOfUser(userId: number, ids: readonly string[]): Promise<Map<string, TakenOfUser>>;

  /**
   * Returns once what every write before it changed is known to every instance that keeps
   * sessions in memory; a store whose takes do not wait for that themselves (Redis's
   * takeOfUser) has it, and a revocation calls it before it answers.
   */
  fence?(): Promise<void>;

  /**
   * Reads and removes what `takeOfUser` set aside: each session as it was, `not_found` when it
   * is no longer held (its bound passed), `unreadable` when it cannot be read. Only a store
   * that sets sessions aside has it.
   */
  collectSetAside?(ids: readonly string[]): Promise<Map<string, Taken>>;

  /**
   * Calls `listener` with how many sessions a late collection removed: ones `takeOfUser` set
   * aside whose collection came after readers stopped waiting for it (Redis paused, or it
   * failed and was retried), which they counted until then. No event announced them, so an
   * open console learns its figures changed from this. Only a store that
   * sets sessions aside has it; the function returned stops the calls.
   */
  onLateCollection?(listener: (collected: number) => void): () => void;

  /**
   * Resolves once what this instance's revocations set aside before the call is collected, or
   * no longer waited for (at most 2 s): what its readers wait for before they read. Lets a
   * caller tell that wait from the read's own cost. Only a store that sets sessions aside has
   * it.
   */
  settled?(): Promise<void>;

  /**
   * Removes up to `limit` of the sessions whose deadline is at or before `before`, soonest
   * first, and returns the readable ones as they were. Entries due that are not a readable
   * session go too, or (on Redis, a key that is something else) are left to removeUnreadable
   * but no longer counted as due. Several calls may run at once: each removes what it returns.
   */
  takeExpired(before: number, limit: number, options?: TakeOptions): Promise<ExpiredBatch>;

  /** All sessions of one user, live and expired, newest first. */
  listByUser(userId: number): Promise<SessionRecord[]>;

  /** A page of sessions matching a query, newest first. */
  list(query: SessionQuery): Promise<SessionPage>;

  /** Ids of every session matching a query (for revoke-matching), in list()'s order. */
  listIds(query: Omit<SessionQuery, 'offset' | 'limit'>): Promise<string[]>;

  /** Sessions whose deadline is at or before `before`, oldest first, at most `limit`. */
  listExpired(before: number, limit: number): Promise<SessionRecord[]>;

  /** Counts of active and expired sessions at `now`. */
  counts(now: number): Promise<{ active: number; expired: number }>;

  /** Round trip to the store, in milliseconds. */
  ping(): Promise<number>;

  /** The store's own clock, in epoch milliseconds: the one source of time for deadlines. */
  time(): Promise<number>;

  /** The newest readable sessions, newest first, at most `limit` (for per-client figures). */
  sample(limit: number): Promise<SessionRecord[]>;

  /** Sessions by their user's role at `now`; sessions whose user is gone count as `user`. */
  countsByRole(now: number): Promise<Record<Role, SessionTally>>;

  /** The `limit` users with the most stored sessions. */
  topUsers(limit: number): Promise<TopUsers>;

  /**
   * Sessions by remaining lifetime, expired ones not yet cleaned up, and entries that point
   * to nothing. `edgesMs` are ascending bucket bounds in milliseconds from now.
   */
  healthReport(now: number, edgesMs: readonly number[]): Promise<HealthReport>;

  /**
   * Removes what healthReport counts as dangling, walking everything; returns how many were
   * removed, by the same keys. Safe to run again and beside live traffic.
   */
  repairIndexes(): Promise<Record<string, number>>;

  /**
   * Removes session entries that cannot be read: on Redis the keys readers met that are not a
   * readable session hash (wrong type, missing fields, bad values), with their index entries;
   * in SQL rows with values of the wrong type or out of range, and rows whose user is gone.
   * Returns how many were removed. Safe to run again and beside live traffic; cleanup runs it.
   */
  removeUnreadable(): Promise<number>;

  /** The server's own figures (Redis INFO fields); empty for the SQL store. */
  info(): Promise<Record<string, string>>;

  close(): Promise<void>;
}
