/**
 * @module sessions/redis-store
 * Sessions in Redis: one hash per session and sorted-set indexes beside it, so listing,
 * counting and filtering read the indexes and never walk the keyspace (no KEYS, no SCAN).
 *
 * Key layout (P is the prefix, `warden:` by default):
 *
 *   P s:<id>                 hash: user, created, seen, idle, absolute, ip, ua
 *   P {u<userId>}:sessions   zset: that user's session ids, score -createdAt
 *   P sessions:by-created    zset: every session id, score -createdAt
 *   P sessions:by-expiry     zset: every session id, score min(idle, absolute) deadline
 *   P sessions:unreadable    hash: id -> user index it was met in ('' when none) for keys a
 *                            reader found unreadable, until cleanup removes them
 *   P ended:<id>             a session hash a revocation of its user ended, renamed unread,
 *                            until its history row is read (within milliseconds; should the
 *                            process stop first, until its own TTL)
 *
 * The session hash is keyed by id alone: get() and touch() run on every request and only have
 * the id, so a user tag in that key would cost each request a lookup first. What is per user
 * (the user index today) carries the tag `{u<userId>}`, so a user's keys share a Cluster slot.
 * Creation scores are negated so that one ascending range gives newest first with ties in
 * ascending id order, the order the SQL store gives.
 *
 * Every key carries a TTL: a session hash its absolute deadline plus retention, an index the
 * latest such deadline among its sessions. Writes that create keys run in one Lua script, so
 * the hash and its indexes appear, expire-stamped, together.
 *
 * LIMITATION: every script here spans the session's slot, the user's and the global indexes'
 * (the delete scripts derive the user index key from the stored user id, and takeExpired's the
 * session keys from the expiry index's ids), which Redis
 * Cluster refuses. Moving to Cluster means per-slot steps (hash, then indexes; readers already
 * skip the gaps between them) and global indexes split into per-slot shards.
 *
 * Needs Redis 7.0 or later (PEXPIREAT NX/GT; ZRANGE BYSCORE and ZMSCORE are 6.2).
 */
import { createHash } from 'node:crypto';
import { ROLES, type Role } from '../db/schema.js';
import { waitAtMost } from '../resilience/wait-at-most.js';
import { keepRecord, type ReadCacheStats } from './read-cache.js';
import {
  type CreateOptions,
  type DeleteOutcome,
  type ExpiredBatch,
  expiresAt,
  type HealthReport,
  LateTakeError,
  LateWriteError,
  type ResolveUserIds,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionStore,
  type SessionTally,
  type Taken,
  type TakenOfUser,
  type TakeOptions,
  type TopUsers,
  type UserFilter,
} from './session-store.js';
import { invalidationFence, type TrackedReads } from './tracked-reads.js';

export const DEFAULT_REDIS_PREFIX = 'warden:';

// Bounds on one round trip: how many hashes are read, index entries fetched, or sessions
// deleted by one script, so no single command or script holds Redis for long.
const READ_CHUNK = 500;
const WALK_CHUNK = 500;
const DELETE_CHUNK = 200;
// Due entries one takeExpired script handles at most: 1.6–1.8 ms of Redis on a million-session
// fleet with the 2 cores crowded by a validation load, against 3.3–3.7 ms for 100. A script
// stalls when the machine takes Redis's core away; 100 a script made 68–80 scripts of 10 ms or
// more in a cleanup of 300,000, 50 made 4–5, at the same rate (bench/RESULTS.md §3). Cleanup
// keeps several in flight for throughput.
const TAKE_EXPIRED_CHUNK = 50;
// Sessions one CREATE_MANY script stores (bulk loads only).
const CREATE_MANY_CHUNK = 200;
// Bytes per stored part of a user agent: Redis's default hash-max-listpack-value.
const USER_AGENT_PART_BYTES = 64;
// Parts after the first at most: a user agent is cut to 512 characters before it is stored
// (at most 2,048 bytes); anything past this many parts is not kept.
const MAX_USER_AGENT_PARTS = 40;
// A user's session ids read in one reply (userSessionIds): about 350 KB at most.
const USER_IDS_AT_ONCE = 5_000;
// How many users' indexes are read at once.
const USER_CHUNK = 100;
// How many of the newest sessions topUsers draws its candidates from.
const TOP_USERS_SAMPLE = 5_000;
// How many entries of each global index healthReport checks, and up to how many users'
// indexes; past either bound the report says it is partial and repair walks everything.
const HEALTH_CHECK_LIMIT = 5_000;
// A status-only page counts from the expiry index when at most this many entries lie outside
// its created range (walked to correct the count); past it, the full walk.
const STATUS_OUTSIDE_LIMIT = 20_000;
const HEALTH_USER_LIMIT = 500;
// A console page (countUpTo set) whose user filter matches at most this many users is read
// from their own indexes; past it, the page walks the global index newest first and asks the
// users table only about the owners it meets, and the count reads users this many at a time.
const FEW_USERS = 1_000;
// Entries per step of that walk: one ZRANGE and one read-only script each.
const SCAN_CHUNK = 1_000;
// With status active, that walk reads the active range of the expiry index instead when it
// holds at most this many entries: all of them, at most 20 steps, whatever the filter's share.
const ACTIVE_WALK = 20_000;
// User indexes per counting script (each reads one index; with a status, its entries).
const COUNT_USER_CHUNK = 200;
// Creation-index entries one status walk script reads at most (a few milliseconds of Redis).
const STATUS_WALK_BUDGET = 4_000;

interface ByScore {
  BY: 'SCORE';
  /** With REV the range runs from max down to min, and min/max swap places in the call. */
  REV?: true;
  LIMIT?: { offset: number; count: number };
}

interface ScriptCall {
  keys: string[];
  arguments: string[];
}

interface ScoredMember {
  value: string;
  score: number;
}

/** The slice of a node-redis v5 client this store uses; `createClient()` satisfies it. */
export interface RedisSessionClient {
  hGetAll(key: string): Promise<Record<string, string>>;
  zRange(key: string, min: string, max: string, options: ByScore): Promise<string[]>;
  zRangeWithScores(
    key: string,
    min: string,
    max: string,
    options: ByScore,
  ): Promise<ScoredMember[]>;
  zmScore(key: string, members: string[]): Promise<Array<number | null>>;
  zCount(key: string, min: string, max: string): Promise<number>;
  zCard(key: string): Promise<number>;
  zRem(key: string, members: string[]): Promise<number>;
  exists(keys: string[]): Promise<number>;
  del(keys: string[]): Promise<number>;
  evalSha(sha1: string, options: ScriptCall): Promise<unknown>;
  eval(script: string, options: ScriptCall): Promise<unknown>;
  ping(): Promise<string>;
  time(): Promise<string[]>;
  info(): Promise<string>;
}

export interface RedisSessionStoreOptions {
  /** A connected client; the app owns it and closes it. */
  client: RedisSessionClient;
  /** Put before every key; must not contain `{` or `}`. @default 'warden:' */
  prefix?: string;
  /** Answers the email and role filters (from the users table). */
  resolveUserIds: ResolveUserIds;
  /** How long an expired session stays listed, in milliseconds; keys live until the absolute deadline plus this. */
  retentionMs: number;
  /**
   * Most users a console page's user filter may match and still be read from their own
   * indexes (see #listPage); the contract tests lower it to cover the other way. @default 1000
   */
  fewUsers?: number;
  /**
   * A broad page (past fewUsers) with status active walks the expiry index's active range
   * instead of the creation index when it holds at most this many entries (see #scan); the
   * contract tests set 0 to cover the other way. @default 20000
   */
  activeWalk?: number;
  /**
   * Told of the error when deleteMany answers with partial outcomes instead of throwing, so
   * the failure still reaches a log line.
   */
  onPartialFailure?: (error: unknown) => void;
  /**
   * How often sessions set aside and not collected are collected again (see SetAsideDebt); the
   * tests shorten it. @default 5000
   */
  setAsideSweepMs?: number;
  /**
   * Session reads for validation go through this tracking connection and are kept in memory
   * until Redis reports a change (`peek` answers from it). Without it every `get` asks Redis.
   */
  tracked?: TrackedReads;
}

interface Script {
  source: string;
  sha1: string;
}

// The longest a reader of the global indexes waits for sessions set aside to be collected: a
// revocation's history, and so its collection, waits up to 1 s for its answer to be sent.
const SET_ASIDE_WAIT_MS = 2_000;
// How often sessions set aside and not collected (Redis was away) are collected again.
const SET_ASIDE_SWEEP_MS = 5_000;
// Most ids kept for a later collection; past this the oldest are dropped, left to readers'
// pruning, cleanup and repair.
const SET_ASIDE_MAX = 200_000;

/**
 * Sessions this process's takeOfUser set aside (or may have: a chunk whose answer was lost)
 * whose global index entries are not yet removed. Readers that count or list through those
 * indexes wait for the ones just set aside (`fresh`, at most SET_ASIDE_WAIT_MS), so a page
 * loaded right after a revocation has answered does not count what it ended. Whatever is not
 * collected by then (Redis away, an answer lost) a sweep collects every SET_ASIDE_SWEEP_MS until
 * Redis answers; their history rows are written meanwhile from what sign-in recorded.
 *
 * LIMITATION: another instance's readers do not wait: for the milliseconds until the
 * collection, its counts include the ended sessions (its listings skip them, their hashes gone).
 * What this process owes is lost if it stops: those entries dangle until a reader, the cleanup
 * or a repair meets them and removes them with their set-aside hashes (see #prune); a hash whose
 * entries nothing meets stays until its TTL, and the history rows it would have given are lost.
 */
class SetAsideDebt {
  /** Id → when it was set aside, in performance.now() ms (insertion order: the oldest first). */
  readonly #owed = new Map<string, number>();
  /** Ids set aside just now whose revocation's own collection readers wait for. */
  readonly #fresh = new Set<string>();
  /** Ids a collection is reading now: the sweep leaves them to it. */
  readonly #collecting = new Set<string>();
  readonly #waiters = new Set<() => void>();
  #sweep: NodeJS.Timeout | undefined;
  readonly #collect: (ids: string[]) => Promise<ReadonlyMap<string, unknown>>;
  readonly #sweepMs: number;
  /** Told how many set-aside sessions a late collection removed (see collect). */
  readonly late = new Set<(collected: number) => void>();

  /**
   * `collect`: reads and removes what was set aside, answering per id `not_found` where nothing
   * was; throws when Redis does not answer.
   */
  constructor(
    collect: (ids: string[]) => Promise<ReadonlyMap<string, unknown>>,
    sweepMs = SET_ASIDE_SWEEP_MS,
  ) {
    this.#collect = collect;
    this.#sweepMs = sweepMs;
  }

  /** `fresh`: set aside for sure, its collection to follow at once (else: for the sweep). */
  owe(ids: readonly string[], fresh: boolean): void {
    const now = performance.now();
    for (const id of ids) {
      this.#owed.delete(id);
      this.#owed.set(id, now);
      if (fresh) this.#fresh.add(id);
    }
    for (const id of this.#owed.keys()) {
      if (this.#owed.size <= SET_ASIDE_MAX) break;
      this.#owed.delete(id);
      this.#fresh.delete(id);
    }
    this.#schedule();
  }

  /** Whether `id` was set aside here and is not collected yet. */
  owes(id: string): boolean {
    return this.#owed.has(id);
  }

  /**
   * Runs a collection of `ids`; they are paid when it succeeds, left to the sweep if not. One
   * that removes sessions readers no longer waited for (the sweep's, or a revocation's own that
   * came after the wait, Redis having paused) tells the `late` listeners how many: those
   * readers counted them, and nothing else says the figures changed.
   */
  async collect<T extends ReadonlyMap<string, unknown>>(
    ids: readonly string[],
    run: () => Promise<T>,
  ): Promise<T> {
    for (const id of ids) this.#collecting.add(id);
    try {
      const result = await run();
      let late = 0;
      for (const id of ids) {
        if (this.#owed.has(id) && !this.#fresh.has(id) && result.get(id) !== 'not_found') late++;
        this.#owed.delete(id);
      }
      if (late > 0) this.#tell(late);
      return result;
    } finally {
      for (const id of ids) {
        this.#collecting.delete(id);
        this.#fresh.delete(id);
      }
      this.#wake();
      this.#schedule();
    }
  }

  /**
   * Waits for the collections of what was set aside before this call, each for at most
   * SET_ASIDE_WAIT_MS from when it was set aside; later ones are not waited for.
   */
  async settled(): Promise<void> {
    if (this.#fresh.size === 0) return;
    const pending = [...this.#fresh];
    const waitedFor = () => pending.filter((id) => this.#fresh.has(id));
    for (;;) {
      const left = waitedFor();
      if (left.length === 0) return;
      // A loop, not Math.max(...): a user may have more sessions than a call takes arguments.
      let newest = 0;
      for (const id of left) newest = Math.max(newest, this.#owed.get(id) ?? 0);
      const wait = newest + SET_ASIDE_WAIT_MS - performance.now();
      if (wait <= 0) {
        // Their collection never came (a take's answer came after its caller gave up, or the
        // breaker refused the collection): the sweep takes them.
        for (const id of left) this.#fresh.delete(id);
        this.#schedule();
        return;
      }
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      this.#waiters.add(wake);
      try {
        await waitAtMost(woken, wait);
      } finally {
        this.#waiters.delete(wake);
      }
    }
  }

  stop(): void {
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
  }

  #schedule(): void {
    if (this.#sweep || this.#owed.size === 0) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      void this.#sweepOnce();
    }, this.#sweepMs);
    this.#sweep.unref();
  }

  async #sweepOnce(): Promise<void> {
    // Past the readers' wait too: a revocation's own collection may still be on its way.
    const due = performance.now() - Math.max(this.#sweepMs, SET_ASIDE_WAIT_MS);
    // A thousand a script round, round after round while Redis answers: a helper's stalled
    // revocations left 6,250 owed, which one round per sweep took half a minute to clear.
    for (;;) {
      const ids: string[] = [];
      for (const [id, at] of this.#owed) {
        if (at > due || ids.length >= 1_000) break;
        if (!this.#collecting.has(id)) ids.push(id);
      }
      if (ids.length === 0) break;
      // What they were is not wanted any more: their history rows are written.
      const done = await this.collect(ids, () => this.#collect(ids)).then(
        () => true,
        () => false,
      );
      if (!done) return;
    }
    this.#schedule();
  }

  #tell(collected: number): void {
    for (const listener of this.late) {
      try {
        listener(collected);
      } catch {
        // A listener's failure is its own (the live bus never throws): collecting goes on.
      }
    }
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }
}

function script(source: string): Script {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

// A session's fields as one HMGET answers them, in READ_NAMES order, false where missing: the
// user agent may be kept in parts (see userAgentParts), 'ua' holding the first and 'uan' how many
// follow in 'ua1', 'ua2'... The HMGET reads the first UA_INLINE parts with the rest (a browser's
// user agent fits); a longer one costs a second, appended. HMGET rather than TYPE and HGETALL:
// the per-session cost of a cleanup or a revocation script was mostly building a Lua table of
// every field (about 12 of 30 µs of Redis a session). The answer goes back as Redis gave it and
// the parts are joined here (fromFields): joining them in Lua, in a new table, was another 6 µs
// of Redis's 30 a session in a cleanup. pcall turns a key of another type into an answer, not
// an error. Answers nil when there is no key, false when the key is no hash.
const UA_INLINE = 3;
const READ_NAMES = [
  'user',
  'created',
  'seen',
  'idle',
  'absolute',
  'ip',
  'ua',
  'uan',
  ...Array.from({ length: MAX_USER_AGENT_PARTS }, (_, i) => `ua${i + 1}`),
];
const LUA_SESSION_FIELDS = `
local tonumber, match = tonumber, string.match
local function session_fields(key)
  local r = redis.pcall('HMGET', key, ${READ_NAMES.slice(0, 8 + UA_INLINE)
    .map((name) => `'${name}'`)
    .join(', ')})
  if r.err then return false end
  if not (r[1] or r[2] or r[3] or r[4] or r[5] or r[6] or r[7] or r[8]) then
    if redis.call('EXISTS', key) == 0 then return nil end
  end
  local parts = tonumber(r[8])
  if r[7] and parts and parts > ${UA_INLINE} and parts <= ${MAX_USER_AGENT_PARTS} then
    local names = {}
    for j = ${UA_INLINE} + 1, parts do names[#names + 1] = 'ua' .. j end
    local rest = redis.call('HMGET', key, unpack(names))
    for j = 1, #names do r[#r + 1] = rest[j] end
  end
  return r
end
`;

// Same rule as parseSession below: the five times and the user id are integers, ip and ua set.
// Fifteen digits or fewer are always within 2^53, so only longer ones are converted.
const LUA_READABLE = `${LUA_SESSION_FIELDS}
local function readable(f)
  for i = 1, 5 do
    local v = f[i]
    if not v or not match(v, '^%-?%d+$') then return false end
    if #v > 15 and math.abs(tonumber(v)) > 9007199254740991 then return false end
  end
  return f[6] ~= false and f[7] ~= false
end
local function fields(key)
  local f = session_fields(key)
  if f and readable(f) then return f end
  return nil
end
`;

type LateStep = 'late write' | 'late take';

/** Whether Redis refused a step by lateRefusal's check. */
function refusedLate(error: unknown, what: LateStep): boolean {
  return error instanceof Error && error.message.includes(`warden: ${what}`);
}

/**
 * Lua that refuses the script, changing nothing, when Redis's own clock is past ARGV[at] (epoch
 * ms; '' for no bound): a step that sat in the socket of a paused Redis while its caller gave up.
 */
function lateRefusal(at: number, what: LateStep): string {
  return `if ARGV[${at}] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[${at}]) then
    return redis.error_reply('ERR warden: ${what}')
  end
end`;
}

// KEYS: session hash, user index, by-created, by-expiry.
// ARGV: id, user, created, seen, idle, absolute, ip, ua (its first part), -created, expires at,
// key deadline, not after ('' for no bound), then the user agent's further parts. A write that
// arrives past its bound (Redis was paused while it sat in the socket) writes nothing: its
// sign-in has already been answered 503.
const CREATE = script(`
${lateRefusal(12, 'late write')}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('ERR warden: a session with this id is already stored')
end
local fields = {'user', ARGV[2], 'created', ARGV[3], 'seen', ARGV[4], 'idle', ARGV[5],
  'absolute', ARGV[6], 'ip', ARGV[7], 'ua', ARGV[8]}
if #ARGV > 12 then
  fields[#fields + 1] = 'uan'
  fields[#fields + 1] = #ARGV - 12
  for j = 13, #ARGV do
    fields[#fields + 1] = 'ua' .. (j - 12)
    fields[#fields + 1] = ARGV[j]
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIREAT', KEYS[1], ARGV[11])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[10], ARGV[1])
for i = 2, 4 do
  -- GT alone would skip a new index (no TTL counts as infinite), so NX gives it its first.
  redis.call('PEXPIREAT', KEYS[i], ARGV[11], 'NX')
  redis.call('PEXPIREAT', KEYS[i], ARGV[11], 'GT')
end
return 1
`);

// KEYS: by-created, by-expiry, then per session its hash and its user's index.
// ARGV: per session id, user, created, seen, idle, absolute, ip, -created, expires at, key
// deadline, how many user agent parts follow, the parts. CREATE for many sessions in one step,
// with one ZADD per index and one pair of PEXPIREATs per index key rather than per session.
// Refuses all (stores none) if one id is already stored.
const CREATE_MANY = script(`
local sessions = {}
local at = 1
for i = 3, #KEYS, 2 do
  local parts = tonumber(ARGV[at + 10])
  sessions[#sessions + 1] = {hash = KEYS[i], index = KEYS[i + 1], at = at, parts = parts}
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return redis.error_reply('ERR warden: a session with this id is already stored')
  end
  at = at + 11 + parts
end
local created, expiry, byIndex, deadlines = {}, {}, {}, {}
local latest = 0
for _, s in ipairs(sessions) do
  local a = s.at
  local fields = {'user', ARGV[a + 1], 'created', ARGV[a + 2], 'seen', ARGV[a + 3],
    'idle', ARGV[a + 4], 'absolute', ARGV[a + 5], 'ip', ARGV[a + 6], 'ua', ARGV[a + 11]}
  if s.parts > 1 then
    fields[#fields + 1] = 'uan'
    fields[#fields + 1] = s.parts - 1
    for j = 2, s.parts do
      fields[#fields + 1] = 'ua' .. (j - 1)
      fields[#fields + 1] = ARGV[a + 10 + j]
    end
  end
  redis.call('HSET', s.hash, unpack(fields))
  redis.call('PEXPIREAT', s.hash, ARGV[a + 9])
  local deadline = tonumber(ARGV[a + 9])
  if deadline > latest then latest = deadline end
  created[#created + 1] = ARGV[a + 7]
  created[#created + 1] = ARGV[a]
  expiry[#expiry + 1] = ARGV[a + 8]
  expiry[#expiry + 1] = ARGV[a]
  local own = byIndex[s.index]
  if not own then own = {}; byIndex[s.index] = own; deadlines[s.index] = 0 end
  own[#own + 1] = ARGV[a + 7]
  own[#own + 1] = ARGV[a]
  if deadline > deadlines[s.index] then deadlines[s.index] = deadline end
end
local function expire(key, deadline)
  -- GT alone would skip a new index (no TTL counts as infinite), so NX gives it its first.
  redis.call('PEXPIREAT', key, deadline, 'NX')
  redis.call('PEXPIREAT', key, deadline, 'GT')
end
for index, own in pairs(byIndex) do
  redis.call('ZADD', index, unpack(own))
  expire(index, deadlines[index])
end
redis.call('ZADD', KEYS[1], unpack(created))
redis.call('ZADD', KEYS[2], unpack(expiry))
expire(KEYS[1], latest)
expire(KEYS[2], latest)
return #sessions
`);

// KEYS: session hash, by-expiry. ARGV: id, last seen, idle deadline.
// Writes nothing unless a readable session hash is there, and ZADD XX never adds a member,
// so a touch racing a delete cannot bring back the hash or any index entry.
const TOUCH = script(`${LUA_READABLE}
local f = fields(KEYS[1])
if not f then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[2], 'idle', ARGV[3])
local deadline = ARGV[3]
if tonumber(f[5]) < tonumber(ARGV[3]) then deadline = f[5] end
redis.call('ZADD', KEYS[2], 'XX', deadline, ARGV[1])
return 1
`);

// KEYS: by-created, by-expiry, then one session key per id.
// ARGV: user index key before the user id, after it, then the ids in KEYS order.
// Deletes each session and its index entries, answering what it deleted: per id 0 when no key was
// there, 1 for a key that is no hash, else the hash's fields as session_fields reads them.
const TAKE = script(`${LUA_SESSION_FIELDS}
local out = {}
for i = 3, #KEYS do
  local id = ARGV[i]
  local f = session_fields(KEYS[i])
  local user = false
  if f == nil then
    out[#out + 1] = 0
  else
    if f then
      user = f[1]
      out[#out + 1] = f
    else
      out[#out + 1] = 1
    end
    redis.call('DEL', KEYS[i])
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if user and string.match(user, '^%-?%d+$') then
    redis.call('ZREM', ARGV[1] .. user .. ARGV[2], id)
  end
end
return out
`);

// KEYS: the user's index, by-created, by-expiry, quarantine, then per id its session key and
// its set-aside key. ARGV: the user id, quarantine TTL in ms, then the ids.
// Ends one user's sessions without reading them: a hash is taken only when its own user field
// names this user, so an id misfiled under this user's index never ends another user's session
// (it is answered 0 and left as it is, as readers skip it). A taken hash is renamed to its
// set-aside key and leaves the user's index; COLLECT_SET_ASIDE reads it for its history row
// and removes its entries from the global indexes once the revocation has answered. At a
// million sessions those two removals were half the script's time, and sending every field
// back most of the rest. An entry whose key is gone loses its index entries, as a reader prunes
// it; a key that names no user is quarantined for removeUnreadable, as a reader does; this
// user's hash without readable deadlines is deleted with its entries. Answers per id: 0 when
// nothing of this user's was taken, 1 when an unreadable hash was deleted, else the taken
// session's deadline as a string.
const END_OF_USER = script(`
local match, tonumber = string.match, tonumber
local function integer(v)
  if not v or not match(v, '^%-?%d+$') then return nil end
  local n = tonumber(v)
  if #v > 15 and math.abs(n) > 9007199254740991 then return nil end
  return n
end
local out = {}
local own = {}
local gone = {}
local quarantined = false
local uid = tonumber(ARGV[1])
for i = 1, #ARGV - 2 do
  local id = ARGV[i + 2]
  local key = KEYS[3 + 2 * i]
  local r = redis.pcall('HMGET', key, 'user', 'idle', 'absolute')
  local owner, present = nil, true
  if r.err then
    r = {}
  else
    owner = integer(r[1])
    if not (r[1] or r[2] or r[3]) then present = redis.call('EXISTS', key) == 1 end
  end
  if not present then
    gone[#gone + 1] = id
    out[#out + 1] = 0
  elseif owner == uid then
    local idle, absolute = integer(r[2]), integer(r[3])
    own[#own + 1] = id
    if idle and absolute then
      redis.call('RENAME', key, KEYS[4 + 2 * i])
      -- The stored string, not tostring(): Lua prints large numbers with 14 digits.
      if idle <= absolute then out[#out + 1] = r[2] else out[#out + 1] = r[3] end
    else
      redis.call('DEL', key)
      gone[#gone + 1] = id
      out[#out + 1] = 1
    end
  elseif owner ~= nil then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[4], id, ARGV[1])
    quarantined = true
    out[#out + 1] = 0
  end
end
if #own > 0 then redis.call('ZREM', KEYS[1], unpack(own)) end
if #gone > 0 then
  for k = 1, 3 do redis.call('ZREM', KEYS[k], unpack(gone)) end
end
if quarantined then redis.call('PEXPIRE', KEYS[4], ARGV[2]) end
return out
`);

// KEYS: by-created, by-expiry, then per id its set-aside key and its session key.
// ARGV: the ids. Reads each set-aside hash and deletes it, and removes from the global indexes
// every id whose session key is gone (an id whose end-of-user script never ran, its answer
// lost, is still a live session and keeps its entries): per id 0 when nothing was set aside,
// 1 when that is no hash, else the fields as TAKE answers them.
const COLLECT_SET_ASIDE = script(`${LUA_SESSION_FIELDS}
local out = {}
local gone = {}
for i = 1, #ARGV do
  local f = session_fields(KEYS[1 + 2 * i])
  if f == nil then
    out[i] = 0
  else
    out[i] = f or 1
    redis.call('DEL', KEYS[1 + 2 * i])
  end
  if redis.call('EXISTS', KEYS[2 + 2 * i]) == 0 then gone[#gone + 1] = ARGV[i] end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return out
`);

// KEYS: by-created, by-expiry, quarantine.
// ARGV: user index key before the user id, after it, session key before the id, due at or
// before, at most this many, quarantine TTL in ms, set-aside key before the id, not after ('' for
// no bound: a script that runs past it, its caller gone, takes nothing, as CREATE writes nothing).
// Takes the soonest due entries of the expiry index (they are its first ranks, so one
// ZREMRANGEBYRANK drops them all): a readable hash is deleted with its index entries and
// returned; an entry whose hash is gone (its TTL ran out, or a revocation set it aside and its
// process stopped before collecting it) loses its global entries and any set-aside copy (its
// user is unknown; that index expires by its TTL); a key that is no readable session is
// quarantined for removeUnreadable. Returns how many entries were due, then per session taken
// its id and its fields as session_fields answers them.
const TAKE_EXPIRED = script(`${LUA_READABLE}
${lateRefusal(8, 'late take')}
local ids = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[4], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[5]))
if #ids == 0 then return {0} end
local out = {#ids}
local created = {}
local byUser = {}
for _, id in ipairs(ids) do
  local key = ARGV[3] .. id
  local f = fields(key)
  if f then
    redis.call('DEL', key)
    local own = byUser[f[1]]
    if not own then own = {}; byUser[f[1]] = own end
    own[#own + 1] = id
    created[#created + 1] = id
    out[#out + 1] = id
    out[#out + 1] = f
  elseif redis.call('EXISTS', key) == 0 then
    created[#created + 1] = id
    redis.call('DEL', ARGV[7] .. id)
  else
    -- NX: a reader may have noted the user index it met the key in, for removeUnreadable.
    redis.call('HSETNX', KEYS[3], id, '')
    redis.call('PEXPIRE', KEYS[3], ARGV[6])
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #ids - 1)
if #created > 0 then redis.call('ZREM', KEYS[1], unpack(created)) end
for user, own in pairs(byUser) do redis.call('ZREM', ARGV[1] .. user .. ARGV[2], unpack(own)) end
return out
`);

// KEYS: quarantine hash. ARGV: its TTL in ms, then pairs of id and the user index it was met
// in ('' for none).
const QUARANTINE = script(`
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);

// KEYS: by-created, by-expiry, quarantine, then one session key per id.
// ARGV: user index key before the user id, after it, then per id: id, user index met in ('').
// Removes each key that is (still) unreadable, or gone, with its index entries; a key that
// reads as a session again is left alone. Every id leaves the quarantine. Returns how many
// were removed.
const REMOVE_UNREADABLE = script(`${LUA_READABLE}
local removed = 0
for i = 4, #KEYS do
  local id = ARGV[3 + (i - 4) * 2]
  local met = ARGV[4 + (i - 4) * 2]
  if not fields(KEYS[i]) then
    local user = false
    if redis.call('TYPE', KEYS[i]).ok == 'hash' then user = redis.call('HGET', KEYS[i], 'user') end
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    if user and string.match(user, '^%-?%d+$') then
      redis.call('ZREM', ARGV[1] .. user .. ARGV[2], id)
    end
    if met ~= '' then redis.call('ZREM', ARGV[1] .. met .. ARGV[2], id) end
    removed = removed + 1
  end
  redis.call('HDEL', KEYS[3], id)
end
return removed
`);

// KEYS: session hashes. Per key: the user field of a hash, '' when there is no key, '?' when
// the key is something else or names no user. Read-only; one round trip per chunk.
const PROBE = script(`
local out = {}
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind == 'none' then
    out[i] = ''
  elseif kind ~= 'hash' then
    out[i] = '?'
  else
    local user = redis.call('HGET', KEYS[i], 'user')
    if user and string.match(user, '^%-?%d+$') then out[i] = user else out[i] = '?' end
  end
end
return out
`);

// zmscore(index, ids, from, to): the scores of ids[from..to] in index, false where absent.
// One ZMSCORE per thousand ids (unpack is bounded by Lua's stack) instead of a ZSCORE each: the
// call from Lua, not the lookup, was most of a ZSCORE's cost.
const LUA_ZMSCORE = `
local function zmscore(index, ids, from, to)
  local out = {}
  for i = from, to, 1000 do
    local r = redis.call('ZMSCORE', index, unpack(ids, i, math.min(i + 999, to)))
    for k = 1, #r do out[#out + 1] = r[k] end
  end
  return out
end
`;

// KEYS: an index to read each id's score from, then the session hashes. ARGV: the ids.
// Per id, two values: its hash's user ('' when there is no key, '?' when the key is something
// else or names no user) and its score in KEYS[1] ('' when absent). Read-only.
const SCAN_PROBE = script(`${LUA_ZMSCORE}
local out = {}
local scores = zmscore(KEYS[1], ARGV, 1, #ARGV)
for i = 2, #KEYS do
  -- One read for the usual case; a key of another type answers an error here, not a failure.
  local user = redis.pcall('HGET', KEYS[i], 'user')
  if type(user) == 'table' then
    user = '?'
  elseif not user then
    if redis.call('EXISTS', KEYS[i]) == 1 then user = '?' else user = '' end
  elseif not string.match(user, '^%-?%d+$') then
    user = '?'
  end
  out[#out + 1] = user
  out[#out + 1] = scores[i - 1] or ''
end
return out
`);

// KEYS: by-expiry, then user indexes. ARGV: creation range (negated scores) min and max,
// status ('all', 'active' or 'expired'), now, cap. Counts the entries of each index in the
// range (with a status, those whose deadline says so; an entry the expiry index lacks does not
// count), and stops once the count reaches the cap. Read-only.
const COUNT_USERS = script(`${LUA_ZMSCORE}
local n = 0
local cap = tonumber(ARGV[5])
local now = tonumber(ARGV[4])
local active = ARGV[3] == 'active'
for i = 2, #KEYS do
  -- pcall: an index of another type answers an error table, and counts nothing.
  if ARGV[3] == 'all' then
    local c = redis.pcall('ZCOUNT', KEYS[i], ARGV[1], ARGV[2])
    if type(c) == 'number' then n = n + c end
  else
    local ids = redis.pcall('ZRANGE', KEYS[i], ARGV[1], ARGV[2], 'BYSCORE')
    if not ids.err and #ids > 0 then
      for _, d in ipairs(zmscore(KEYS[1], ids, 1, #ids)) do
        if d and (tonumber(d) > now) == active then n = n + 1 end
      end
    end
  end
  if n >= cap then return n end
end
return n
`);

// KEYS: by-expiry, then user indexes. ARGV: creation range (negated scores) min and max,
// status ('all', 'active' or 'expired'), now, wanted, then the user ids in KEYS order.
// Counts each index's entries in the range that match the status (by their deadline; with
// 'all', ZCOUNT), keeps each index's first `wanted` of them, and returns the count, then the
// `wanted` newest kept as id, score, user triples. With 'expired' it keeps every match and
// returns the `wanted` most recently expired, the score being the deadline (ties: descending
// id): the order of every expired listing. Read-only.
const MERGE_USERS = script(`${LUA_ZMSCORE}
local min, max, status = ARGV[1], ARGV[2], ARGV[3]
local now, wanted = tonumber(ARGV[4]), tonumber(ARGV[5])
local expired = status == 'expired'
local count = 0
local kept = {}
for i = 2, #KEYS do
  local user = ARGV[4 + i]
  if redis.call('TYPE', KEYS[i]).ok == 'zset' then
    if status == 'all' then
      count = count + redis.call('ZCOUNT', KEYS[i], min, max)
      if wanted > 0 then
        local r = redis.call('ZRANGE', KEYS[i], min, max, 'BYSCORE', 'LIMIT', 0, wanted, 'WITHSCORES')
        for j = 1, #r, 2 do kept[#kept + 1] = {r[j], tonumber(r[j + 1]), user, r[j + 1]} end
      end
    else
      local r = redis.call('ZRANGE', KEYS[i], min, max, 'BYSCORE', 'WITHSCORES')
      local ids = {}
      for j = 1, #r, 2 do ids[#ids + 1] = r[j] end
      local scores = #ids > 0 and zmscore(KEYS[1], ids, 1, #ids) or {}
      local mine = 0
      for j = 1, #r, 2 do
        local d = scores[(j + 1) / 2]
        if d and (tonumber(d) > now) == (status == 'active') then
          count = count + 1
          if expired then
            -- Ordered by deadline, which the index's creation order does not follow: keep all.
            kept[#kept + 1] = {r[j], tonumber(d), user, d}
          elseif mine < wanted then
            kept[#kept + 1] = {r[j], tonumber(r[j + 1]), user, r[j + 1]}
            mine = mine + 1
          end
        end
      end
    end
  end
end
table.sort(kept, function(a, b)
  if expired then
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] > b[1]
  end
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[1] < b[1]
end)
local out = {count}
for j = 1, math.min(wanted, #kept) do
  out[#out + 1] = kept[j][1]
  out[#out + 1] = kept[j][4]
  out[#out + 1] = kept[j][3]
end
return out
`);

// KEYS: by-created, by-expiry. ARGV: lower bound (a ZRANGE BYSCORE bound), upper bound, id
// after which to resume at the lower bound's score ('' from the start), now, status ('all',
// 'active' or 'expired'), matches wanted, most entries to read, session key prefix, then the
// user ids to keep (none: any user). Walks the creation index newest first and tests each
// entry's deadline and its hash's user here, so only matches cross the wire. Returns: 1 when
// the range ended, the last entry read (score and id: the cursor), then id, score, kind
// triples (kind 'm' a match, 'u' an entry the expiry index lacks). Read-only. Reads session
// keys it derives from ids, as the delete script derives user keys (see LIMITATION above).
const STATUS_WALK = script(`
local lo, hi, after = ARGV[1], ARGV[2], ARGV[3]
local now, status, active = tonumber(ARGV[4]), ARGV[5], ARGV[5] == 'active'
local want, budget, prefix = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local users = nil
if #ARGV > 8 then
  users = {}
  for i = 9, #ARGV do users[ARGV[i]] = true end
end
local loScore = tonumber((string.gsub(lo, '^%(', '')))
local out = {0, '', ''}
local found, read, offset = 0, 0, 0
while read < budget do
  local step = math.min(500, budget - read)
  local r = redis.call('ZRANGE', KEYS[1], lo, hi, 'BYSCORE', 'LIMIT', offset, step, 'WITHSCORES')
  offset = offset + #r / 2
  -- One ZMSCORE per step: a call per entry would cost more than the lookups themselves.
  local ds = {}
  if status ~= 'all' and #r > 0 then
    local ids = {}
    for j = 1, #r, 2 do ids[#ids + 1] = r[j] end
    ds = redis.call('ZMSCORE', KEYS[2], unpack(ids))
  end
  for j = 1, #r, 2 do
    local id, sc = r[j], r[j + 1]
    read = read + 1
    if not (after ~= '' and tonumber(sc) == loScore and id <= after) then
      out[2], out[3] = sc, id
      local kind = 'm'
      if status ~= 'all' then
        local d = ds[(j + 1) / 2]
        if not d then
          kind = 'u'
        elseif (tonumber(d) > now) ~= active then
          kind = nil
        end
      end
      if kind == 'm' and users then
        local user = redis.pcall('HGET', prefix .. id, 'user')
        if type(user) ~= 'string' or not users[user] then kind = nil end
      end
      if kind then
        out[#out + 1] = id; out[#out + 1] = sc; out[#out + 1] = kind
        if kind == 'm' then found = found + 1 end
      end
    end
  end
  if #r / 2 < step then out[1] = 1; break end
  if found >= want then break end
end
return out
`);

// KEYS: by-expiry, by-created. ARGV: highest deadline to read (inclusive: now, or the cursor's
// score), id at that deadline below which to resume ('' from the start), created from
// (inclusive, '' for none), created to (exclusive, '' for none), matches wanted, most entries
// to read, session key prefix, '1' to answer each entry's owner, then the user ids to keep
// (none: any user). Walks the expiry index from the most recently expired down (ties in
// descending id order, as ZRANGE REV gives them), tests each entry's creation time and, given
// users, its hash's user here, so only matches cross the wire. Every entry read has expired,
// so this reads about `wanted` entries however many live sessions there are. Returns: 1 when
// the index ended, the last entry read (score and id: the cursor), then id, deadline, kind,
// owner quadruples (kind 'm' a match, 'u' an entry the creation index lacks; owner the hash's
// user, '' when there is no key, '?' when it is no session, or '' when not asked). Read-only.
// Reads session keys it derives from ids (see LIMITATION above).
const EXPIRED_WALK = script(`
local hi, after = ARGV[1], ARGV[2]
local from, to = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, budget, prefix, owners = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8] == '1'
local users = nil
if #ARGV > 8 then
  users = {}
  for i = 9, #ARGV do users[ARGV[i]] = true end
end
local hiScore = tonumber(hi)
local out = {0, '', ''}
local found, read, offset = 0, 0, 0
while read < budget do
  local step = math.min(500, budget - read)
  local r = redis.call('ZRANGE', KEYS[1], hi, '-inf', 'BYSCORE', 'REV', 'LIMIT', offset, step, 'WITHSCORES')
  offset = offset + #r / 2
  local cs = {}
  if #r > 0 then
    local ids = {}
    for j = 1, #r, 2 do ids[#ids + 1] = r[j] end
    cs = redis.call('ZMSCORE', KEYS[2], unpack(ids))
  end
  for j = 1, #r, 2 do
    local id, sc = r[j], r[j + 1]
    read = read + 1
    if not (after ~= '' and tonumber(sc) == hiScore and id >= after) then
      out[2], out[3] = sc, id
      local kind = 'm'
      local c = cs[(j + 1) / 2]
      if not c then
        kind = 'u'
      else
        local created = -tonumber(c)
        if (from and created < from) or (to and created >= to) then kind = nil end
      end
      local owner = ''
      if kind == 'm' and (users or owners) then
        local t = redis.call('TYPE', prefix .. id).ok
        if t == 'hash' then
          owner = redis.call('HGET', prefix .. id, 'user')
          if not owner or not string.match(owner, '^%-?%d+$') then owner = '?' end
        elseif t ~= 'none' then
          owner = '?'
        end
        if users and not users[owner] then kind = nil end
      end
      if kind then
        out[#out + 1] = id; out[#out + 1] = sc; out[#out + 1] = kind; out[#out + 1] = owner
        if kind == 'm' then found = found + 1 end
      end
    end
  end
  if #r / 2 < step then out[1] = 1; break end
  if found >= want then break end
end
return out
`);

// Each script's name by its SHA-1, as `SLOWLOG` and `MONITOR` show an `EVALSHA` (see scriptName).
const SCRIPT_NAMES = new Map(
  Object.entries({
    CREATE,
    CREATE_MANY,
    TOUCH,
    TAKE,
    END_OF_USER,
    COLLECT_SET_ASIDE,
    TAKE_EXPIRED,
    QUARANTINE,
    REMOVE_UNREADABLE,
    PROBE,
    SCAN_PROBE,
    COUNT_USERS,
    MERGE_USERS,
    STATUS_WALK,
    EXPIRED_WALK,
  }).map(([name, s]) => [s.sha1, name]),
);

/** The name of the store's script with this SHA-1 (an `EVALSHA`'s first argument), if it is one. */
export function scriptName(sha1: string): string | undefined {
  return SCRIPT_NAMES.get(sha1.toLowerCase());
}

const INT_RE = /^-?\d{1,16}$/;

function int(raw: string | undefined): number | null {
  if (raw === undefined || !INT_RE.test(raw)) return null;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * Redis keeps a hash compact (a listpack, about 400 bytes less per session) only while every
 * value is at most `hash-max-listpack-value` bytes, 64 by default, and a browser's user agent is
 * usually longer. So the user agent is stored in parts of at most that many bytes, cut between
 * characters, each a valid string: 'ua', then 'uan' saying how many follow as 'ua1', 'ua2'...
 * Hashes written whole (one long 'ua') read as before.
 */
export function userAgentParts(userAgent: string): string[] {
  const parts: string[] = [];
  let part = '';
  let bytes = 0;
  for (const char of userAgent) {
    const size = Buffer.byteLength(char);
    if (bytes + size > USER_AGENT_PART_BYTES && part !== '') {
      parts.push(part);
      part = '';
      bytes = 0;
    }
    part += char;
    bytes += size;
  }
  parts.push(part);
  return parts.slice(0, MAX_USER_AGENT_PARTS + 1);
}

/** The user agent of a hash read whole, joined from its parts when it was stored in parts. */
function userAgentOf(hash: Record<string, string>): string | undefined {
  const parts = int(hash.uan);
  if (hash.ua === undefined || parts === null || parts <= 0 || parts > MAX_USER_AGENT_PARTS) {
    return hash.ua;
  }
  let joined = hash.ua;
  for (let j = 1; j <= parts; j++) joined += hash[`ua${j}`] ?? '';
  return joined;
}

function parseSession(id: string, hash: Record<string, string>): SessionRecord | null {
  const userId = int(hash.user);
  const createdAt = int(hash.created);
  const lastSeenAt = int(hash.seen);
  const idleExpiresAt = int(hash.idle);
  const absoluteExpiresAt = int(hash.absolute);
  const ip = hash.ip;
  const userAgent = userAgentOf(hash);
  if (
    userId === null ||
    createdAt === null ||
    lastSeenAt === null ||
    idleExpiresAt === null ||
    absoluteExpiresAt === null ||
    ip === undefined ||
    userAgent === undefined
  ) {
    return null;
  }
  return { id, userId, createdAt, lastSeenAt, idleExpiresAt, absoluteExpiresAt, ip, userAgent };
}

/** A session from the fields session_fields read (READ_NAMES order, null where missing). */
function fromFields(id: string, values: readonly unknown[]): SessionRecord | null {
  const hash: Record<string, string> = {};
  values.forEach((v, i) => {
    const name = READ_NAMES[i];
    if (name !== undefined && v !== null && v !== undefined && v !== false) hash[name] = String(v);
  });
  return parseSession(id, hash);
}

function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

type Filters = Omit<SessionQuery, 'offset' | 'limit'>;

/** An entry met by EXPIRED_WALK: `score` is its deadline, `owner` its hash's user if asked. */
interface ExpiredEntry {
  id: string;
  score: number;
  kind: 'm' | 'u';
  owner: string;
}

/** An index entry on its way to a listing; `owner` is set when it came from a user index. */
interface Candidate {
  id: string;
  score: number;
  owner?: number;
}

interface Loaded {
  records: SessionRecord[];
  /** Unreadable: missing, corrupt, or filed under another user. */
  skipped: number;
  /** Index entries whose hash is gone, to prune. */
  dangling: Candidate[];
  /** Entries whose key is there but is no readable session, for cleanup to remove. */
  corrupt: Candidate[];
}

// Quarantined ids handled by one removal script.
const REMOVE_CHUNK = 200;
// How long the quarantine outlives its last addition when no cleanup empties it.
const QUARANTINE_TTL_MS = 86_400_000;

/**
 * The Redis session store. Writes are atomic Lua scripts (EVALSHA, falling back to EVAL when
 * the server has not cached them); reads go through the sorted-set indexes and skip, count and
 * prune entries whose session is gone.
 *
 * `close()` does nothing: the client belongs to the app, which may share it.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  // Four such calls in flight (bulkWindow) can leave at most 200 deletes unreported when Redis
  // dies (C17).
  readonly bulkChunk = 50;
  readonly bulkWindow = 4;
  readonly #client: RedisSessionClient;
  readonly #prefix: string;
  readonly #resolveUserIds: ResolveUserIds;
  readonly #retentionMs: number;
  readonly #fewUsers: number;
  readonly #activeWalk: number;
  readonly #onPartialFailure: ((error: unknown) => void) | undefined;
  readonly #byCreated: string;
  readonly #byExpiry: string;
  readonly #unreadable: string;
  readonly #tracked: TrackedReads | undefined;
  readonly #setAside: SetAsideDebt;

  constructor(options: RedisSessionStoreOptions) {
    const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    if (/[{}]/.test(prefix)) {
      throw new Error(`redis key prefix "${prefix}" must not contain { or } (they pick the slot)`);
    }
    if (!Number.isSafeInteger(options.retentionMs) || options.retentionMs < 0) {
      throw new RangeError(
        `retentionMs must be a whole number of milliseconds, got ${options.retentionMs}`,
      );
    }
    this.#client = options.client;
    this.#prefix = prefix;
    this.#resolveUserIds = options.resolveUserIds;
    this.#retentionMs = options.retentionMs;
    this.#fewUsers = options.fewUsers ?? FEW_USERS;
    this.#activeWalk = options.activeWalk ?? ACTIVE_WALK;
    this.#onPartialFailure = options.onPartialFailure;
    this.#tracked = options.tracked;
    this.#setAside = new SetAsideDebt((ids) => this.#collectChunks(ids), options.setAsideSweepMs);
    this.#byCreated = `${prefix}sessions:by-created`;
    this.#byExpiry = `${prefix}sessions:by-expiry`;
    this.#unreadable = `${prefix}sessions:unreadable`;
  }

  /**
   * Stores a new session with its index entries; throws if the id is already stored, and
   * LateWriteError when Redis runs the script after `notAfter` by its own clock.
   */
  async create(s: SessionRecord, options: CreateOptions = {}): Promise<void> {
    const times = [s.userId, s.createdAt, s.lastSeenAt, s.idleExpiresAt, s.absoluteExpiresAt];
    const [first = '', ...rest] = userAgentParts(s.userAgent);
    const keyDeadline = this.#checkNew(s);

    const notAfter = options.notAfter;
    try {
      await this.#run(
        CREATE,
        [this.#sessionKey(s.id), this.#userKey(s.userId), this.#byCreated, this.#byExpiry],
        [
          s.id,
          ...times.map(String),
          s.ip,
          first,
          String(-s.createdAt),
          String(expiresAt(s)),
          String(keyDeadline),
          notAfter === undefined ? '' : String(Math.floor(notAfter)),
          ...rest,
        ],
      );
    } catch (error) {
      if (notAfter !== undefined && refusedLate(error, 'late write')) {
        throw new LateWriteError(s.id, notAfter);
      }
      throw error;
    }
  }

  /** create() for many sessions, CREATE_MANY_CHUNK to a script (see CREATE_MANY). */
  async createMany(sessions: readonly SessionRecord[]): Promise<void> {
    for (let i = 0; i < sessions.length; i += CREATE_MANY_CHUNK) {
      const chunk = sessions.slice(i, i + CREATE_MANY_CHUNK);
      const keys = [this.#byCreated, this.#byExpiry];
      const args: string[] = [];
      for (const s of chunk) {
        const keyDeadline = this.#checkNew(s);
        const parts = userAgentParts(s.userAgent);
        keys.push(this.#sessionKey(s.id), this.#userKey(s.userId));
        args.push(
          s.id,
          ...[s.userId, s.createdAt, s.lastSeenAt, s.idleExpiresAt, s.absoluteExpiresAt].map(
            String,
          ),
          s.ip,
          String(-s.createdAt),
          String(expiresAt(s)),
          String(keyDeadline),
          String(parts.length),
          ...parts,
        );
      }
      await this.#run(CREATE_MANY, keys, args);
    }
  }

  /** A new session's key deadline, after checking that it may be stored. */
  #checkNew(s: SessionRecord): number {
    const times = [s.userId, s.createdAt, s.lastSeenAt, s.idleExpiresAt, s.absoluteExpiresAt];
    if (!times.every(Number.isSafeInteger)) {
      throw new RangeError(`session ${s.id}: user id and times must be whole numbers`);
    }
    const keyDeadline = s.absoluteExpiresAt + this.#retentionMs;
    if (keyDeadline <= Date.now()) {
      throw new RangeError(`session ${s.id}: its retention ended before it was stored`);
    }
    return keyDeadline;
  }

  /** The session, or null when it is missing or its hash cannot be read (then quarantined). */
  async get(id: string): Promise<SessionRecord | null> {
    const tracked = this.#tracked;
    // While the tracking connection is away (reconnecting, or a Redis without RESP3) the main
    // connection answers, and nothing is kept.
    const found = tracked?.ready
      ? await tracked.load(this.#sessionKey(id), (client) => this.#fetch(id, client), keepRecord)
      : await this.#fetch(id);
    if (found === 'corrupt') await this.#quarantine([{ id, score: 0 }]);
    return typeof found === 'object' ? found : null;
  }

  memoryStats(): ReadCacheStats | undefined {
    return this.#tracked?.stats();
  }

  /** The session as last read, when Redis has reported no change to it since (see get). */
  peek(id: string): SessionRecord | undefined {
    return this.#tracked?.peek<SessionRecord>(this.#sessionKey(id));
  }

  /** Slides a readable session and its expiry index entry in one script; never creates. */
  async touch(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<boolean> {
    if (!Number.isSafeInteger(lastSeenAt) || !Number.isSafeInteger(idleExpiresAt)) {
      throw new RangeError(`session ${id}: touch times must be whole numbers`);
    }
    const touched = await this.#run(
      TOUCH,
      [this.#sessionKey(id), this.#byExpiry],
      [id, String(lastSeenAt), String(idleExpiresAt)],
    );
    // Redis's invalidation follows; this instance's next request need not wait for it.
    this.#tracked?.forget(this.#sessionKey(id));
    return touched === 1;
  }

  /** Removes the session key and its index entries; `deleted` when a key was there. */
  async delete(id: string): Promise<DeleteOutcome> {
    const [outcome] = await this.#deleteChunk([id]);
    return outcome ?? 'not_found';
  }

  /**
   * Deletes in chunks of 200, one atomic script each. Duplicates are attempted once.
   *
   * When a chunk fails after earlier ones succeeded, returns the outcomes Redis confirmed and
   * leaves out the rest (tells `onPartialFailure`): the failed chunk may or may not have run,
   * so claiming nothing about it is the honest answer, and running it again is safe. When
   * nothing was confirmed, throws, so a store that is down reads as down.
   */
  async deleteMany(ids: readonly string[]): Promise<Map<string, DeleteOutcome>> {
    return this.#inChunks(ids, (chunk) => this.#deleteChunk(chunk));
  }

  /**
   * deleteMany whose script also answers each deleted hash's fields, so no read goes first.
   * Chunks of 200, with the same partial answer as deleteMany when a later chunk fails.
   */
  async takeMany(ids: readonly string[]): Promise<Map<string, Taken>> {
    return this.#inChunks(ids, (chunk) => this.#takeChunk(chunk));
  }

  /**
   * The user's index, newest first: ids only, no session read (see takeOfUser). One reply holds
   * up to USER_IDS_AT_ONCE (the walk by cursor took a round trip per 500); past that, the walk.
   */
  async userSessionIds(userId: number): Promise<string[]> {
    const key = this.#userKey(userId);
    const ids = await this.#client.zRange(key, '-inf', '+inf', {
      BY: 'SCORE',
      LIMIT: { offset: 0, count: USER_IDS_AT_ONCE },
    });
    if (ids.length < USER_IDS_AT_ONCE) return ids;
    return (await this.#collect(key, '-inf', '+inf')).map((e) => e.value);
  }

  /**
   * Ends one user's sessions, the owner checked inside the same script (END_OF_USER), and sets
   * each aside unread: chunks of 200, with deleteMany's partial answer. Until collectSetAside
   * reads them, they are still in the global indexes, and this store's readers of those wait
   * for it (SetAsideDebt).
   */
  async takeOfUser(userId: number, ids: readonly string[]): Promise<Map<string, TakenOfUser>> {
    if (!Number.isSafeInteger(userId)) throw new RangeError(`user id ${userId} is not an integer`);
    return this.#inChunks(ids, async (chunk) => {
      const keys = [this.#userKey(userId), this.#byCreated, this.#byExpiry, this.#unreadable];
      for (const id of chunk) keys.push(this.#sessionKey(id), this.#setAsideKey(id));
      let answer: unknown;
      try {
        answer = await this.#run(END_OF_USER, keys, [
          String(userId),
          String(QUARANTINE_TTL_MS),
          ...chunk,
        ]);
      } catch (error) {
        // It may have run, its answer lost: the sweep collects whatever it set aside.
        this.#setAside.owe(chunk, false);
        throw error;
      }
      // No fence per chunk: the revocation waits out every chunk's invalidations with one
      // (see fence), instead of a PING queued behind the other chunks in flight after each.
      this.#forgetTaken(chunk);
      if (!Array.isArray(answer) || answer.length !== chunk.length) {
        throw new Error(`redis end-of-user script answered ${JSON.stringify(answer)}`);
      }
      const outcomes = answer.map((a, j): TakenOfUser => {
        if (a === 0) return 'not_found';
        const deadline = typeof a === 'string' ? Number(a) : Number.NaN;
        if (!Number.isSafeInteger(deadline)) return 'unreadable';
        return { setAside: true, id: chunk[j]!, expiresAt: deadline };
      });
      this.#setAside.owe(
        outcomes.flatMap((o) => (typeof o === 'object' ? [o.id] : [])),
        true,
      );
      return outcomes;
    });
  }

  /**
   * What takeOfUser set aside, read and deleted, and its global index entries removed:
   * DELETE_CHUNK a script. Should Redis not answer, the ids stay owed and a sweep collects
   * them later (SetAsideDebt).
   */
  async collectSetAside(ids: readonly string[]): Promise<Map<string, Taken>> {
    return this.#setAside.collect(ids, () => this.#collectChunks(ids));
  }

  settled(): Promise<void> {
    return this.#setAside.settled();
  }

  onLateCollection(listener: (collected: number) => void): () => void {
    this.#setAside.late.add(listener);
    return () => this.#setAside.late.delete(listener);
  }

  async #collectChunks(ids: readonly string[]): Promise<Map<string, Taken>> {
    const outcomes = new Map<string, Taken>();
    for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
      const chunk = ids.slice(i, i + DELETE_CHUNK);
      const keys = [this.#byCreated, this.#byExpiry];
      for (const id of chunk) keys.push(this.#setAsideKey(id), this.#sessionKey(id));
      const answer = await this.#run(COLLECT_SET_ASIDE, keys, chunk);
      if (!Array.isArray(answer) || answer.length !== chunk.length) {
        throw new Error(`redis collect script answered ${JSON.stringify(answer)}`);
      }
      for (const [j, a] of answer.entries()) {
        const id = chunk[j]!;
        if (a === 0) outcomes.set(id, 'not_found');
        else outcomes.set(id, (Array.isArray(a) && fromFields(id, a)) || 'unreadable');
      }
    }
    return outcomes;
  }

  /** Each distinct id once, DELETE_CHUNK at a time, with deleteMany's partial answer. */
  async #inChunks<T>(
    ids: readonly string[],
    run: (chunk: string[]) => Promise<readonly (T | undefined)[]>,
  ): Promise<Map<string, T | 'not_found'>> {
    const unique = [...new Set(ids)];
    const outcomes = new Map<string, T | 'not_found'>();

    for (let i = 0; i < unique.length; i += DELETE_CHUNK) {
      const chunk = unique.slice(i, i + DELETE_CHUNK);
      try {
        const results = await run(chunk);
        for (const [j, id] of chunk.entries()) outcomes.set(id, results[j] ?? 'not_found');
      } catch (error) {
        if (outcomes.size === 0) throw error;
        this.#onPartialFailure?.(error);
        break;
      }
    }

    return outcomes;
  }

  /**
   * One script of at most TAKE_EXPIRED_CHUNK (50) due entries (fewer than asked when `limit` is
   * larger; `done` then still tells whether more are due). Concurrent calls each take different
   * entries: every script removes what it read before the next one runs.
   */
  async takeExpired(
    before: number,
    limit: number,
    options: TakeOptions = {},
  ): Promise<ExpiredBatch> {
    const size = Math.min(Math.floor(limit), TAKE_EXPIRED_CHUNK);
    if (!(size > 0)) return { sessions: [], done: true };
    const { notAfter } = options;
    const answer = await this.#run(
      TAKE_EXPIRED,
      [this.#byCreated, this.#byExpiry, this.#unreadable],
      [
        `${this.#prefix}{u`,
        '}:sessions',
        this.#sessionKey(''),
        String(before),
        String(size),
        String(QUARANTINE_TTL_MS),
        this.#setAsideKey(''),
        notAfter === undefined ? '' : String(Math.floor(notAfter)),
      ],
    ).catch((error: unknown) => {
      if (notAfter !== undefined && refusedLate(error, 'late take')) {
        throw new LateTakeError(notAfter);
      }
      throw error;
    });
    if (!Array.isArray(answer) || (answer.length - 1) % 2 !== 0) {
      throw new Error(`redis takeExpired script answered ${JSON.stringify(answer)}`);
    }
    const due = Number(answer[0]);
    const sessions: SessionRecord[] = [];
    for (let i = 1; i < answer.length; i += 2) {
      const fields = answer[i + 1];
      const session = Array.isArray(fields) ? fromFields(String(answer[i]), fields) : null;
      // The script read it as readable with the same rule; a mismatch would be a bug here.
      if (session) sessions.push(session);
    }
    const batch = { sessions, done: due < size };
    options.taken?.(batch);
    return batch;
  }

  /** The user's sessions from their index, newest first; entries whose hash is gone are pruned. */
  async listByUser(userId: number): Promise<SessionRecord[]> {
    const entries = await this.#collect(this.#userKey(userId), '-inf', '+inf');
    const candidates = entries.map((e) => ({ id: e.value, score: e.score, owner: userId }));
    const loaded = await this.#load(candidates);
    await this.#prune(loaded.dangling);

    return loaded.records;
  }

  /**
   * A page of sessions, newest first (status expired: most recently expired first, see
   * SessionPage). `total` is counted from the indexes, so it is exact while
   * they agree with the data, which every write keeps in one script. An entry whose hash is
   * gone (its TTL ran out before cleanup reached it) counts until a reader meets it; the reader
   * then leaves it out, adds it to `skipped` and prunes it.
   */
  async list(q: SessionQuery): Promise<SessionPage> {
    await this.#setAside.settled();
    const page = await this.#listPage(q);
    if (q.countUpTo !== undefined && page.total > q.countUpTo) {
      return { ...page, total: Math.max(q.countUpTo, 0), totalCapped: true };
    }
    return page;
  }

  async #listPage(q: SessionQuery): Promise<SessionPage> {
    const filter = userFilterOf(q);
    if (filter !== null && q.countUpTo !== undefined && q.userIds === undefined) {
      // A console page: learn whether the filter is narrow before reading any user's index.
      const first = await this.#usersAfter(filter, null);
      if (first.length > this.#fewUsers) return this.#broadPage(q, filter, first);
      return this.#fewUsersPage(q, first);
    }
    const users = await this.#userScope(q);
    if (users?.length === 0) return { items: [], total: 0, skipped: 0 };

    if (users === null && (q.status ?? 'all') === 'all') {
      const [min, max] = createdRange(q);
      const page = { offset: q.offset, count: q.limit };
      const [total, ids] = await Promise.all([
        this.#client.zCount(this.#byCreated, min, max),
        // LIMIT with a count of 0 or less would mean "no limit" to Redis.
        q.limit > 0
          ? this.#client.zRange(this.#byCreated, min, max, { BY: 'SCORE', LIMIT: page })
          : [],
      ]);
      const loaded = await this.#load(ids.map((id) => ({ id, score: 0 })));
      await this.#prune(loaded.dangling);
      return { items: loaded.records, total, skipped: loaded.skipped };
    }

    if (users === null) {
      const page = await this.#statusPage(q);
      if (page !== null) return page;
    }
    const found = await this.#candidates(q, users);
    const page = found.ids.slice(q.offset, q.offset + Math.max(q.limit, 0));
    const loaded = await this.#load(page);
    await this.#prune(loaded.dangling);

    return {
      items: loaded.records,
      total: found.ids.length,
      skipped: found.skipped + loaded.skipped,
    };
  }

  /**
   * A page filtered by status alone, without walking the fleet: the total from the expiry
   * index (one ZCOUNT, less the matching entries outside the created range, which are few: the
   * sign-ins since `as_of`). Status active walks the creation index newest first until the page
   * is full, by a script that tests each deadline inside Redis (STATUS_WALK), so only matches
   * cross the wire; status expired is listed most recently expired first, so its page is a
   * range of the expiry index below `now`, where every entry has expired: one ZRANGE when no
   * expired entry lies outside the created range, else a walk of that range testing creation
   * times (EXPIRED_WALK). Either way it reads about the page, however many sessions are live
   * (measured at 1,000,000 sessions: 278 ms per page before, when expired sessions were listed
   * newest created first and the walk passed some 56,000 live ones). Null when the created
   * range leaves many entries outside it (a date filter): then the full walk. Like list()'s
   * unfiltered total, an entry whose hash is gone counts until a reader prunes it.
   *
   * LIMITATION: a deep page reads what lies before it (a ZRANGE at an offset walks there too):
   * page 100 reads about 5,000 entries.
   */
  async #statusPage(q: SessionQuery): Promise<SessionPage | null> {
    const status = q.status ?? 'all';
    if (status === 'all') return null;
    const counted = await this.#statusTotal(q);
    if (counted === null) return null;

    if (status === 'expired' && counted.outside === 0) {
      // No expired entry lies outside the created range (the usual case: a session ends after
      // it began, so an as_of snapshot leaves out none that ended by then), so the expiry
      // index's range is the listing: the page is one ZRANGE at its offset, like the
      // unfiltered page's on the creation index.
      const ids =
        q.limit > 0
          ? await this.#client.zRange(this.#byExpiry, String(q.now), '-inf', {
              BY: 'SCORE',
              REV: true,
              LIMIT: { offset: q.offset, count: q.limit },
            })
          : [];
      const page = ids.map((id) => ({ id, score: 0 }));
      return this.#finish({ ...q, offset: 0 }, page, counted.total, 0);
    }
    const { ids, unscored } = await this.#walkMatches(q, null);
    if (unscored.length > 0) await this.#prune((await this.#load(unscored)).dangling);
    return this.#finish(q, ids, counted.total, unscored.length);
  }

  /**
   * The first `offset + limit` entries of the creation index (in the query's range) whose
   * deadline matches its status and, given `users`, whose hash names one of them: walked by
   * STATUS_WALK, a few thousand entries per call. `exhausted` says the range ended. Status
   * expired walks the expiry index instead, most recently expired first (#walkExpired).
   */
  async #walkMatches(
    q: SessionQuery,
    users: readonly number[] | null,
  ): Promise<{ ids: Candidate[]; unscored: Candidate[]; exhausted: boolean }> {
    const [min, max] = createdRange(q);
    const wanted = q.offset + Math.max(q.limit, 0);
    const ids: Candidate[] = [];
    const unscored: Candidate[] = [];
    if (q.status === 'expired') {
      if (wanted === 0) return { ids, unscored, exhausted: false };
      const exhausted = await this.#walkExpired(
        q,
        users,
        false,
        () => wanted - ids.length,
        (entries) => {
          for (const e of entries)
            (e.kind === 'm' ? ids : unscored).push({ id: e.id, score: e.score });
          return ids.length >= wanted;
        },
      );
      return { ids, unscored, exhausted };
    }
    const tail = [this.#sessionKey(''), ...(users ?? []).map(String)];
    let lower = min;
    let after = '';
    let exhausted = false;
    while (ids.length < wanted) {
      const status = q.status ?? 'all';
      const args = [lower, max, after, String(q.now), status, String(wanted - ids.length)];
      const answer = await this.#run(
        STATUS_WALK,
        [this.#byCreated, this.#byExpiry],
        [...args, String(STATUS_WALK_BUDGET), ...tail],
      );
      if (!Array.isArray(answer) || answer.length % 3 !== 0) {
        throw new Error(`redis status walk answered ${JSON.stringify(answer)}`);
      }
      for (let j = 3; j < answer.length; j += 3) {
        const entry = { id: String(answer[j]), score: Number(answer[j + 1]) };
        (answer[j + 2] === 'm' ? ids : unscored).push(entry);
      }
      exhausted = Number(answer[0]) === 1;
      // A run of one creation time longer than the budget would leave no cursor: stop there.
      if (exhausted || String(answer[2]) === '') break;
      lower = String(answer[1]);
      after = String(answer[2]);
    }
    return { ids, unscored, exhausted };
  }

  /**
   * Walks the sessions expired at `q.now` (in the query's created range and, given `users`,
   * owned by one of them) most recently expired first, by EXPIRED_WALK, a few thousand expiry
   * index entries per call resumed at a (deadline, id) cursor. Each call's entries go to `take`
   * (score: the deadline; owner: the hash's user when `owners` is set, else ''), which answers
   * true to stop; `want` is how many matches the next call may stop after. Answers whether the
   * index ended.
   */
  async #walkExpired(
    q: Filters,
    users: readonly number[] | null,
    owners: boolean,
    want: () => number,
    take: (entries: ExpiredEntry[]) => boolean | Promise<boolean>,
  ): Promise<boolean> {
    const bounds = [q.createdFrom, q.createdTo].map((t) => (t === undefined ? '' : String(t)));
    const tail = [this.#sessionKey(''), owners ? '1' : '0', ...(users ?? []).map(String)];
    let high = String(q.now);
    let after = '';
    for (;;) {
      const args = [high, after, ...bounds, String(want()), String(STATUS_WALK_BUDGET)];
      const answer = await this.#run(
        EXPIRED_WALK,
        [this.#byExpiry, this.#byCreated],
        [...args, ...tail],
      );
      if (!Array.isArray(answer) || answer.length % 4 !== 3) {
        throw new Error(`redis expired walk answered ${JSON.stringify(answer)}`);
      }
      const entries: ExpiredEntry[] = [];
      for (let j = 3; j < answer.length; j += 4) {
        entries.push({
          id: String(answer[j]),
          score: Number(answer[j + 1]),
          kind: answer[j + 2] === 'm' ? 'm' : 'u',
          owner: String(answer[j + 3]),
        });
      }
      if (await take(entries)) return false;
      if (Number(answer[0]) === 1) return true;
      // A run of one deadline longer than the budget would leave no cursor: stop there.
      if (String(answer[2]) === '') return false;
      high = String(answer[1]);
      after = String(answer[2]);
    }
  }

  /**
   * How many sessions match a status-only query, from the expiry index (one ZCOUNT, less the
   * matching entries outside the created range, which are few: the sign-ins since `as_of`).
   * Null when the created range leaves many entries outside it (a date filter).
   */
  async #statusTotal(q: Filters): Promise<{ total: number; outside: number } | null> {
    const status = q.status ?? 'all';
    if (status === 'all') return null;
    const active = status === 'active';
    const [min, max] = createdRange(q);
    const outside: Array<[string, string]> = [];
    if (min !== '-inf') outside.push(['-inf', String(-q.createdTo!)]);
    if (max !== '+inf') outside.push([`(${max}`, '+inf']);
    const outsideCounts = await Promise.all(
      outside.map(([lo, hi]) => this.#client.zCount(this.#byCreated, lo, hi)),
    );
    if (outsideCounts.reduce((a, b) => a + b, 0) > STATUS_OUTSIDE_LIMIT) return null;

    const matches = (deadline: number) => deadline > q.now === active;
    let outsideMatches = 0;
    const total = await this.#client.zCount(
      this.#byExpiry,
      active ? `(${q.now}` : '-inf',
      active ? '+inf' : String(q.now),
    );
    for (const [lo, hi] of outside) {
      for await (const chunk of this.#walk(this.#byCreated, lo, hi, WALK_CHUNK)) {
        const deadlines = await this.#client.zmScore(
          this.#byExpiry,
          chunk.map((e) => e.value),
        );
        for (const d of deadlines)
          if (d !== null && d !== undefined && matches(d)) outsideMatches += 1;
      }
    }
    return { total: Math.max(total - outsideMatches, 0), outside: outsideMatches };
  }

  /** Reads the page's hashes, prunes what is gone, and answers the page. */
  async #finish(
    q: SessionQuery,
    ids: readonly Candidate[],
    total: number,
    skipped: number,
  ): Promise<SessionPage> {
    const loaded = await this.#load(ids.slice(q.offset, q.offset + Math.max(q.limit, 0)));
    await this.#prune(loaded.dangling);
    return { items: loaded.records, total, skipped: skipped + loaded.skipped };
  }

  /**
   * A console page whose user filter matches at most fewUsers users. Their sessions are
   * counted first (one ZCOUNT per user, in scripts), and that share of the fleet picks the
   * cheaper way to the page: walking the creation index reads about `offset + limit` divided
   * by the share, merging reads each user's index. Role admin (8% of sessions) walks; one
   * user, or a rare email, merges.
   */
  async #fewUsersPage(q: SessionQuery, users: number[]): Promise<SessionPage> {
    if (users.length === 0) return { items: [], total: 0, skipped: 0 };
    const [min, max] = createdRange(q);
    const wanted = q.offset + Math.max(q.limit, 0);
    const [theirs, all] = await Promise.all([
      this.#countIndexes(users, { ...q, status: 'all' }, Number.MAX_SAFE_INTEGER),
      this.#client.zCount(this.#byCreated, min, max),
    ]);
    if (theirs === 0) return { items: [], total: 0, skipped: 0 };
    // Cost units: a walked entry costs about two reads (its hash and deadline); a merged user
    // about four plus the entries it hands over.
    if (2 * wanted * (all / theirs) > 4 * users.length + theirs) return this.#fewPage(q, users);

    const found = await this.#walkMatches(q, users);
    if (found.unscored.length > 0) await this.#prune((await this.#load(found.unscored)).dangling);
    const status = q.status ?? 'all';
    const total =
      status === 'all'
        ? theirs
        : found.exhausted
          ? found.ids.length
          : Math.max(
              found.ids.length,
              await this.#countIndexes(users, q, q.countUpTo ?? Number.MAX_SAFE_INTEGER),
            );
    return this.#finish(q, found.ids, total, found.unscored.length);
  }

  /**
   * A console page whose user filter matches few users: each user's index gives its first
   * `offset + limit` matches and its count, in one script per chunk of users, so the reads
   * follow the users and the page rather than every session of theirs (but with a status,
   * each of their entries in the range is tested to count it).
   */
  async #fewPage(q: SessionQuery, users: number[]): Promise<SessionPage> {
    if (users.length === 0) return { items: [], total: 0, skipped: 0 };
    const [min, max] = createdRange(q);
    const wanted = q.offset + Math.max(q.limit, 0);
    let total = 0;
    const found: Candidate[] = [];
    for (let i = 0; i < users.length; i += COUNT_USER_CHUNK) {
      const chunk = users.slice(i, i + COUNT_USER_CHUNK);
      const keys = [this.#byExpiry, ...chunk.map((u) => this.#userKey(u))];
      const args = [
        min,
        max,
        q.status ?? 'all',
        String(q.now),
        String(wanted),
        ...chunk.map(String),
      ];
      const answer = await this.#run(MERGE_USERS, keys, args);
      if (!Array.isArray(answer) || answer.length % 3 !== 1) {
        throw new Error(`redis merge script answered ${JSON.stringify(answer)}`);
      }
      total += Number(answer[0]);
      for (let j = 1; j < answer.length; j += 3) {
        found.push({
          id: String(answer[j]),
          score: Number(answer[j + 1]),
          owner: Number(answer[j + 2]),
        });
      }
    }
    found.sort(q.status === 'expired' ? mostRecentlyExpired : byScoreThenId);
    return this.#finish(q, found.slice(0, wanted), total, 0);
  }

  /**
   * A console page whose user filter matches many users (`first` holds the lowest
   * fewUsers + 1 of them): the page comes from a walk of a global index (see #scan) that asks
   * the users table only about the owners it meets, and the total is counted from the users'
   * own indexes only up to the page's cap. Neither reads every matching user's sessions.
   */
  async #broadPage(q: SessionQuery, filter: UserFilter, first: number[]): Promise<SessionPage> {
    const known = new Map<number, boolean>(first.map((id) => [id, true]));
    const owned = async (owners: number[]): Promise<Set<number>> => {
      const unknown = owners.filter((u) => !known.has(u));
      if (unknown.length > 0) {
        const yes = new Set(await this.#resolveUserIds(filter, { among: unknown }));
        for (const u of unknown) known.set(u, yes.has(u));
      }
      return new Set(owners.filter((u) => known.get(u) === true));
    };
    const found = await this.#scan(q, owned);
    const total = found.exhausted
      ? found.matched
      : Math.max(found.matched, await this.#countUsers(q, filter, first));
    return this.#finish(q, found.ids, total, found.skipped);
  }

  /**
   * Counts the sessions of the users matching `filter` (starting with `first`, then page after
   * page of users), stopping once `q.countUpTo` is reached: the cost follows the cap.
   */
  async #countUsers(q: SessionQuery, filter: UserFilter, first: number[]): Promise<number> {
    const cap = q.countUpTo ?? Number.MAX_SAFE_INTEGER;
    let count = 0;
    let batch = first;
    for (;;) {
      count += await this.#countIndexes(batch, q, cap - count);
      if (count >= cap || batch.length <= this.#fewUsers) return count;
      batch = await this.#usersAfter(filter, batch[batch.length - 1]!);
    }
  }

  /** Sessions of these users matching the query's range and status, counted up to `cap`. */
  async #countIndexes(users: readonly number[], q: Filters, cap: number): Promise<number> {
    const [min, max] = createdRange(q);
    const call = (from: number, left: number) => {
      const keys = users.slice(from, from + COUNT_USER_CHUNK).map((u) => this.#userKey(u));
      const args = [min, max, q.status ?? 'all', String(q.now), String(left)];
      return this.#run(COUNT_USERS, [this.#byExpiry, ...keys], args).then(Number);
    };
    const starts: number[] = [];
    for (let i = 0; i < users.length; i += COUNT_USER_CHUNK) starts.push(i);
    if (cap === Number.MAX_SAFE_INTEGER) {
      // Nothing to stop at: the scripts go out together (pipelined), not one round trip each.
      return (await Promise.all(starts.map((i) => call(i, cap)))).reduce((a, b) => a + b, 0);
    }
    let count = 0;
    for (const i of starts) {
      if (count >= cap) break;
      count += await call(i, cap - count);
    }
    return count;
  }

  /**
   * Up to fewUsers + 1 ids of users matching the filter, ascending, after `after`. A resolver
   * that ignores the options answers every match; then this keeps those after `after`.
   */
  async #usersAfter(filter: UserFilter, after: number | null): Promise<number[]> {
    const ids = await this.#resolveUserIds(filter, {
      limit: this.#fewUsers + 1,
      ...(after === null ? {} : { after }),
    });
    const unique = [...new Set(ids)].filter((id) => after === null || id > after);
    return unique.sort((a, b) => a - b);
  }

  /**
   * Matching index entries for a page: walks the creation index newest first and tests each
   * entry's user and deadline, as one script reads them per chunk, until `offset + limit`
   * match. `owned` answers which of a chunk's owners the user filter matches. `matched` counts
   * every match met; `exhausted` says the walk reached the end of the range.
   *
   * LIMITATION: the walk costs what lies before the page: page 1 of a filter matching a share
   * p of the sessions reads about 50 / p entries, and page 100 a hundred times that (for a
   * 10% filter, about 50,000 entries: a second or so). The few-users merge does not have this.
   * A status multiplies the share by that status's: role admin and status active on a million
   * sessions of which almost none were still active walked the whole index (7 s, seen here).
   * So with status active and few live sessions (#fewLive), the live range of the expiry
   * index is read whole instead; between that and a live share high enough for the creation
   * walk to end soon (say 2% to 5% of a million live), a page still costs hundreds of ms.
   */
  async #scan(
    q: SessionQuery,
    owned: (owners: number[]) => Promise<Set<number>>,
  ): Promise<{ ids: Candidate[]; skipped: number; matched: number; exhausted: boolean }> {
    const status = q.status ?? 'all';
    const wanted = q.offset + Math.max(q.limit, 0);
    if (wanted === 0) return { ids: [], skipped: 0, matched: 0, exhausted: false };
    const [min, max] = createdRange(q);
    const found: Candidate[] = [];
    const dangling: Candidate[] = [];
    const corrupt: Candidate[] = [];
    let skipped = 0;
    let exhausted = true;

    if (status === 'expired') {
      // Most recently expired first: the expiry index holds nothing else in the way.
      const unscored: Candidate[] = [];
      exhausted = await this.#walkExpired(
        q,
        null,
        true,
        () => SCAN_CHUNK,
        async (entries) => {
          const owners = [...new Set(entries.map((e) => int(e.owner)).filter((u) => u !== null))];
          const allowed = await owned(owners);
          for (const e of entries) {
            const user = int(e.owner);
            if (e.kind === 'u') unscored.push({ id: e.id, score: e.score });
            else if (user !== null && allowed.has(user)) {
              found.push({ id: e.id, score: e.score, owner: user });
            } else if (e.owner === '') dangling.push({ id: e.id, score: e.score });
            else if (user === null) corrupt.push({ id: e.id, score: 0 });
          }
          return found.length >= wanted;
        },
      );
      skipped = unscored.length + dangling.length + corrupt.length;
      dangling.push(...(await this.#load(unscored)).dangling);
    } else {
      // Walks `index` over [lo, hi], probing each entry's hash for its owner and its score in
      // `other`; hands on the readable entries of matching owners, and says whether it stopped.
      const walk = async (
        [index, lo, hi, other]: [string, string, string, string],
        take: (entry: { value: string; score: number }, user: number, other: number) => void,
        enough: () => boolean,
      ): Promise<boolean> => {
        for await (const chunk of this.#walk(index, lo, hi, SCAN_CHUNK)) {
          const probed = await this.#scanProbe(
            other,
            chunk.map((e) => e.value),
          );
          const owners = [
            ...new Set(probed.map((p) => p.user).filter((u) => typeof u === 'number')),
          ];
          const allowed = await owned(owners);
          chunk.forEach((e, j) => {
            const { user, score } = probed[j]!;
            if (user === 'missing') {
              dangling.push({ id: e.value, score: e.score });
              skipped += 1;
            } else if (user === 'corrupt') {
              corrupt.push({ id: e.value, score: 0 });
              skipped += 1;
            } else if (score === null) {
              // A hash the other index lacks: not listed, as the other listings do.
              skipped += 1;
            } else if (allowed.has(user)) {
              take(e, user, score);
            }
          });
          if (enough()) return true;
        }
        return false;
      };
      const live = `(${q.now}`;
      if (status === 'active' && (await this.#fewLive(live, min, max, wanted))) {
        // Few live sessions: the creation index would be walked past every ended one before a
        // page of matches (on a fleet an hour after seeding, all of a million for role admin),
        // so every live one is read instead, its creation score probed, and the matches sorted.
        // Creation scores are negated times: the query's [createdFrom, createdTo) on -score.
        const inRange = (score: number) =>
          (q.createdFrom === undefined || -score >= q.createdFrom) &&
          (q.createdTo === undefined || -score < q.createdTo);
        await walk(
          [this.#byExpiry, live, '+inf', this.#byCreated],
          (e, user, created) => {
            if (inRange(created)) found.push({ id: e.value, score: created, owner: user });
          },
          () => false,
        );
        found.sort(byScoreThenId);
      } else {
        const stopped = await walk(
          [this.#byCreated, min, max, this.#byExpiry],
          (e, user, deadline) => {
            if (status === 'all' || deadline > q.now === (status === 'active')) {
              found.push({ id: e.value, score: e.score, owner: user });
            }
          },
          () => found.length >= wanted,
        );
        exhausted = !stopped;
      }
    }
    await this.#prune(dangling);
    await this.#quarantine(corrupt);

    return { ids: found.slice(0, wanted), skipped, matched: found.length, exhausted };
  }

  /**
   * Whether #scan should read every live session rather than walk the creation range: at most
   * activeWalk of them, and fewer than the walk would pass. The walk passes about `wanted`
   * divided by the live share of the range and by the filter's share of users, which is not
   * known here; taken as 10%, the live read is the shorter while live² ≤ 10 × wanted × range.
   * (With 7,400 live of 100,000, the walk found a page of admins in 1,000 entries, 10 ms; the
   * live read took 80 ms.)
   */
  async #fewLive(live: string, min: string, max: string, wanted: number): Promise<boolean> {
    const [alive, range] = await Promise.all([
      this.#client.zCount(this.#byExpiry, live, '+inf'),
      this.#client.zCount(this.#byCreated, min, max),
    ]);
    return alive <= this.#activeWalk && alive * alive <= 10 * wanted * range;
  }

  /** For each id: its hash's user (or missing/corrupt) and its score in `index`. */
  async #scanProbe(
    index: string,
    ids: readonly string[],
  ): Promise<Array<{ user: number | 'missing' | 'corrupt'; score: number | null }>> {
    if (ids.length === 0) return [];
    const keys = [index, ...ids.map((id) => this.#sessionKey(id))];
    const answer = await this.#run(SCAN_PROBE, keys, [...ids]);
    if (!Array.isArray(answer) || answer.length !== ids.length * 2) {
      throw new Error(`redis scan script answered ${JSON.stringify(answer)}`);
    }
    return ids.map((_, i) => {
      const raw = String(answer[i * 2]);
      const score = String(answer[i * 2 + 1]);
      return {
        user: int(raw) ?? (raw === '' ? 'missing' : 'corrupt'),
        score: score === '' ? null : Number(score),
      };
    });
  }

  /** Ids of every readable session matching the filters, newest first. */
  async listIds(q: Filters): Promise<string[]> {
    await this.#setAside.settled();
    const users = await this.#userScope(q);
    if (users?.length === 0) return [];

    const found = await this.#candidates(q, users);
    const loaded = await this.#load(found.ids);
    await this.#prune(loaded.dangling);

    return loaded.records.map((r) => r.id);
  }

  /** Readable sessions whose deadline is at or before `before`, soonest first, at most `limit`. */
  async listExpired(before: number, limit: number): Promise<SessionRecord[]> {
    await this.#setAside.settled();
    const records: SessionRecord[] = [];
    const dangling: Candidate[] = [];
    if (limit <= 0) return records;

    const size = Math.min(limit, WALK_CHUNK);
    for await (const chunk of this.#walk(this.#byExpiry, '-inf', String(before), size)) {
      const loaded = await this.#load(chunk.map((e) => ({ id: e.value, score: e.score })));
      dangling.push(...loaded.dangling);
      records.push(...loaded.records.slice(0, limit - records.length));
      if (records.length >= limit) break;
    }
    // Cleanup calls this first, so here is where entries outliving their hash mostly go.
    await this.#prune(dangling);

    return records;
  }

  /**
   * Counts from the expiry index (two ZCOUNTs), without reading any session; like `total` in
   * list(), an entry whose hash is gone counts until a reader prunes it.
   */
  async counts(now: number): Promise<{ active: number; expired: number }> {
    await this.#setAside.settled();
    const [active, expired] = await Promise.all([
      this.#client.zCount(this.#byExpiry, `(${now}`, '+inf'),
      this.#client.zCount(this.#byExpiry, '-inf', String(now)),
    ]);
    return { active, expired };
  }

  async ping(): Promise<number> {
    const start = performance.now();
    await this.#client.ping();
    return performance.now() - start;
  }

  async time(): Promise<number> {
    const [seconds, micros] = await this.#client.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** The newest readable sessions through the creation index; dangling entries are pruned. */
  async sample(limit: number): Promise<SessionRecord[]> {
    await this.#setAside.settled();
    if (limit <= 0) return [];
    const ids = await this.#client.zRange(this.#byCreated, '-inf', '+inf', {
      BY: 'SCORE',
      LIMIT: { offset: 0, count: limit },
    });
    const loaded = await this.#load(ids.map((id) => ({ id, score: 0 })));
    await this.#prune(loaded.dangling);

    return loaded.records;
  }

  /**
   * Counts the admin and superuser roles exactly from their users' indexes, and the user role
   * as what remains of the expiry index's counts.
   *
   * LIMITATION: the user role is derived, so sessions whose user is gone (and dangling entries
   * not yet pruned) count as the user role's; and the cost grows with the admins' and
   * superusers' sessions, which is small where ordinary users are the bulk. Exact counts for
   * every role would need a per-role index written beside the per-user one.
   */
  async countsByRole(now: number): Promise<Record<Role, SessionTally>> {
    await this.#setAside.settled();
    const out = Object.fromEntries(ROLES.map((r) => [r, { total: 0, active: 0 }])) as Record<
      Role,
      SessionTally
    >;
    const all = await this.counts(now);
    let restTotal = all.active + all.expired;
    let restActive = all.active;
    for (const role of ROLES.filter((r) => r !== 'user')) {
      const users = await this.#resolveUserIds({ role });
      // A chunk of users at a time: node-redis pipelines their reads into few round trips.
      for (let i = 0; i < users.length; i += USER_CHUNK) {
        const tallies = await Promise.all(
          users.slice(i, i + USER_CHUNK).map(async (userId) => {
            const entries = await this.#collect(this.#userKey(userId), '-inf', '+inf');
            return (await this.#deadlines(entries.map((e) => e.value))).filter((d) => d !== null);
          }),
        );
        for (const deadlines of tallies) {
          out[role].total += deadlines.length;
          out[role].active += deadlines.filter((d) => d > now).length;
        }
      }
      restTotal -= out[role].total;
      restActive -= out[role].active;
    }
    out.user = { total: Math.max(0, restTotal), active: Math.max(0, restActive) };

    return out;
  }

  /**
   * Ranks the users met among the newest sessions, then counts each candidate's index exactly.
   *
   * LIMITATION: a user whose sessions are all older than the newest 5,000 is not a candidate,
   * so on a large fleet the list is of the busiest recent users (`sampledFrom` says so). A
   * per-user count zset written with the index would make it exact at any size.
   */
  async topUsers(limit: number): Promise<TopUsers> {
    await this.#setAside.settled();
    if (limit <= 0) return { users: [], sampledFrom: null };
    const [ids, indexed] = await Promise.all([
      this.#client.zRange(this.#byCreated, '-inf', '+inf', {
        BY: 'SCORE',
        LIMIT: { offset: 0, count: TOP_USERS_SAMPLE },
      }),
      this.#client.zCard(this.#byCreated),
    ]);
    const owners = await this.#probe(ids);
    const seen = new Map<number, number>();
    for (const owner of owners) {
      if (typeof owner === 'number') seen.set(owner, (seen.get(owner) ?? 0) + 1);
    }
    const candidates = [...seen]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, limit * 4)
      .map(([userId]) => userId);
    const sizes = await Promise.all(candidates.map((u) => this.#client.zCard(this.#userKey(u))));
    const users = candidates
      .map((userId, i) => ({ userId, sessions: sizes[i] ?? 0 }))
      .filter((u) => u.sessions > 0)
      .sort((a, b) => b.sessions - a.sessions || a.userId - b.userId)
      .slice(0, limit);

    return { users, sampledFrom: indexed > ids.length ? ids.length : null };
  }

  /**
   * Lifetimes and expired counts come from the expiry index (ZCOUNTs). Dangling entries are
   * looked for among the oldest entries of both global indexes, where a hash that outlived its
   * TTL leaves them, and in every user's index while there are few users.
   */
  async healthReport(now: number, edgesMs: readonly number[]): Promise<HealthReport> {
    await this.#setAside.settled();
    const bounds = [now, ...edgesMs.map((e) => now + e)];
    const [remaining, expired, oldest] = await Promise.all([
      Promise.all(
        bounds.map((lower, i) => {
          const upper = bounds[i + 1];
          return this.#client.zCount(
            this.#byExpiry,
            `(${lower}`,
            upper === undefined ? '+inf' : String(upper),
          );
        }),
      ),
      this.#client.zCount(this.#byExpiry, '-inf', String(now)),
      this.#client.zRangeWithScores(this.#byExpiry, '-inf', String(now), {
        BY: 'SCORE',
        LIMIT: { offset: 0, count: 1 },
      }),
    ]);

    const limit = { offset: 0, count: HEALTH_CHECK_LIMIT };
    const [byExpiry, byCreated, expirySize, createdSize, users] = await Promise.all([
      this.#client.zRange(this.#byExpiry, '-inf', '+inf', { BY: 'SCORE', LIMIT: limit }),
      // Creation scores are negated: the oldest sessions sit at the top of the range.
      this.#client.zRange(this.#byCreated, '+inf', '-inf', {
        BY: 'SCORE',
        REV: true,
        LIMIT: limit,
      }),
      this.#client.zCard(this.#byExpiry),
      this.#client.zCard(this.#byCreated),
      this.#resolveUserIds({}),
    ]);
    const [missingCreated, missingExpiry] = [
      await this.#missing(byCreated),
      await this.#missing(byExpiry),
    ];
    const dangling = {
      by_created: missingCreated.length,
      by_expiry: missingExpiry.length,
      user_indexes: 0,
      ended_sessions: await this.#uncollected([...missingCreated, ...missingExpiry]),
    };
    let checked = byCreated.length + byExpiry.length;
    let complete = expirySize <= byExpiry.length && createdSize <= byCreated.length;

    if (users.length <= HEALTH_USER_LIMIT) {
      for (const userId of users) {
        if (checked >= 3 * HEALTH_CHECK_LIMIT) {
          complete = false;
          break;
        }
        const members = await this.#client.zRange(this.#userKey(userId), '-inf', '+inf', {
          BY: 'SCORE',
          LIMIT: limit,
        });
        dangling.user_indexes += (await this.#misfiled(userId, members)).length;
        checked += members.length;
      }
    } else {
      complete = false;
    }

    return {
      remaining,
      expired,
      oldestExpiredAt: oldest[0]?.score ?? null,
      dangling,
      checked,
      complete,
    };
  }

  /**
   * Walks both global indexes and the index of every user (from the users table, and any
   * other user a stored session names), removing entries whose hash is gone, and user index
   * entries that point to another user's session. Hashes that exist but cannot be read are
   * left alone: they are data to look at, not index entries.
   *
   * LIMITATION: the index of a user deleted from the users table who has no stored session
   * left is not found without SCAN; its key expires by its TTL. A walk of a million entries
   * takes seconds; the guard bounds the call, and a second run finishes what a first left.
   */
  async repairIndexes(): Promise<Record<string, number>> {
    // What a revocation just set aside is no damage: its own collection removes it.
    await this.#setAside.settled();
    const removed = { by_created: 0, by_expiry: 0, user_indexes: 0, ended_sessions: 0 };
    const users = new Set(await this.#resolveUserIds({}));

    for (const [key, name] of [
      [this.#byCreated, 'by_created'],
      [this.#byExpiry, 'by_expiry'],
    ] as const) {
      for await (const chunk of this.#walk(key, '-inf', '+inf', WALK_CHUNK)) {
        const ids = chunk.map((e) => e.value);
        const owners = await this.#probe(ids);
        const gone = ids.filter((_, i) => owners[i] === 'missing');
        for (const owner of owners) if (typeof owner === 'number') users.add(owner);
        if (gone.length === 0) continue;
        // Ended sessions whose collection never came (their process stopped first): the copy
        // set aside for their history row goes too, as nothing will read it any more. First,
        // so that a repair cut short leaves the entries by which the next one finds it.
        removed.ended_sessions += await this.#client.del(gone.map((id) => this.#setAsideKey(id)));
        removed[name] += await this.#client.zRem(key, gone);
      }
    }

    for (const userId of users) {
      const key = this.#userKey(userId);
      for await (const chunk of this.#walk(key, '-inf', '+inf', WALK_CHUNK)) {
        const wrong = await this.#misfiled(
          userId,
          chunk.map((e) => e.value),
        );
        if (wrong.length > 0) removed.user_indexes += await this.#client.zRem(key, wrong);
      }
    }

    return removed;
  }

  /**
   * Removes the keys readers met that were no readable session (see `sessions:unreadable`),
   * re-checking each inside the script, with their index entries.
   *
   * LIMITATION: only what a reader met is known: a corrupt key that no index points to is never
   * listed, so it does no harm, but only its TTL (if it has one) removes it; finding it would
   * take a SCAN of the keyspace.
   */
  async removeUnreadable(): Promise<number> {
    const met = Object.entries(await this.#client.hGetAll(this.#unreadable));
    let removed = 0;
    for (let i = 0; i < met.length; i += REMOVE_CHUNK) {
      const chunk = met.slice(i, i + REMOVE_CHUNK);
      const keys = [this.#byCreated, this.#byExpiry, this.#unreadable];
      keys.push(...chunk.map(([id]) => this.#sessionKey(id)));
      const args = [`${this.#prefix}{u`, '}:sessions', ...chunk.flat()];
      removed += Number(await this.#run(REMOVE_UNREADABLE, keys, args));
    }

    return removed;
  }

  /** INFO (every default section) as name → value. */
  async info(): Promise<Record<string, string>> {
    const text = await this.#client.info();
    const fields: Record<string, string> = {};
    for (const line of String(text).split(/\r?\n/)) {
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
    }
    return fields;
  }

  async close(): Promise<void> {
    this.#setAside.stop();
    // The client belongs to the app, which closes it (and may share it with pub/sub, locks).
  }

  /** For each id: its hash's user id, 'missing' when no key is there, 'corrupt' otherwise. */
  async #probe(ids: readonly string[]): Promise<Array<number | 'missing' | 'corrupt'>> {
    const out: Array<number | 'missing' | 'corrupt'> = [];
    for (let i = 0; i < ids.length; i += READ_CHUNK) {
      const chunk = ids.slice(i, i + READ_CHUNK);
      const keys = chunk.map((id) => this.#sessionKey(id));
      const answer = await this.#run(PROBE, keys, []);
      if (!Array.isArray(answer) || answer.length !== chunk.length) {
        throw new Error(`redis probe script answered ${JSON.stringify(answer)}`);
      }
      for (const raw of answer) {
        const user = int(String(raw));
        out.push(user ?? (raw === '' ? 'missing' : 'corrupt'));
      }
    }
    return out;
  }

  /** The ids among these whose hash is gone. */
  async #missing(ids: readonly string[]): Promise<string[]> {
    const owners = await this.#probe(ids);
    return ids.filter((_, i) => owners[i] === 'missing');
  }

  /**
   * How many of these ids (entries whose session is gone) still have the copy takeOfUser set
   * aside: ended sessions whose collection never came, as when their process stopped first.
   */
  async #uncollected(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.#client.exists([...new Set(ids)].map((id) => this.#setAsideKey(id)));
  }

  /** Members of a user's index whose hash is gone or belongs to someone else. */
  async #misfiled(userId: number, ids: readonly string[]): Promise<string[]> {
    const owners = await this.#probe(ids);
    return ids.filter(
      (_, i) => owners[i] === 'missing' || (typeof owners[i] === 'number' && owners[i] !== userId),
    );
  }

  /** Expiry-index deadlines of these ids, null for ids the index does not hold. */
  async #deadlines(ids: readonly string[]): Promise<Array<number | null>> {
    const out: Array<number | null> = [];
    for (let i = 0; i < ids.length; i += READ_CHUNK) {
      out.push(...(await this.#client.zmScore(this.#byExpiry, ids.slice(i, i + READ_CHUNK))));
    }
    return out;
  }

  #sessionKey(id: string): string {
    return `${this.#prefix}s:${id}`;
  }

  #setAsideKey(id: string): string {
    return `${this.#prefix}ended:${id}`;
  }

  // The delete script rebuilds this key from the stored user id: keep the two in step.
  #userKey(userId: number): string {
    return `${this.#prefix}{u${userId}}:sessions`;
  }

  async #run(s: Script, keys: string[], args: string[]): Promise<unknown> {
    const call = { keys, arguments: args };
    try {
      return await this.#client.evalSha(s.sha1, call);
    } catch (error) {
      // After a restart or SCRIPT FLUSH the cache is empty; EVAL runs the script and caches it.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#client.eval(s.source, call);
    }
  }

  /** Returns once the invalidations of every write before it have left Redis (see takeOfUser). */
  async fence(): Promise<void> {
    await invalidationFence(this.#client);
  }

  /** A plain delete is a take whose answer is not needed beyond "was it there". */
  async #deleteChunk(ids: string[]): Promise<DeleteOutcome[]> {
    const taken = await this.#takeChunk(ids);
    return taken.map((t) => (t === 'not_found' ? 'not_found' : 'deleted'));
  }

  /**
   * A take's sessions leave this process's memory at once; other instances' go by Redis's
   * invalidations, which the fence that follows every take waits out.
   */
  #forgetTaken(ids: readonly string[]): void {
    if (this.#tracked) for (const id of ids) this.#tracked.forget(this.#sessionKey(id));
  }

  async #takeChunk(ids: string[]): Promise<Taken[]> {
    const keys = [this.#byCreated, this.#byExpiry, ...ids.map((id) => this.#sessionKey(id))];
    const userKeyParts = [`${this.#prefix}{u`, '}:sessions'];
    const answer = await this.#run(TAKE, keys, [...userKeyParts, ...ids]);
    this.#forgetTaken(ids);
    await invalidationFence(this.#client);
    if (!Array.isArray(answer) || answer.length !== ids.length) {
      throw new Error(`redis take script answered ${JSON.stringify(answer)}`);
    }

    return answer.map((a, j): Taken => {
      if (a === 0) return 'not_found';
      if (!Array.isArray(a)) return 'unreadable';
      return fromFields(ids[j]!, a) ?? 'unreadable';
    });
  }

  /** The user ids the query is limited to, or null for all users. */
  async #userScope(q: Filters): Promise<number[] | null> {
    let users = q.userIds ? [...new Set(q.userIds)] : null;
    const filter = userFilterOf(q);
    if (filter === null) return users;

    const matching = new Set(await this.#resolveUserIds(filter));
    users = users === null ? [...matching] : users.filter((id) => matching.has(id));

    return users;
  }

  /**
   * Index entries matching the filters, newest first, before their hashes are read. Status is
   * judged by the expiry index score, which every write keeps equal to the hash's deadline.
   */
  async #candidates(
    q: Filters,
    users: number[] | null,
  ): Promise<{ ids: Candidate[]; skipped: number }> {
    const [min, max] = createdRange(q);
    let entries: Candidate[];
    if (users === null) {
      // LIMITATION: with a status filter, a date filter and no user filter (status alone goes
      // through #statusPage), this walks every entry of the creation index inside the created
      // range (one ZRANGE and one ZMSCORE per 500 ids), so the page costs as much as the fleet
      // in that range. A pair of zsets per status would
      // not stay true as time passes; what removes the walk is a by-expiry index per day of
      // creation (or per user bucket) to intersect with, or counting the page lazily.
      const all = await this.#collect(this.#byCreated, min, max);
      entries = all.map((e) => ({ id: e.value, score: e.score }));
    } else {
      entries = await this.#fromUserIndexes(users, min, max);
    }

    // Entries from a user index are checked against the expiry index even without a status
    // filter: cleanup prunes global entries of a vanished hash but cannot know its user.
    const status = q.status ?? 'all';
    if (status === 'all' && users === null) return { ids: entries, skipped: 0 };

    const kept: Candidate[] = [];
    const unscored: Candidate[] = [];
    for (let i = 0; i < entries.length; i += READ_CHUNK) {
      const chunk = entries.slice(i, i + READ_CHUNK);
      const deadlines = await this.#client.zmScore(
        this.#byExpiry,
        chunk.map((c) => c.id),
      );
      chunk.forEach((c, j) => {
        const deadline = deadlines[j];
        if (deadline === null || deadline === undefined) unscored.push(c);
        else if (status === 'expired' && deadline <= q.now) kept.push({ ...c, score: deadline });
        else if (status === 'all' || deadline > q.now === (status === 'active')) kept.push(c);
      });
    }
    if (unscored.length > 0) await this.#prune((await this.#load(unscored)).dangling);
    if (status === 'expired') kept.sort(mostRecentlyExpired);

    return { ids: kept, skipped: unscored.length };
  }

  async #fromUserIndexes(users: number[], min: string, max: string): Promise<Candidate[]> {
    const entries: Candidate[] = [];
    for (let i = 0; i < users.length; i += READ_CHUNK) {
      const chunk = users.slice(i, i + READ_CHUNK);
      const perUser = await Promise.all(
        chunk.map((userId) => this.#collect(this.#userKey(userId), min, max)),
      );
      perUser.forEach((list, j) => {
        for (const e of list) entries.push({ id: e.value, score: e.score, owner: chunk[j] });
      });
    }
    if (users.length > 1) entries.sort(byScoreThenId);

    return entries;
  }

  /** Reads hashes in chunks (node-redis pipelines the concurrent HGETALLs), keeping order. */
  async #load(candidates: readonly Candidate[]): Promise<Loaded> {
    const loaded: Loaded = { records: [], skipped: 0, dangling: [], corrupt: [] };
    for (let i = 0; i < candidates.length; i += READ_CHUNK) {
      const chunk = candidates.slice(i, i + READ_CHUNK);
      const found = await Promise.all(chunk.map((c) => this.#fetch(c.id)));
      chunk.forEach((c, j) => {
        const session = found[j];
        if (typeof session === 'object' && (c.owner === undefined || c.owner === session.userId)) {
          loaded.records.push(session);
          return;
        }
        loaded.skipped += 1;
        if (session === 'missing') loaded.dangling.push(c);
        if (session === 'corrupt') loaded.corrupt.push(c);
      });
    }
    await this.#quarantine(loaded.corrupt);

    return loaded;
  }

  /** Notes unreadable keys for removeUnreadable (one script call; nothing when none). */
  async #quarantine(corrupt: readonly Candidate[]): Promise<void> {
    if (corrupt.length === 0) return;
    const pairs = corrupt.flatMap((c) => [c.id, c.owner === undefined ? '' : String(c.owner)]);
    await this.#run(QUARANTINE, [this.#unreadable], [String(QUARANTINE_TTL_MS), ...pairs]);
  }

  async #fetch(
    id: string,
    client: Pick<RedisSessionClient, 'hGetAll'> = this.#client,
  ): Promise<SessionRecord | 'missing' | 'corrupt'> {
    let hash: Record<string, string>;
    try {
      hash = await client.hGetAll(this.#sessionKey(id));
    } catch (error) {
      if (isWrongType(error)) return 'corrupt';
      throw error;
    }
    if (Object.keys(hash).length === 0) return 'missing';

    return parseSession(id, hash) ?? 'corrupt';
  }

  /**
   * Removes index entries whose hash is gone. Safe without a script: ids are digests of fresh
   * random tokens, so once a hash is gone nothing writes that id again. An id set aside by a
   * revocation whose process stopped before collecting it (or by another instance, collecting
   * it now) is collected instead, so that its copy goes too; that other instance then writes
   * its history row from the sign-in's address and browser. This instance's own set-aside ids
   * are left to their collection.
   */
  async #prune(dangling: readonly Candidate[]): Promise<void> {
    if (dangling.length === 0) return;

    const owed: string[] = [];
    const others: string[] = [];
    for (const c of dangling) (this.#setAside.owes(c.id) ? owed : others).push(c.id);
    const byUser = new Map<number, string[]>();
    for (const c of dangling) {
      if (c.owner !== undefined) byUser.set(c.owner, [...(byUser.get(c.owner) ?? []), c.id]);
    }
    await Promise.all([
      others.length > 0 ? this.#collectChunks(others) : undefined,
      ...(owed.length > 0
        ? [this.#client.zRem(this.#byCreated, owed), this.#client.zRem(this.#byExpiry, owed)]
        : []),
      ...[...byUser].map(([userId, own]) => this.#client.zRem(this.#userKey(userId), own)),
    ]);
  }

  /** Every entry of a by-score range, ascending, fetched in bounded chunks. */
  async #collect(key: string, min: string, max: string): Promise<ScoredMember[]> {
    const all: ScoredMember[] = [];
    for await (const chunk of this.#walk(key, min, max, WALK_CHUNK)) all.push(...chunk);
    return all;
  }

  /**
   * Walks a by-score range in chunks with a (score, member) cursor rather than an offset, so
   * entries removed meanwhile cannot shift a live one out of the walk.
   */
  async *#walk(key: string, min: string, max: string, size: number) {
    let lower = min;
    let lastScore: number | null = null;
    let taken = new Set<string>();
    for (;;) {
      const count = size + taken.size;
      const chunk = await this.#client.zRangeWithScores(key, lower, max, {
        BY: 'SCORE',
        LIMIT: { offset: 0, count },
      });
      const fresh = chunk.filter((e) => !(e.score === lastScore && taken.has(e.value)));
      if (fresh.length > 0) yield fresh;
      if (chunk.length < count) return;

      const last = chunk[chunk.length - 1]!.score;
      if (last !== lastScore) taken = new Set();
      for (const e of chunk) if (e.score === last) taken.add(e.value);
      lastScore = last;
      lower = String(last);
    }
  }
}

/** The created bounds as a range of negated scores: [from, to) becomes (-to, -from]. */
function createdRange(q: Pick<SessionQuery, 'createdFrom' | 'createdTo'>): [string, string] {
  const min = q.createdTo === undefined ? '-inf' : `(${-q.createdTo}`;
  const max = q.createdFrom === undefined ? '+inf' : String(-q.createdFrom);
  return [min, max];
}

/** The email and role filters of a query, or null when it has neither. */
function userFilterOf(q: Filters): UserFilter | null {
  const filter: UserFilter = {};
  if (q.user?.email) filter.email = q.user.email;
  if (q.user?.role) filter.role = q.user.role;
  return filter.email === undefined && filter.role === undefined ? null : filter;
}

function byScoreThenId(a: Candidate, b: Candidate): number {
  if (a.score !== b.score) return a.score - b.score;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The order of every expired listing: latest deadline first, ties in descending id order. */
function mostRecentlyExpired(a: Candidate, b: Candidate): number {
  if (a.score !== b.score) return b.score - a.score;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
