/**
 * @module sessions/policy
 * The session policy a superuser sets on the console: idle timeout, absolute lifetime and,
 * for each role, a limit on concurrent sessions with what happens at the limit.
 *
 * **Where it lives.** Defaults come from the config (IDLE_TIMEOUT, ABSOLUTE_LIFETIME; no role
 * limits). Overrides are one JSON row of the `settings` table (key `session_policy`), carrying a
 * version that every change increments, so every instance reads the same policy.
 *
 * **Reading it per request.** Each instance keeps the policy in memory and re-reads the row
 * (one primary-key lookup) when its copy is older than {@link POLICY_REFRESH_MS}; concurrent
 * requests share one read. The instance that saves a change uses it at once; the others within
 * POLICY_REFRESH_MS plus one request.
 *
 * **Live sessions.** A session keeps the deadlines it got at sign-in, and each request judges
 * it by the earlier of those and the current policy's: idle = last seen + idle timeout,
 * absolute = sign-in + absolute lifetime ({@link boundedByPolicy}). So a shorter idle timeout
 * or absolute lifetime ends older sessions on their next request (the shortened deadline is
 * written back, so the console lists them as expired, and a history row says why), and a
 * longer idle timeout applies from the next touch. A longer absolute lifetime applies to
 * sessions signed in after the change only: the deadline fixed at sign-in bounds the cookie
 * and the store's TTL, and extending a session nobody re-authenticated is not a loosening
 * Warden does silently.
 *
 * LIMITATION: a session that makes no request after a shortening still lists as active until
 * its stored deadline passes (nothing walks the store to rewrite deadlines); it can no longer
 * authenticate, which is what counts.
 */
import type { Kysely } from 'kysely';
import { type DB, ROLES, type Role } from '../db/schema.js';
import { WardenError } from '../errors.js';
import type { SessionEvents } from '../events/session-events.js';
import { expiresAt, type SessionRecord, type SessionStore, statusOf } from './session-store.js';

export const POLICY_SETTING_KEY = 'session_policy';

/** Longest an instance serves its in-memory policy before re-reading the row, in milliseconds. */
export const POLICY_REFRESH_MS = 2_000;

/** Sane bounds on what the console accepts, in milliseconds and sessions. */
export const POLICY_BOUNDS = {
  minIdleMs: 60_000,
  maxIdleMs: 30 * 86_400_000,
  minAbsoluteMs: 5 * 60_000,
  maxAbsoluteMs: 366 * 86_400_000,
  maxSessions: 1_000,
} as const;

export const LIMIT_ACTIONS = ['refuse', 'evict_oldest'] as const;
export type LimitAction = (typeof LIMIT_ACTIONS)[number];

export interface RoleLimit {
  /** Most concurrent active sessions; null for no limit. */
  maxSessions: number | null;
  /** At the limit: refuse the new sign-in, or end the oldest session to make room. */
  onLimit: LimitAction;
}

/** What a superuser set; a null duration follows the config. */
export interface PolicyOverrides {
  idleTimeoutMs: number | null;
  absoluteLifetimeMs: number | null;
  roleLimits: Record<Role, RoleLimit>;
}

/** The policy in force: overrides resolved against the config. */
export interface LivePolicy {
  idleTimeoutMs: number;
  absoluteLifetimeMs: number;
  roleLimits: Record<Role, RoleLimit>;
  overrides: PolicyOverrides;
  /** 0 until the first change; +1 with every change. */
  version: number;
  updatedAt: number | null;
  updatedBy: string | null;
}

/** The config values the policy falls back to and is bounded by. */
export interface PolicyDefaults {
  idleTimeoutMs: number;
  absoluteLifetimeMs: number;
  touchIntervalMs: number;
}

/** Where SessionService reads the policy in force. */
export interface PolicySource {
  current(): Promise<LivePolicy>;
  /** The policy in force without waiting, when it is fresh in memory; else undefined. */
  known?(): LivePolicy | undefined;
}

interface StoredPolicy extends PolicyOverrides {
  version: number;
  updatedAt: number;
  updatedBy: string | null;
}

export function noOverrides(): PolicyOverrides {
  const roleLimits = {} as Record<Role, RoleLimit>;
  for (const role of ROLES) roleLimits[role] = { maxSessions: null, onLimit: 'refuse' };
  return { idleTimeoutMs: null, absoluteLifetimeMs: null, roleLimits };
}

/** Overrides resolved against the config defaults. */
export function resolvePolicy(
  defaults: PolicyDefaults,
  overrides: PolicyOverrides,
  meta: { version: number; updatedAt: number | null; updatedBy: string | null } = {
    version: 0,
    updatedAt: null,
    updatedBy: null,
  },
): LivePolicy {
  return {
    idleTimeoutMs: overrides.idleTimeoutMs ?? defaults.idleTimeoutMs,
    absoluteLifetimeMs: overrides.absoluteLifetimeMs ?? defaults.absoluteLifetimeMs,
    roleLimits: overrides.roleLimits,
    overrides,
    ...meta,
  };
}

/**
 * Checks overrides against the bounds and each other; throws a 400 naming the first bad field
 * (`idle_timeout`, `absolute_lifetime`, `max_sessions_<role>`).
 */
export function validateOverrides(defaults: PolicyDefaults, o: PolicyOverrides): void {
  const bad = (field: string, problem: string) =>
    new WardenError('WARDEN_VALIDATION', [`${field} ${problem}`], { field });
  const b = POLICY_BOUNDS;
  const minIdle = Math.max(b.minIdleMs, defaults.touchIntervalMs + 1);

  if (o.idleTimeoutMs !== null) {
    if (!Number.isInteger(o.idleTimeoutMs)) throw bad('idle_timeout', 'must be whole milliseconds');
    if (o.idleTimeoutMs < minIdle) {
      throw bad('idle_timeout', `must be longer than ${describeMs(minIdle - 1)} (TOUCH_INTERVAL)`);
    }
    if (o.idleTimeoutMs > b.maxIdleMs) throw bad('idle_timeout', 'must be at most 30 days');
  }
  if (o.absoluteLifetimeMs !== null) {
    if (!Number.isInteger(o.absoluteLifetimeMs)) {
      throw bad('absolute_lifetime', 'must be whole milliseconds');
    }
    if (o.absoluteLifetimeMs < b.minAbsoluteMs) {
      throw bad('absolute_lifetime', 'must be at least 5 minutes');
    }
    if (o.absoluteLifetimeMs > b.maxAbsoluteMs) {
      throw bad('absolute_lifetime', 'must be at most 366 days');
    }
  }
  const live = resolvePolicy(defaults, o);
  if (live.idleTimeoutMs > live.absoluteLifetimeMs) {
    const idle = describeMs(live.idleTimeoutMs);
    const absolute = describeMs(live.absoluteLifetimeMs);
    // Named after the value that was set here: the other one may be the config's.
    throw o.idleTimeoutMs !== null
      ? bad('idle_timeout', `(${idle}) must not be longer than the absolute lifetime (${absolute})`)
      : bad(
          'absolute_lifetime',
          `(${absolute}) must not be shorter than the idle timeout (${idle})`,
        );
  }
  for (const role of ROLES) {
    const limit = o.roleLimits[role];
    const max = limit?.maxSessions;
    if (max !== null && (!Number.isInteger(max) || max < 1 || max > b.maxSessions)) {
      throw bad(
        `max_sessions_${role}`,
        `must be empty or a whole number from 1 to ${b.maxSessions}`,
      );
    }
    if (!LIMIT_ACTIONS.includes(limit?.onLimit)) {
      throw bad(`on_limit_${role}`, `must be one of ${LIMIT_ACTIONS.join(', ')}`);
    }
  }
}

// Each unit as the page shows it, in a sentence, and in the config's notation.
const UNITS: [size: number, short: string, word: string, notation: string][] = [
  [86_400_000, 'd', 'day', 'd'],
  [3_600_000, 'h', 'hour', 'h'],
  [60_000, 'min', 'minute', 'm'],
  [1_000, 's', 'second', 's'],
];

/** `90 s`, `15 min`, `12 h`, `7 d`: the largest unit that divides evenly. */
export function describeMs(ms: number): string {
  for (const [size, label] of UNITS) if (ms % size === 0) return `${ms / size} ${label}`;
  return `${ms} ms`;
}

/** `90 seconds`, `15 minutes`, `1 hour`: describeMs for a sentence. */
export function spellMs(ms: number): string {
  for (const [size, , word] of UNITS) {
    if (ms % size === 0) return `${ms / size} ${word}${ms === size ? '' : 's'}`;
  }
  return `${ms} milliseconds`;
}

/** `7d`, `12h`, `15m`, `90s`: the config's own notation, for form fields. */
export function formatDuration(ms: number): string {
  for (const [size, , , notation] of UNITS) if (ms % size === 0) return `${ms / size}${notation}`;
  return `${ms}ms`;
}

/**
 * The policy in force, kept per instance and re-read from the settings row at most every
 * `refreshMs`. Construct one per app.
 */
export class SessionPolicies implements PolicySource {
  readonly #db: Kysely<DB>;
  readonly #defaults: PolicyDefaults;
  readonly #refreshMs: number;
  readonly #monotonic: () => number;
  #cached: { policy: LivePolicy; readAt: number } | null = null;
  #reading: Promise<LivePolicy> | null = null;

  constructor(
    db: Kysely<DB>,
    defaults: PolicyDefaults,
    opts: { refreshMs?: number; monotonic?: () => number } = {},
  ) {
    this.#db = db;
    this.#defaults = {
      idleTimeoutMs: defaults.idleTimeoutMs,
      absoluteLifetimeMs: defaults.absoluteLifetimeMs,
      touchIntervalMs: defaults.touchIntervalMs,
    };
    this.#refreshMs = opts.refreshMs ?? POLICY_REFRESH_MS;
    this.#monotonic = opts.monotonic ?? (() => performance.now());
  }

  get defaults(): PolicyDefaults {
    return this.#defaults;
  }

  /** The policy in force; a database read at most every refreshMs. */
  async current(): Promise<LivePolicy> {
    const known = this.known();
    if (known) return known;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  known(): LivePolicy | undefined {
    const cached = this.#cached;
    if (cached && this.#monotonic() - cached.readAt < this.#refreshMs) return cached.policy;
    return undefined;
  }

  /**
   * Saves new overrides and returns the policy before and after. `expectVersion`, when given,
   * must be the version in force (a form shown before someone else's change is refused rather
   * than silently undoing it). A compare-and-set on the row, so two saves never both win.
   */
  async update(
    overrides: PolicyOverrides,
    by: { email: string | null; at: number; expectVersion?: number },
  ): Promise<{ from: LivePolicy; to: LivePolicy }> {
    validateOverrides(this.#defaults, overrides);
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = await this.#row();
      const from = this.#resolve(row?.value);
      if (by.expectVersion !== undefined && by.expectVersion !== from.version) {
        throw new WardenError(
          'WARDEN_VALIDATION',
          [
            `the policy changed since this form was shown (now version ${from.version}); review it and save again`,
          ],
          { field: 'version', current: from.version },
        );
      }
      const stored: StoredPolicy = {
        ...overrides,
        version: from.version + 1,
        updatedAt: by.at,
        updatedBy: by.email,
      };
      const value = JSON.stringify(stored);
      const written = row
        ? await this.#db
            .updateTable('settings')
            .set({ value })
            .where('key', '=', POLICY_SETTING_KEY)
            .where('value', '=', row.value)
            .executeTakeFirst()
            .then((r) => Number(r.numUpdatedRows) === 1)
        : await this.#db
            .insertInto('settings')
            .values({ key: POLICY_SETTING_KEY, value })
            .onConflict((oc) => oc.column('key').doNothing())
            .executeTakeFirst()
            .then((r) => Number(r.numInsertedOrUpdatedRows ?? 0) === 1);
      if (!written) continue;

      const to = this.#resolve(value);
      this.#cached = { policy: to, readAt: this.#monotonic() };
      return { from, to };
    }
    throw new WardenError(
      'WARDEN_VALIDATION',
      ['version: the policy is being changed; try again'],
      {
        field: 'version',
      },
    );
  }

  async #read(): Promise<LivePolicy> {
    try {
      const policy = this.#resolve((await this.#row())?.value);
      this.#cached = { policy, readAt: this.#monotonic() };
      return policy;
    } catch (err) {
      // The database is down: keep the last policy known rather than fail every request over
      // it (the user lookup beside it decides whether the request can go on).
      if (!this.#cached) throw err;
      this.#cached = { ...this.#cached, readAt: this.#monotonic() };
      return this.#cached.policy;
    }
  }

  #row() {
    return this.#db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', POLICY_SETTING_KEY)
      .executeTakeFirst();
  }

  /** The stored JSON resolved against the defaults; anything unreadable in it is ignored. */
  #resolve(raw: string | undefined): LivePolicy {
    if (raw === undefined) return resolvePolicy(this.#defaults, noOverrides());
    let stored: Partial<StoredPolicy>;
    try {
      stored = JSON.parse(raw) as Partial<StoredPolicy>;
    } catch {
      stored = {};
    }
    const overrides = noOverrides();
    const duration = (v: unknown) =>
      Number.isInteger(v) && (v as number) > 0 ? (v as number) : null;
    overrides.idleTimeoutMs = duration(stored.idleTimeoutMs);
    overrides.absoluteLifetimeMs = duration(stored.absoluteLifetimeMs);
    for (const role of ROLES) {
      const limit = stored.roleLimits?.[role];
      overrides.roleLimits[role] = {
        maxSessions: duration(limit?.maxSessions),
        onLimit: limit?.onLimit === 'evict_oldest' ? 'evict_oldest' : 'refuse',
      };
    }
    try {
      validateOverrides(this.#defaults, overrides);
    } catch {
      // A row written under other bounds (a config change since): the durations fall back.
      overrides.idleTimeoutMs = null;
      overrides.absoluteLifetimeMs = null;
    }
    return resolvePolicy(this.#defaults, overrides, {
      version: Number.isInteger(stored.version) ? (stored.version as number) : 0,
      updatedAt: typeof stored.updatedAt === 'number' ? stored.updatedAt : null,
      updatedBy: typeof stored.updatedBy === 'string' ? stored.updatedBy : null,
    });
  }
}

/** The config as a policy with no overrides (for services built without a policy store). */
export function staticPolicy(defaults: PolicyDefaults): LivePolicy {
  return resolvePolicy(defaults, noOverrides());
}

/**
 * A session with its deadlines cut to the current policy: never later than the stored ones,
 * earlier when the policy was shortened since sign-in or since the last touch.
 */
export function boundedByPolicy(
  s: SessionRecord,
  p: Pick<LivePolicy, 'idleTimeoutMs' | 'absoluteLifetimeMs'>,
): SessionRecord {
  const idleExpiresAt = Math.min(s.idleExpiresAt, s.lastSeenAt + p.idleTimeoutMs);
  const absoluteExpiresAt = Math.min(s.absoluteExpiresAt, s.createdAt + p.absoluteLifetimeMs);
  // The same record when nothing is shortened: validation's in-memory path keeps its identity.
  if (idleExpiresAt === s.idleExpiresAt && absoluteExpiresAt === s.absoluteExpiresAt) return s;
  return { ...s, idleExpiresAt, absoluteExpiresAt };
}

/**
 * Ends a session the current policy (not its stored deadlines) has expired: writes the earlier
 * deadline back, so listings and cleanup agree, and records why. Touch never creates, so this
 * cannot bring back a session a revocation removed meanwhile.
 */
export async function expireByPolicy(
  deps: { store: SessionStore; events: SessionEvents },
  stored: SessionRecord,
  bounded: SessionRecord,
  now: number,
): Promise<void> {
  const written = await deps.store.touch(stored.id, stored.lastSeenAt, expiresAt(bounded));
  if (!written) return;
  const reason = bounded.absoluteExpiresAt <= bounded.idleExpiresAt ? 'absolute' : 'idle';
  await deps.events.record([stored], { kind: 'expired', reason }, now);
}

function oldestFirst(a: SessionRecord, b: SessionRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A user's sessions that are active under the current policy, oldest first. */
async function liveSessions(
  store: SessionStore,
  userId: number,
  policy: LivePolicy,
  now: number,
): Promise<SessionRecord[]> {
  const all = await store.listByUser(userId);
  return all
    .filter((s) => statusOf(boundedByPolicy(s, policy), now) === 'active')
    .sort(oldestFirst);
}

function limitReached(max: number): WardenError {
  const sessions = max === 1 ? '1 active session' : `${max} active sessions`;
  return new WardenError('WARDEN_AUTH_SESSION_LIMIT', [sessions], { maxSessions: max });
}

/**
 * Before a sign-in: refuses at once when the role's limit says `refuse` and the user already
 * has that many active sessions (nothing is written).
 */
export async function admitSignIn(
  store: SessionStore,
  user: { id: number; role: Role },
  policy: LivePolicy,
  now: number,
): Promise<void> {
  const limit = policy.roleLimits[user.role];
  if (limit.maxSessions === null || limit.onLimit !== 'refuse') return;
  const live = await liveSessions(store, user.id, policy, now);
  if (live.length >= limit.maxSessions) throw limitReached(limit.maxSessions);
}

/**
 * After the new session is stored: brings the user back within the role's limit, and returns
 * the ids of the sessions it ended. `refuse`
 * keeps the oldest sessions, so when two sign-ins race past admitSignIn, the later one (by
 * creation time, then id) removes its own session and is refused; `evict_oldest` ends the
 * oldest sessions other than the new one (history reason `evicted_by_limit`), and racing
 * sign-ins evict the same ones, each recorded once.
 *
 * LIMITATION: racing sign-ins whose creation order disagrees with the order they were stored
 * in can both stay under `refuse`, one session over the limit; the next sign-in sees the excess.
 */
export async function settleSessionLimit(
  deps: { store: SessionStore; events: SessionEvents },
  user: { id: number; role: Role },
  created: SessionRecord,
  policy: LivePolicy,
  now: number,
): Promise<string[]> {
  const limit = policy.roleLimits[user.role];
  const max = limit.maxSessions;
  if (max === null) return [];
  const live = await liveSessions(deps.store, user.id, policy, now);
  if (live.length <= max) return [];

  if (limit.onLimit === 'refuse') {
    const rank = live.findIndex((s) => s.id === created.id);
    if (rank !== -1 && rank < max) return [];
    await deps.store.delete(created.id);
    throw limitReached(max);
  }

  const victims = live.filter((s) => s.id !== created.id).slice(0, live.length - max);
  const outcomes = await deps.store.deleteMany(victims.map((s) => s.id));
  const ended = victims.filter((s) => outcomes.get(s.id) === 'deleted');
  await deps.events.record(ended, { kind: 'revoked', reason: 'evicted_by_limit' }, now);
  return ended.map((s) => s.id);
}
