/**
 * @module http/rate-limit
 * Password attempts, limited per client IP and per account: sign-in, step-up and the password
 * change all go through `PasswordAttempts.begin` before the password is checked. Wrong
 * passwords (and unknown emails) are counted; once an IP or an account has used up its
 * failures in the window, every attempt answers 429 WARDEN_RATE_LIMITED with `Retry-After`,
 * the right password included, until the window ends. Right passwords count nothing, so
 * people who sign in correctly never use up the allowance.
 *
 * A count read before the check would let a burst of parallel guesses all pass before the
 * first failure is written, so checks queue: one at a time per account and a few at a time per
 * IP (scrypt runs on libuv's four threads anyway), each reading the count when its turn comes.
 * A legitimate burst waits its turn instead of being refused; a queue longer than
 * MAX_WAITING answers 429 at once.
 *
 * The counts live in Redis when Warden has one (every instance shares them), in this process
 * otherwise. When they cannot be read (Redis away), the attempt answers 503
 * WARDEN_STORE_UNAVAILABLE before the password is checked: uncounted checks would let guesses
 * run without a limit, and the same Redis holds the sessions, so a right password could not
 * sign in anyway; answering 401 to a wrong one and 503 to the right one would tell them apart.
 *
 * Why not @fastify/rate-limit's counters: its middleware counts every request, and
 * its `createRateLimit` can count failures only after the fact, without the queue that stops
 * parallel guesses; its IP normalisation (IPv6 by /64 prefix) is used as is.
 *
 * LIMITATION: the queues are per process, so N instances let up to N checks of one account
 * run at once and a burst can overshoot the limit by N - 1; without Redis each instance also
 * counts alone, multiplying the allowance by N. A Redis (REDIS_URL) removes the second.
 * LIMITATION: the account limit lets anybody lock an account out for a window by failing on
 * purpose; the IP limit bounds how many accounts one client can lock that way.
 */
import { createHash } from 'node:crypto';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.js';
import { spellMs } from '../sessions/policy.js';
import { normalizeEmail } from '../users/email.js';
import { clientIp } from './client-ip.js';

/** Failures per key in fixed windows that start with the key's first failure. */
export interface AttemptCounter {
  /** The failures of a key in its current window, and the ms left of it (0, 0 when none). */
  read(key: string): Promise<{ count: number; ttlMs: number }>;
  /** Counts one failure; starts a window of `windowMs` when none runs. */
  add(key: string, windowMs: number): Promise<void>;
}

/** The slice of node-redis the Redis counter uses. */
export interface RateLimitRedisClient {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

const READ = `local n = redis.call('GET', KEYS[1])
if not n then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(n), ttl}`;
// The TTL is set with the first failure, or mended if a key ever lacks one.
const ADD = `local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`attempt counter took over ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Counts in Redis under `<prefix>ratelimit:`, one key with a TTL per limited key. */
export function redisAttemptCounter(
  client: RateLimitRedisClient,
  prefix: string,
  timeoutMs: number,
): AttemptCounter {
  const keyOf = (key: string) => `${prefix}ratelimit:${key}`;
  return {
    async read(key) {
      const call = client.eval(READ, { keys: [keyOf(key)], arguments: [] });
      const [count, ttl] = (await withTimeout(call, timeoutMs)) as [number, number];
      return { count: Number(count), ttlMs: Number(ttl) };
    },
    async add(key, windowMs) {
      await withTimeout(
        client.eval(ADD, { keys: [keyOf(key)], arguments: [String(windowMs)] }),
        timeoutMs,
      );
    },
  };
}

/** Counts in this process, at most `maxKeys` of them (the oldest windows are forgotten first). */
export function memoryAttemptCounter(
  clock: () => number = Date.now,
  maxKeys = 10_000,
): AttemptCounter {
  const windows = new Map<string, { count: number; endsAt: number }>();
  const prune = (now: number) => {
    for (const [key, w] of windows) if (w.endsAt <= now) windows.delete(key);
    // Still full: a spray of keys. Forget the oldest windows rather than grow without bound.
    for (const key of windows.keys()) {
      if (windows.size < maxKeys) break;
      windows.delete(key);
    }
  };
  return {
    async read(key) {
      const now = clock();
      const w = windows.get(key);
      return w && w.endsAt > now
        ? { count: w.count, ttlMs: w.endsAt - now }
        : { count: 0, ttlMs: 0 };
    },
    async add(key, windowMs) {
      const now = clock();
      let w = windows.get(key);
      if (!w || w.endsAt <= now) {
        if (windows.size >= maxKeys) prune(now);
        windows.delete(key);
        w = { count: 0, endsAt: now + windowMs };
        windows.set(key, w);
      }
      w.count += 1;
    },
  };
}

/** How many checks of one key may wait for their turn before more are refused at once. */
export const MAX_WAITING = 100;

/** Per-key queues that let `limit` holders through at a time, in arrival order. */
class KeyedQueue {
  readonly #keys = new Map<string, { active: number; waiting: (() => void)[] }>();

  /** Waits for a turn; null when the queue of this key is full. Call the result to leave. */
  async enter(key: string, limit: number): Promise<(() => void) | null> {
    let slot = this.#keys.get(key);
    if (!slot) {
      slot = { active: 0, waiting: [] };
      this.#keys.set(key, slot);
    }
    if (slot.active >= limit) {
      if (slot.waiting.length >= MAX_WAITING) return null;
      const s = slot;
      await new Promise<void>((resolve) => s.waiting.push(resolve));
    } else {
      slot.active += 1;
    }

    let left = false;
    const s = slot;
    return () => {
      if (left) return;
      left = true;
      const next = s.waiting.shift();
      // The turn passes straight to the next in line; the active count stays.
      if (next) return next();
      s.active -= 1;
      if (s.active === 0) this.#keys.delete(key);
    };
  }
}

export interface PasswordAttemptLimits {
  /** Failures one account may have per window. */
  perAccount: number;
  /** Failures one client IP may have per window. */
  perIp: number;
  /** In milliseconds. */
  windowMs: number;
  /**
   * Told when a counter cannot be read (the attempt then answers 503 unchecked) or written (a
   * wrong password's failure is then not counted).
   */
  onError?: (err: unknown) => void;
}

// How many checks of one IP run at once: libuv's thread pool, so that scrypt is never idle.
const CHECKS_PER_IP = 4;
const CHECKS_PER_ACCOUNT = 1;

function isWrongPassword(err: unknown): boolean {
  return err instanceof WardenError && err.code === 'WARDEN_AUTH_INVALID_CREDENTIALS';
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** The per-IP and per-account limits of password checks. */
export class PasswordAttempts {
  readonly #counter: AttemptCounter;
  readonly #limits: PasswordAttemptLimits;
  readonly #queue = new KeyedQueue();

  constructor(counter: AttemptCounter, limits: PasswordAttemptLimits) {
    this.#counter = counter;
    this.#limits = limits;
  }

  /**
   * Runs `verify` (the password check) in this attempt's turn at the password of `email`:
   * first throws 429 (and sets `Retry-After`) when the IP or the account has no failures
   * left; then counts a failure when `verify` throws what `wrong` recognises (by default
   * WARDEN_AUTH_INVALID_CREDENTIALS). Whatever else it throws or returns counts nothing.
   * Keys are digests, so no email or address sits in Redis or in memory as a key.
   */
  async check<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    email: string,
    verify: () => Promise<T>,
    wrong: (err: unknown) => boolean = isWrongPassword,
  ): Promise<T> {
    const { perIp, perAccount, windowMs } = this.#limits;
    const keys: [string, number, number][] = [
      // A socket already gone has no address; such attempts share one key.
      [`ip:${digest(normalizeIP(clientIp(request)))}`, perIp, CHECKS_PER_IP],
      [`account:${digest(normalizeEmail(email))}`, perAccount, CHECKS_PER_ACCOUNT],
    ];

    // Always the IP first, then the account: one order, so two attempts never wait on each other.
    const turns: (() => void)[] = [];
    try {
      let waitMs = 0;
      for (const [key, , width] of keys) {
        const leave = await this.#queue.enter(key, width);
        if (!leave) {
          waitMs = 1_000;
          break;
        }
        turns.push(leave);
      }
      if (waitMs === 0) {
        const counts = await this.#read(keys.map(([key]) => key));
        counts.forEach((c, i) => {
          if (c.count >= keys[i][1]) waitMs = Math.max(waitMs, c.ttlMs, 1_000);
        });
      }
      if (waitMs > 0) {
        const waitS = Math.ceil(waitMs / 1000);
        reply.header('retry-after', String(waitS));
        throw new WardenError('WARDEN_RATE_LIMITED', [spellWait(waitS)], { retryAfter: waitS });
      }

      try {
        return await verify();
      } catch (err) {
        if (wrong(err)) await Promise.all(keys.map(([key]) => this.#add(key, windowMs)));
        throw err;
      }
    } finally {
      for (const leave of turns.reverse()) leave();
    }
  }

  /** The counts of these keys; one report (not one per key) when they cannot be read. */
  async #read(keys: string[]): Promise<{ count: number; ttlMs: number }[]> {
    try {
      return await Promise.all(keys.map((key) => this.#counter.read(key)));
    } catch (err) {
      this.#limits.onError?.(err);
      throw new WardenError('WARDEN_STORE_UNAVAILABLE');
    }
  }

  async #add(key: string, windowMs: number): Promise<void> {
    try {
      await this.#counter.add(key, windowMs);
    } catch (err) {
      this.#limits.onError?.(err);
    }
  }
}

/** A wait as a person reads it: "45 seconds", or past a minute and a half "15 minutes". */
function spellWait(seconds: number): string {
  return spellMs(seconds < 90 ? seconds * 1_000 : Math.ceil(seconds / 60) * 60_000);
}
