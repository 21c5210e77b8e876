/**
 * @module sessions/session-service
 * What Warden does with sessions: sign-in, validation with a sliding idle deadline,
 * sign-out, revocation of one, many, a user's or every matching session, and cleanup.
 * Every ending is a row of session history.
 */
import type { UserRow } from '../db/schema.js';
import { reasonOf } from '../errors.js';
import type { HistoryWriter, SessionEvent, SessionEvents } from '../events/session-events.js';
import { StoreUnavailableError } from '../resilience/guarded-store.js';
import type { UserRepo } from '../users/user-repo.js';
import {
  admitSignIn,
  boundedByPolicy,
  expireByPolicy,
  type LivePolicy,
  type PolicySource,
  settleSessionLimit,
  staticPolicy,
} from './policy.js';
import {
  type ExpiredBatch,
  expiresAt,
  type SessionQuery,
  type SessionRecord,
  type SessionStore,
  statusOf,
  type Taken,
} from './session-store.js';
import { isSessionId, isWellFormedToken, newToken, sessionIdOf } from './tokens.js';

/** Sessions a take set aside unread (see SessionStore.collectSetAside), with their history row. */
interface SetAsideEnds {
  ids: string[];
  event: SessionEvent;
  at: number;
}

/**
 * A change to the set of sessions, told to `onChange` after it is stored and recorded, for
 * live views. Sessions are named by their digest, never by token.
 */
export type SessionChange =
  | { type: 'signed_in' | 'signed_out'; sessionId: string; userId: number }
  | { type: 'revoked'; sessionIds: string[]; reason: string }
  | { type: 'cleaned_up'; count: number };

export interface SessionPolicy {
  idleTimeoutMs: number;
  absoluteLifetimeMs: number;
  touchIntervalMs: number;
  retentionMs: number;
}

export interface Authenticated {
  session: SessionRecord;
  user: UserRow;
  /** True when this request slid the idle deadline (the cookie should be re-sent). */
  touched: boolean;
}

/** What became of one id in a revocation. */
export type RevokeStatus =
  | 'revoked'
  | 'already_ended'
  | 'not_found'
  | 'invalid'
  | 'kept_own'
  | 'failed';

export interface RevokeResult {
  id: string;
  status: RevokeStatus;
  reason?: string;
}

export interface BulkRevokeReport {
  results: RevokeResult[];
  counts: Record<RevokeStatus, number>;
}

export interface RevokeOptions {
  actorId: number | null;
  /** The acting person's own session, left alone unless `includeOwn`. */
  ownSessionId?: string;
  includeOwn?: boolean;
  /** Why the sessions end: revoked, user_disabled, password_changed, role_changed… */
  reason?: string;
  /**
   * Settles once the caller's answer is sent (an HTTP response): history rows still to write
   * wait for it, so the request does not share the database with them. @default write at once
   */
  answered?: PromiseLike<unknown>;
}

const EMPTY_COUNTS: Record<RevokeStatus, number> = {
  revoked: 0,
  already_ended: 0,
  not_found: 0,
  invalid: 0,
  kept_own: 0,
  failed: 0,
};

// Due sessions per cleanup call (the Redis store bounds its script to 50), and calls in flight
// at once on Redis (atomic scripts, each taking different sessions); the SQL stores take one
// batch at a time (SQLite has one writer, and PostgreSQL's would queue on the same rows).
const CLEANUP_CHUNK = 100;
const CLEANUP_WINDOW = 4;

/** A session that was still stored but had expired: removed, yet nothing live was ended. */
const expiredResult = (id: string): RevokeResult => ({
  id,
  status: 'already_ended',
  reason: 'expired',
});

// Users whose unanswered revocation ids are kept for their next revocation (see Unanswered).
const UNANSWERED_USERS = 1_000;

/**
 * Ids a revocation of a user sent to the store and never heard back about, by user. The store's
 * take removes them from the user's index with the sessions, so a retry, which lists the index,
 * would not find them again, and their sessions would keep no end in history: the next
 * revocation of the user settles them as a bulk revoke's retry does (#settleMissing).
 *
 * LIMITATION: kept in this process's memory, for the last 1,000 such users: a restart, or a
 * retry on another instance, forgets them (their sessions are ended all the same).
 */
class Unanswered {
  readonly #byUser = new Map<number, Set<string>>();

  add(userId: number, ids: readonly string[]): void {
    const kept = this.#byUser.get(userId) ?? new Set<string>();
    for (const id of ids) kept.add(id);
    // Newest last, so the oldest user goes first past the bound.
    this.#byUser.delete(userId);
    this.#byUser.set(userId, kept);
    for (const oldest of this.#byUser.keys()) {
      if (this.#byUser.size <= UNANSWERED_USERS) break;
      this.#byUser.delete(oldest);
    }
  }

  take(userId: number): string[] {
    const kept = this.#byUser.get(userId);
    this.#byUser.delete(userId);
    return kept ? [...kept] : [];
  }
}

export class SessionService {
  readonly #unanswered = new Unanswered();
  readonly #store: SessionStore;
  readonly #users: UserRepo;
  readonly #events: SessionEvents;
  readonly #policy: SessionPolicy;
  readonly #clock: () => number;
  readonly #onChange: (change: SessionChange) => void;
  readonly #policies: PolicySource | undefined;
  readonly #createWindowMs: number | undefined;
  readonly #takeWindowMs: number | undefined;
  readonly #undo: ((id: string, until: number) => void) | undefined;

  constructor(deps: {
    store: SessionStore;
    users: UserRepo;
    events: SessionEvents;
    policy: SessionPolicy;
    clock: () => number;
    /** Told of every change after it is stored; must not throw (live updates). */
    onChange?: (change: SessionChange) => void;
    /** The console's policy (sessions/policy.ts); without it, `policy` with no role limits. */
    policies?: PolicySource;
    /**
     * How long after it is sent a sign-in's create may still be written, in milliseconds; the
     * store timeout, so that a create reaching a resumed store after the sign-in was answered
     * 503 writes nothing. @default unbounded
     */
    createWindowMs?: number;
    /**
     * The same for one step of a cleanup: the store's bound on a bulk call, so that a step
     * reaching a resumed store after the cleanup gave up takes nothing. @default unbounded
     */
    takeWindowMs?: number;
    /**
     * Told of a session that may have been stored for a sign-in that failed, to delete once
     * the store answers (resilience/pending-deletes.ts).
     */
    undo?: (id: string, until: number) => void;
  }) {
    this.#store = deps.store;
    this.#users = deps.users;
    this.#events = deps.events;
    this.#policy = deps.policy;
    this.#clock = deps.clock;
    this.#onChange = deps.onChange ?? (() => {});
    this.#policies = deps.policies;
    this.#createWindowMs = deps.createWindowMs;
    this.#takeWindowMs = deps.takeWindowMs;
    this.#undo = deps.undo;
  }

  get store(): SessionStore {
    return this.#store;
  }

  get policy(): SessionPolicy {
    return this.#policy;
  }

  #currentPolicy(): Promise<LivePolicy> {
    return this.#policies ? this.#policies.current() : Promise.resolve(staticPolicy(this.#policy));
  }

  /**
   * Starts a new session for a user who has proven who they are. The token is always
   * new, whatever cookie the client sent, so a planted token never becomes a session.
   */
  async signIn(
    user: UserRow,
    client: { ip: string; userAgent: string },
  ): Promise<{ token: string; session: SessionRecord }> {
    const now = this.#clock();
    const policy = await this.#currentPolicy();
    await admitSignIn(this.#store, user, policy, now);
    const token = newToken();
    const session: SessionRecord = {
      id: sessionIdOf(token),
      userId: user.id,
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: now + policy.idleTimeoutMs,
      absoluteExpiresAt: now + policy.absoluteLifetimeMs,
      ip: client.ip,
      userAgent: client.userAgent.slice(0, 512),
    };

    const window = this.#createWindowMs;
    try {
      await this.#store.create(session, {
        notAfter: window === undefined ? undefined : this.#clock() + window,
      });
    } catch (err) {
      // A timed-out create may still land (or have landed just before the store died).
      this.#undo?.(session.id, session.absoluteExpiresAt);
      throw err;
    }

    try {
      const evicted = await settleSessionLimit(
        { store: this.#store, events: this.#events },
        user,
        session,
        policy,
        now,
      );
      if (evicted.length > 0) {
        this.#onChange({ type: 'revoked', sessionIds: evicted, reason: 'evicted_by_limit' });
      }
      await this.#users.recordLogin(user.id, now);
      await this.#events.record([session], { kind: 'signed_in' }, now);
    } catch (err) {
      // The sign-in fails, so its session must not stay behind: nobody was given its token.
      await this.#store.delete(session.id).catch(() => {
        this.#undo?.(session.id, session.absoluteExpiresAt);
      });
      throw err;
    }
    this.#onChange({ type: 'signed_in', sessionId: session.id, userId: user.id });
    return { token, session };
  }

  /**
   * The session and user a cookie token stands for, or null. Fails closed: a store
   * error propagates, and nothing counts as signed in without the store's word.
   */
  async authenticate(token: string | undefined): Promise<Authenticated | null> {
    if (!token || !isWellFormedToken(token)) return null;
    // Always the store's word here, not memory: the routes that call this go on to other store
    // calls, and a validation that fails fast is what opens the breaker before those wait.
    const id = sessionIdOf(token);
    const now = this.#clock();

    // The users' change counter travels with the session read (one round trip on Redis), so
    // the user row may come from memory yet a disable or role change shows on the next request.
    // Without an answer from it the row is read from the table, as without a counter.
    const [stored, userVersion] = await Promise.all([
      this.#store.get(id),
      this.#users.validationVersion().catch(() => null),
    ]);
    if (!stored || statusOf(stored, now) === 'expired') return null;
    // The policy in force may have been shortened since the deadlines were stored.
    const policy = await this.#currentPolicy();
    const session = boundedByPolicy(stored, policy);
    if (statusOf(session, now) === 'expired') {
      await expireByPolicy({ store: this.#store, events: this.#events }, stored, session, now);
      return null;
    }

    const user = await this.#users.findForSession(session.userId, userVersion);
    if (user?.status !== 'approved') return null;

    if (now - session.lastSeenAt < this.#policy.touchIntervalMs) {
      return { session, user, touched: false };
    }
    const idleExpiresAt = Math.min(now + policy.idleTimeoutMs, session.absoluteExpiresAt);
    const stillThere = await this.#store.touch(session.id, now, idleExpiresAt);
    if (!stillThere) return null;
    return { session: { ...session, lastSeenAt: now, idleExpiresAt }, user, touched: true };
  }

  /**
   * authenticate's answer without waiting, when everything it needs is known in memory (a
   * store that reports changes, the users' counter, the user row, the policy): undefined when
   * something must be read or written, and then authenticate is the one to ask. For answers
   * that need nothing else from the store (`GET /api/auth/session`).
   */
  authenticateFromMemory(token: string | undefined): Authenticated | null | undefined {
    const peek = this.#store.peek;
    if (!peek) return undefined;
    if (!token || !isWellFormedToken(token)) return null;
    const stored = peek(sessionIdOf(token));
    if (stored === undefined) return undefined;
    const version = this.#users.peekValidationVersion();
    const policy = this.#policies ? this.#policies.known?.() : staticPolicy(this.#policy);
    if (version === undefined || version === null || policy === undefined) return undefined;
    const now = this.#clock();
    const session = boundedByPolicy(stored, policy);
    // Expiry by policy writes the shorter deadline back and records it: the full path's work.
    if (statusOf(session, now) === 'expired') return undefined;
    if (now - session.lastSeenAt >= this.#policy.touchIntervalMs) return undefined;
    const user = this.#users.knownForSession(session.userId, version);
    if (user === undefined) return undefined;
    if (user?.status !== 'approved') return null;
    return { session, user, touched: false };
  }

  /** Ends the session a token stands for; says whether there was one. */
  async signOut(token: string | undefined): Promise<boolean> {
    if (!token || !isWellFormedToken(token)) return false;
    const id = sessionIdOf(token);
    const session = await this.#store.get(id);
    if (!session) return false;

    const outcome = await this.#store.delete(id);
    if (outcome === 'deleted') {
      await this.#events.record(
        [session],
        { kind: 'signed_out', reason: 'signed_out' },
        this.#clock(),
      );
      this.#onChange({ type: 'signed_out', sessionId: id, userId: session.userId });
    }
    return outcome === 'deleted';
  }

  /** Revokes sessions by id, reporting exactly what became of each. */
  async revokeIds(ids: readonly string[], opts: RevokeOptions): Promise<BulkRevokeReport> {
    return this.#revoke(ids, opts, null);
  }

  /**
   * Revokes every session of one user (the acting person's own excepted by default). The ids
   * come from the user's own index without reading the sessions, and each take checks the
   * owner in the store's own delete step, so an id misfiled under this user never ends another
   * user's session. Ids the store no longer holds for this user (gone, or someone else's) are
   * left out of the report, as they were never this user's live sessions.
   */
  async revokeUser(userId: number, opts: RevokeOptions): Promise<BulkRevokeReport> {
    const ids = await this.#store.userSessionIds(userId);
    const listed = new Set(ids);
    const earlier = this.#unanswered.take(userId).filter((id) => !listed.has(id));
    const report = await this.#revoke(ids, opts, userId);
    if (earlier.length === 0) return report;
    // Taken by an earlier run whose answer was lost: revoked now, once, if history shows them
    // live; the ones it shows ended were reported before.
    const settled = new Map<string, RevokeResult>();
    try {
      await this.#settleMissing(earlier, opts, this.#clock(), settled);
    } catch {
      this.#unanswered.add(userId, earlier);
      return report;
    }
    const results = [
      ...report.results,
      ...[...settled.values()].filter((r) => r.status === 'revoked'),
    ];
    return { results, counts: countStatuses(results) };
  }

  /** revokeIds, or with `owner` revokeUser's takes (see there). */
  async #revoke(
    ids: readonly string[],
    opts: RevokeOptions,
    owner: number | null,
  ): Promise<BulkRevokeReport> {
    const results = new Map<string, RevokeResult>();
    const wanted: string[] = [];
    for (const id of ids) {
      if (results.has(id)) continue;
      if (!isSessionId(id)) {
        results.set(id, { id, status: 'invalid', reason: 'not a session id' });
      } else if (id === opts.ownSessionId && !opts.includeOwn) {
        results.set(id, { id, status: 'kept_own', reason: 'your own session' });
      } else {
        wanted.push(id);
      }
    }

    const chunks: string[][] = [];
    const size = this.#store.bulkChunk;
    for (let i = 0; i < wanted.length; i += size) chunks.push(wanted.slice(i, i + size));
    const history = this.#events.writer({ batched: true });
    const setAside: SetAsideEnds[] = [];
    let next = 0;
    let stopped: string | undefined;
    // Takes chunks in order until none is left or one fails; after a failure no new chunk is
    // sent, but chunks already in flight report what the store confirmed of them.
    const worker = async (once = false) => {
      while (stopped === undefined && next < chunks.length) {
        const failure = history.failure;
        if (failure) {
          stopped = reasonOf(failure.error);
          break;
        }
        const chunk = chunks[next++]!;
        try {
          await this.#revokeChunk(chunk, opts, results, history, owner, setAside);
        } catch (err) {
          stopped ??= reasonOf(err);
          if (owner !== null) this.#unanswered.add(owner, chunk);
        }
        if (once) break;
      }
    };
    // The first chunk goes alone, so that a store failing from the start costs one chunk; then
    // the store's bulkWindow at once (node-redis pipelines them: 1,000 sessions take about 6
    // round trips on Redis instead of 20).
    await worker(true);
    await Promise.all(Array.from({ length: this.#store.bulkWindow }, () => worker()));
    await this.#store.fence?.();
    // The sessions are ended: the answer goes now, their history rows right after it (most of
    // the time of a revocation of 1,000 was writing them; see SessionEvents.follow), with what
    // the sessions set aside were.
    const collect =
      setAside.length > 0 && owner !== null
        ? () => this.#historyOfSetAside(setAside, owner, history)
        : undefined;
    this.#events.follow(history, opts.answered, collect);
    if (stopped !== undefined) {
      // The store failed part-way: every id without an outcome is reported failed, so the
      // caller can retry exactly those; ids already revoked stay revoked.
      for (const id of wanted) {
        if (!results.has(id)) results.set(id, { id, status: 'failed', reason: stopped });
      }
    }

    const ordered = [...new Set(ids)].flatMap((id) => results.get(id) ?? []);
    return { results: ordered, counts: countStatuses(ordered) };
  }

  /** Revokes every session a query matches. */
  async revokeMatching(
    query: Omit<SessionQuery, 'offset' | 'limit'>,
    opts: RevokeOptions,
  ): Promise<BulkRevokeReport> {
    const ids = await this.#store.listIds(query);
    return this.revokeIds(ids, opts);
  }

  /** How many sessions a query matches (for the confirmation of revoke-matching). */
  async countMatching(query: Omit<SessionQuery, 'offset' | 'limit'>): Promise<number> {
    const page = await this.#store.list({ ...query, offset: 0, limit: 0 });
    return page.total;
  }

  /** Removes session entries that cannot be read (see SessionStore.removeUnreadable). */
  async cleanupUnreadable(): Promise<number> {
    return this.#store.removeUnreadable();
  }

  /**
   * Removes sessions whose deadline passed before `before` (now, for the console's
   * cleanup; now minus retention, for the scheduled one). Safe to run again.
   */
  async cleanupExpired(before: number, actorId: number | null): Promise<number> {
    const history = this.#events.writer();
    const idle = { kind: 'cleaned_up', reason: 'idle', actorId } as const;
    const absolute = { kind: 'cleaned_up', reason: 'absolute', actorId } as const;
    let removed = 0;
    let done = false;
    const record = (writer: HistoryWriter, gone: readonly SessionRecord[]) => {
      const now = this.#clock();
      writer.add(
        gone.filter((s) => s.idleExpiresAt < s.absoluteExpiresAt),
        idle,
        now,
      );
      writer.add(
        gone.filter((s) => s.idleExpiresAt >= s.absoluteExpiresAt),
        absolute,
        now,
      );
      if (gone.length > 0) this.#onChange({ type: 'cleaned_up', count: gone.length });
    };
    // Each call removes the batch it returns, so concurrent calls never take a session twice;
    // history rows follow in bulk (see HistoryWriter) while the next batches are taken.
    const worker = async () => {
      while (!done && !history.failure) {
        // Bounded as the guard bounds the call: a step still in Redis's socket when the caller
        // gives up (Redis paused) takes nothing when it runs. One Redis ran but had not yet
        // answered when it paused is recorded when the answer comes, on its own.
        const bound = this.#takeWindowMs;
        const notAfter = bound === undefined ? undefined : this.#clock() + bound;
        let abandoned = false;
        const taken = (late: ExpiredBatch) => {
          if (!abandoned) return;
          const writer = this.#events.writer();
          record(writer, late.sessions);
          this.#events.follow(writer);
        };
        const batch = await this.#store
          .takeExpired(before, CLEANUP_CHUNK, { notAfter, taken })
          .catch((err) => {
            abandoned = true;
            done = true;
            throw err;
          });
        if (batch.done) done = true;
        record(history, batch.sessions);
        removed += batch.sessions.length;
      }
    };
    const window = this.#store.kind === 'redis' ? CLEANUP_WINDOW : 1;
    const settled = await Promise.allSettled(Array.from({ length: window }, worker));
    await history.flush();
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      if (failed.reason instanceof StoreUnavailableError) failed.reason.counts = { removed };
      throw failed.reason;
    }
    return removed;
  }

  async #revokeChunk(
    chunk: readonly string[],
    opts: RevokeOptions,
    results: Map<string, RevokeResult>,
    history: HistoryWriter,
    owner: number | null,
    setAside: SetAsideEnds[],
  ): Promise<void> {
    // One round trip deletes the chunk and answers what each session was, for its history, or
    // (a user's sessions on Redis) sets them aside to be read after the answer.
    const taken =
      owner === null
        ? await this.#store.takeMany(chunk)
        : await this.#store.takeOfUser(owner, chunk);
    const now = this.#clock();
    const revoked: SessionRecord[] = [];
    const removedExpired: SessionRecord[] = [];
    const asideRevoked: string[] = [];
    const asideExpired: string[] = [];
    // Ids whose outcome the history decides (see #settleMissing).
    const missing: string[] = [];
    for (const id of chunk) {
      const outcome = taken.get(id);
      if (outcome === undefined) {
        // The store stopped before reaching this id: not revoked, safe to send again.
        results.set(id, { id, status: 'failed', reason: 'the session store stopped answering' });
      } else if (outcome === 'not_found') {
        // Of a user's ids, one not found is not theirs any more: no result (see revokeUser).
        if (owner === null) missing.push(id);
      } else if (outcome === 'unreadable') {
        // Removed, but what it was cannot be read: a live session whose entry was damaged is
        // ended now, and its end recorded, or a later revocation would find it gone with no end
        // and report it revoked a second time.
        missing.push(id);
      } else if ('setAside' in outcome) {
        // Ended unread (Redis, a user's sessions): its deadline came with it.
        const live = outcome.expiresAt > now;
        (live ? asideRevoked : asideExpired).push(id);
        results.set(id, live ? { id, status: 'revoked' } : expiredResult(id));
      } else if (expiresAt(outcome) > now) {
        revoked.push(outcome);
        results.set(id, { id, status: 'revoked' });
      } else {
        // It was still stored but had expired: removed, yet nothing live was ended.
        removedExpired.push(outcome);
        results.set(id, expiredResult(id));
      }
    }

    const reason = opts.reason ?? 'revoked';
    const endedLive: SessionEvent = { kind: 'revoked', reason, actorId: opts.actorId };
    const endedExpired: SessionEvent = {
      kind: 'cleaned_up',
      reason: 'expired',
      actorId: opts.actorId,
    };
    history.add(revoked, endedLive, now);
    history.add(removedExpired, endedExpired, now);
    if (asideRevoked.length > 0) setAside.push({ ids: asideRevoked, event: endedLive, at: now });
    if (asideExpired.length > 0) setAside.push({ ids: asideExpired, event: endedExpired, at: now });
    const revokedIds = [...revoked.map((s) => s.id), ...asideRevoked];
    if (revokedIds.length > 0) this.#onChange({ type: 'revoked', sessionIds: revokedIds, reason });
    const expiredCount = removedExpired.length + asideExpired.length;
    if (expiredCount > 0) this.#onChange({ type: 'cleaned_up', count: expiredCount });
    if (missing.length > 0) await this.#settleMissing(missing, opts, now, results);
  }

  /**
   * The history rows of sessions a take set aside, once the revocation has answered: each as it
   * was when read back. One the store cannot give back (Redis away, or what it set aside gone
   * or damaged) takes its address and browser from its sign-in row; with none, its row names the
   * session, its user and who ended it, without them, and the events are told how many.
   */
  async #historyOfSetAside(
    setAside: readonly SetAsideEnds[],
    owner: number,
    history: HistoryWriter,
  ): Promise<void> {
    const ids = setAside.flatMap((s) => s.ids);
    let found = new Map<string, Taken>();
    let failure: unknown;
    try {
      found = (await this.#store.collectSetAside?.(ids)) ?? found;
    } catch (error) {
      failure = error;
    }
    const unread = ids.filter((id) => typeof found.get(id) !== 'object');
    const signedIn = new Map<string, { ip: string; userAgent: string }>();
    if (unread.length > 0) {
      try {
        for (const row of await this.#events.signInsOf(unread)) {
          signedIn.set(row.session_id, { ip: row.ip ?? '', userAgent: row.user_agent ?? '' });
        }
      } catch {
        // The database is away too: the INSERT that follows will say so (history_lost).
      }
    }
    let unknown = 0;
    for (const { ids: group, event, at } of setAside) {
      const sessions = group.map((id) => {
        const session = found.get(id);
        if (typeof session === 'object') return session;
        const signIn = signedIn.get(id);
        if (!signIn) unknown++;
        return { id, userId: owner, ip: signIn?.ip ?? '', userAgent: signIn?.userAgent ?? '' };
      });
      history.add(sessions, event, at);
    }
    if (unknown > 0) {
      this.#events.incomplete(
        failure ?? new Error('the ended sessions could not be read back'),
        unknown,
      );
    }
  }

  /**
   * Ids the store no longer holds, or just removed unreadable: `not_found` when history never
   * saw them, `already_ended` when it records their end. A session whose history shows a
   * sign-in and no end, recent enough that no TTL can have removed it, was ended by a delete
   * whose answer never came back (an earlier run of this revoke, cut off by a store fault,
   * reported it failed) or was just removed unreadable: it is reported revoked now, once, and
   * its history row written now.
   *
   * LIMITATION: two revocations of the same id at once can both report it revoked and write two
   * rows: the one that deleted it writes its row after its later chunks and its answer
   * (SessionEvents.follow), and the other, finding it gone with no end recorded yet, takes it for
   * a lost answer. Within one process the read waits for rows already handed over, so this needs
   * the two to overlap, or to run in two processes; a per-id end marker in the store would close
   * it.
   */
  async #settleMissing(
    missing: readonly string[],
    opts: RevokeOptions,
    now: number,
    results: Map<string, RevokeResult>,
  ): Promise<void> {
    // A sign-in older than this ended long since, whatever its rows say: its end is not read.
    const horizon = now - this.#policy.absoluteLifetimeMs - this.#policy.retentionMs;
    const rows = await this.#events.ofSessions(missing, { since: horizon });
    const ended = new Set(rows.filter((r) => r.kind !== 'signed_in').map((r) => r.session_id));
    const unconfirmed = new Map<
      string,
      Pick<SessionRecord, 'id' | 'userId' | 'ip' | 'userAgent'>
    >();
    for (const r of rows) {
      if (r.kind !== 'signed_in' || ended.has(r.session_id) || r.at <= horizon) continue;
      unconfirmed.set(r.session_id, {
        id: r.session_id,
        userId: r.user_id,
        ip: r.ip ?? '',
        userAgent: r.user_agent ?? '',
      });
    }

    const reason = opts.reason ?? 'revoked';
    const late = [...unconfirmed.values()];
    await this.#events.record(late, { kind: 'revoked', reason, actorId: opts.actorId }, now);
    if (late.length > 0) {
      this.#onChange({ type: 'revoked', sessionIds: late.map((s) => s.id), reason });
    }
    const known = new Set(rows.map((r) => r.session_id));
    for (const id of missing) {
      if (unconfirmed.has(id)) results.set(id, { id, status: 'revoked' });
      else if (known.has(id)) results.set(id, { id, status: 'already_ended' });
      else results.set(id, { id, status: 'not_found' });
    }
  }
}

// Ids a revocation's audit entry lists of each outcome; past this it counts the rest. A
// revoke-matching of 100,000 wrote 6.7 MB into one entry (and into the audit page), and every
// revoked session has a history row of its own naming who ended it.
export const AUDIT_IDS_LISTED = 100;

/**
 * What a revocation's audit entry holds: the counts, and the revoked and failed ids, at most
 * AUDIT_IDS_LISTED of each with `revokedNotListed` / `failedNotListed` counting the others.
 */
export function revocationDetails(report: BulkRevokeReport): Record<string, unknown> {
  const details: Record<string, unknown> = { counts: report.counts };
  for (const status of ['revoked', 'failed'] as const) {
    const ids = report.results.filter((r) => r.status === status).map((r) => r.id);
    details[status] = ids.slice(0, AUDIT_IDS_LISTED);
    if (ids.length > AUDIT_IDS_LISTED)
      details[`${status}NotListed`] = ids.length - AUDIT_IDS_LISTED;
  }
  return details;
}

/**
 * A revocation's audit outcome: failure when no id was dealt with (each failed, or was no session
 * id at all), partial when some failed, else success. Already ended, not found and kept ids are
 * dealt with; an id that is no session id beside others is not a failure of the revocation.
 */
export function revocationOutcome(
  counts: Record<RevokeStatus, number>,
): 'success' | 'partial' | 'failure' {
  const done = counts.revoked + counts.already_ended + counts.not_found + counts.kept_own;
  if (done === 0 && counts.failed + counts.invalid > 0) return 'failure';
  return counts.failed > 0 ? 'partial' : 'success';
}

export function countStatuses(results: readonly RevokeResult[]): Record<RevokeStatus, number> {
  const counts = { ...EMPTY_COUNTS };
  for (const r of results) counts[r.status]++;
  return counts;
}
